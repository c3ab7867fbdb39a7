//! The persisted tenant: its directory objects (applications, service principals, grants, HRD
//! policies, deleted items) as Graph returns them, the seeded admin, and the first-party
//! applications the emulator knows. This is what `--state` saves; secrets appear here only as
//! SHA-256 hashes. A fresh one is made by `seed.rs`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::org::Dv;
use crate::util::new_guid;

/// One stored password credential (hash only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretRec {
    pub key_id: String,
    pub sha256: String,
    pub end_ms: u64,
}

/// A directory object: its JSON as Graph returns it, plus when it was created (for the
/// replication-lag emulation) and, for applications, the secret hashes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Obj {
    pub created_ms: u64,
    pub data: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretRec>,
}

impl Obj {
    pub fn id(&self) -> &str {
        self.data.get("id").and_then(Value::as_str).unwrap_or("")
    }
    pub fn str(&self, k: &str) -> Option<&str> {
        self.data.get(k).and_then(Value::as_str)
    }
}

/// An HRD policy assigned to a service principal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub sp_id: String,
    pub policy_id: String,
    pub created_ms: u64,
}

/// The seeded administrator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Admin {
    pub client_id: String,
    pub secret_sha256: String,
    pub user_oid: String,
    pub user_upn: String,
    /// The object id of the admin app's service principal in this tenant: the `oid` of its
    /// app-only tokens (Learn "Access token claims reference": for an app-only token, `oid` is
    /// "the object ID of the service principal"). Empty in a state file from before it existed.
    #[serde(default)]
    pub sp_oid: String,
}

/// The whole persisted tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    pub tenant_id: String,
    pub org_display_name: String,
    pub initial_domain: String,
    pub federated_domain: Option<String>,
    pub admin: Admin,
    pub applications: Vec<Obj>,
    pub service_principals: Vec<Obj>,
    pub oauth2_permission_grants: Vec<Obj>,
    pub home_realm_discovery_policies: Vec<Obj>,
    pub hrd_assignments: Vec<Assignment>,
    /// Deleted applications and service principals, restorable for 30 days
    /// (`directory/deletedItems`); an application's credentials stay with it but sign nothing in
    /// while it is deleted.
    #[serde(default)]
    pub deleted_items: Vec<Obj>,
    /// The delegated permission grants of deleted service principals, set aside until the
    /// service principal is restored (its "previous configurations" come back with it) or
    /// deleted for good.
    #[serde(default)]
    pub deleted_grants: Vec<Obj>,
    pub dataverse: Dv,
}

pub const DYNAMICS_APP_ID: &str = "00000007-0000-0000-c000-000000000000";
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
pub const AZURE_CLI_APP_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
pub const USER_IMPERSONATION_ID: &str = "78ce3f0f-a1ce-49c2-8cde-64b5c0896db4";

/// First-party service principals the emulator knows (created at seed, or on demand).
pub fn first_party_sp(app_id: &str, tenant_id: &str) -> Option<Value> {
    let (name, scopes) = match app_id {
        DYNAMICS_APP_ID => (
            "Dataverse",
            json!([{
                "adminConsentDescription": "Allows the application to access Common Data Service acting as users in the organization.",
                "adminConsentDisplayName": "Access Common Data Service as organization users",
                "id": USER_IMPERSONATION_ID,
                "isEnabled": true,
                "type": "User",
                "userConsentDescription": "Allows the application to access Common Data Service as you.",
                "userConsentDisplayName": "Access Common Data Service as you",
                "value": "user_impersonation"
            }]),
        ),
        GRAPH_APP_ID => (
            "Microsoft Graph",
            json!([{
                "adminConsentDescription": "Allows the app to create, read, update and delete applications and service principals on behalf of the signed-in user.",
                "adminConsentDisplayName": "Read and write all applications",
                "id": "bdfbf15f-ee85-4955-8675-146e8e5296b5",
                "isEnabled": true,
                "type": "Admin",
                "userConsentDescription": null,
                "userConsentDisplayName": null,
                "value": "Application.ReadWrite.All"
            }]),
        ),
        _ => return None,
    };
    let _ = tenant_id;
    Some(json!({
        "id": new_guid(),
        "deletedDateTime": null,
        "accountEnabled": true,
        "appDisplayName": name,
        "appId": app_id,
        "appOwnerOrganizationId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
        "appRoleAssignmentRequired": false,
        "displayName": name,
        "servicePrincipalNames": [app_id],
        "servicePrincipalType": "Application",
        "signInAudience": "AzureADMultipleOrgs",
        "tags": [],
        "appRoles": [],
        "oauth2PermissionScopes": scopes,
        "keyCredentials": [],
        "passwordCredentials": [],
        "replyUrls": []
    }))
}
