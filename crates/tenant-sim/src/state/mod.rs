//! The tenant: directory objects (Graph), the Dataverse org, and the runtime state around them
//! (request log, faults, device codes, refresh tokens, publish lock). Everything persisted by
//! `--state` is in [`Tenant`]; secrets appear there only as SHA-256 hashes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::dataverse::Dv;
use crate::faults::ScriptedFault;
use crate::options::Options;
use crate::util::{lock, new_guid, now_ms, random_secret, sha256_hex};

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

impl Tenant {
    /// A fresh tenant; returns it with the admin's client secret (only place it exists in clear).
    pub fn seed(opts: &Options) -> (Tenant, String) {
        let tenant_id = new_guid();
        // A multi-tenant admin app (one a consultant's firm registers once and each customer
        // consents to) has the same client id and secret in every tenant.
        let (admin_client_id, admin_secret) = match &opts.shared_admin {
            Some((id, secret)) => (id.clone(), secret.clone()),
            None => (new_guid(), random_secret(40)),
        };
        let admin = Admin {
            client_id: admin_client_id,
            secret_sha256: sha256_hex(&admin_secret),
            user_oid: new_guid(),
            user_upn: "admin@contoso.onmicrosoft.com".into(),
            sp_oid: new_guid(),
        };
        let mut sps = Vec::new();
        for app in [GRAPH_APP_ID, DYNAMICS_APP_ID] {
            if app == DYNAMICS_APP_ID && opts.no_dynamics_sp {
                continue;
            }
            if let Some(data) = first_party_sp(app, &tenant_id) {
                sps.push(Obj {
                    created_ms: 0,
                    data,
                    secrets: Vec::new(),
                });
            }
        }
        let dataverse = crate::dataverse::seed(opts, &admin);
        let t = Tenant {
            tenant_id,
            org_display_name: "Contoso".into(),
            initial_domain: "contoso.onmicrosoft.com".into(),
            federated_domain: opts.federated.then(|| "contoso.com".to_string()),
            admin,
            applications: Vec::new(),
            service_principals: sps,
            oauth2_permission_grants: Vec::new(),
            home_realm_discovery_policies: Vec::new(),
            hrd_assignments: Vec::new(),
            deleted_items: Vec::new(),
            deleted_grants: Vec::new(),
            dataverse,
        };
        (t, admin_secret)
    }
}

/// Where the two listeners are.
#[derive(Debug, Clone, Default)]
pub struct Urls {
    pub main: String,
    pub dynamics: String,
}

/// A refresh token's grant (keyed by the token's hash).
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub client_id: String,
    pub user_oid: String,
    pub offline: bool,
}

/// A device code handed out by `/devicecode`: for whom and what, and whether it was polled.
#[derive(Debug, Clone)]
pub struct DeviceCode {
    pub client_id: String,
    /// The scope of the `/devicecode` request: Entra issues the tokens for it when the poll
    /// (which carries no scope) succeeds.
    pub scope: String,
    pub polled: bool,
}

/// The running emulator.
pub struct Sim {
    pub opts: Options,
    pub key: [u8; 32],
    pub tenant: Mutex<Tenant>,
    pub admin_secret: Mutex<String>,
    pub log: Mutex<Vec<Value>>,
    pub seq: AtomicU64,
    pub faults: Mutex<Vec<ScriptedFault>>,
    pub urls: RwLock<Urls>,
    /// Pending device codes (keyed by the code's hash).
    pub device_codes: Mutex<HashMap<String, DeviceCode>>,
    pub refresh: Mutex<HashMap<String, RefreshGrant>>,
    /// Publish running until this `now_ms()`, if any.
    pub publish_until: Mutex<Option<u64>>,
    /// The message the next `PublishAllXmlAsync` system job fails with (`POST
    /// /_sim/fail-next-publish`), as a job that hits a solution error does (statuscode 31).
    pub fail_next_publish: Mutex<Option<String>>,
    pub rate: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Certificates trusted for client assertions (the admin's, once generated).
    pub trusted_certs: Mutex<Vec<crate::credentials::TrustedCert>>,
    /// The admin's federated identity credential (set once the listener's URL is known).
    pub federation: Mutex<Option<crate::credentials::Federation>>,
    /// With `Options::managed_identity`: the `IDENTITY_HEADER` value the managed-identity
    /// endpoint expects.
    pub identity_header: Option<String>,
}

/// Shared handle passed to the router.
pub type SharedState = Arc<Sim>;

impl Sim {
    pub fn new(opts: Options) -> Sim {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        let (mut tenant, mut secret) = Tenant::seed(&opts);
        if let Some(path) = &opts.state_file {
            if let Ok(text) = std::fs::read_to_string(path) {
                if let Ok(t) = serde_json::from_str::<Tenant>(&text) {
                    tenant = t;
                    if tenant.admin.sp_oid.is_empty() {
                        tenant.admin.sp_oid = new_guid();
                    }
                    // the old admin secret is not stored in clear: issue a new one
                    secret = random_secret(40);
                    tenant.admin.secret_sha256 = sha256_hex(&secret);
                }
            }
        }
        let identity_header = opts.managed_identity.then(|| random_secret(32));
        Sim {
            opts,
            key,
            tenant: Mutex::new(tenant),
            admin_secret: Mutex::new(secret),
            log: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
            faults: Mutex::new(Vec::new()),
            urls: RwLock::new(Urls::default()),
            device_codes: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashMap::new()),
            publish_until: Mutex::new(None),
            fail_next_publish: Mutex::new(None),
            rate: Mutex::new(HashMap::new()),
            trusted_certs: Mutex::new(Vec::new()),
            federation: Mutex::new(None),
            identity_header,
        }
    }

    pub fn urls(&self) -> Urls {
        self.urls.read().map(|u| u.clone()).unwrap_or_default()
    }

    /// Is an object created at `created_ms` visible to reads yet?
    pub fn visible(&self, created_ms: u64) -> bool {
        now_ms().saturating_sub(created_ms) >= self.opts.replication_lag_ms
    }

    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Back to a freshly seeded tenant (same admin credentials and tenant id so clients keep
    /// working), empty log, no faults.
    pub fn reset(&self) {
        let (mut fresh, _) = Tenant::seed(&self.opts);
        {
            let mut t = lock(&self.tenant);
            fresh.tenant_id = t.tenant_id.clone();
            fresh.admin = t.admin.clone();
            fresh.dataverse = crate::dataverse::seed(&self.opts, &fresh.admin);
            *t = fresh;
        }
        lock(&self.log).clear();
        lock(&self.faults).clear();
        lock(&self.device_codes).clear();
        lock(&self.refresh).clear();
        *lock(&self.publish_until) = None;
        lock(&self.rate).clear();
        self.seq.store(0, Ordering::SeqCst);
        self.save();
    }

    /// Persist the tenant (atomically: temp file + rename) when `--state` is set.
    pub fn save(&self) {
        let Some(path) = &self.opts.state_file else {
            return;
        };
        let text = {
            let t = lock(&self.tenant);
            serde_json::to_string_pretty(&*t).unwrap_or_default()
        };
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }

    /// The whole tenant as `/_sim/state` shows it (secrets as hashes only).
    pub fn state_json(&self) -> Value {
        let t = lock(&self.tenant);
        let mut v = serde_json::to_value(&*t).unwrap_or(Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.insert(
                "publish_running".into(),
                json!(lock(&self.publish_until).is_some_and(|u| u > now_ms())),
            );
        }
        v
    }
}
