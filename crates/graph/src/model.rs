//! The Graph objects the steps read and write, as v1.0 returns them (reference/graph.md §1–5), and
//! the facts about them the tools share (the one HRD policy definition, the properties selected).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Dynamics CRM (Dataverse) first-party application id (graph.md §1.2). Its
/// `user_impersonation` scope id is read from the service principal, never hard-coded.
pub const DYNAMICS_CRM_APP_ID: &str = "00000007-0000-0000-c000-000000000000";
pub const USER_IMPERSONATION: &str = "user_impersonation";

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAccess {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequiredResourceAccess {
    pub resource_app_id: String,
    #[serde(default)]
    pub resource_access: Vec<ResourceAccess>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCredential {
    pub key_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub hint: Option<String>,
    #[serde(default)]
    pub start_date_time: Option<String>,
    #[serde(default)]
    pub end_date_time: Option<String>,
}

impl PasswordCredential {
    /// `endDateTime` as a time; `None` when absent or unreadable. Graph sends seven fraction
    /// digits (`2021-09-09T19:50:29.3086381Z`), which RFC 3339 allows.
    pub fn expires_at(&self) -> Option<time::OffsetDateTime> {
        let end = self.end_date_time.as_deref()?;
        time::OffsetDateTime::parse(end, &time::format_description::well_known::Rfc3339).ok()
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: String,
    pub app_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub unique_name: Option<String>,
    #[serde(default)]
    pub sign_in_audience: Option<String>,
    #[serde(default)]
    pub required_resource_access: Vec<RequiredResourceAccess>,
    #[serde(default)]
    pub password_credentials: Vec<PasswordCredential>,
    /// Custom strings on the app (Learn: resources/application, `tags`: "Custom strings that can
    /// be used to categorize and identify the application. Not nullable."). The setup's
    /// ownership mark lives here (`s2s_core::setup::SetupId::tag`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// When the registration was made (read-only, RFC 3339); named in messages about an app
    /// another setup uses.
    #[serde(default)]
    pub created_date_time: Option<String>,
}

impl Application {
    /// The password credential with this key id (key ids compare case-insensitively).
    pub fn password_credential(&self, key_id: &str) -> Option<&PasswordCredential> {
        self.password_credentials
            .iter()
            .find(|c| c.key_id.eq_ignore_ascii_case(key_id))
    }
}

/// The properties `register-app` owns, for create and update, and what ownership checks read
/// (`tags`, `createdDateTime`).
pub const APPLICATION_SELECT: &str = "id,appId,displayName,uniqueName,signInAudience,requiredResourceAccess,passwordCredentials,tags,createdDateTime";

/// The service principal properties the steps read (`tags`: the ownership mark).
pub(crate) const SERVICE_PRINCIPAL_SELECT: &str =
    "id,appId,displayName,oauth2PermissionScopes,tags";

/// `tags` with `tag` added, or `None` when it is there already (tags compare case-insensitively,
/// as Entra treats them). Every other tag stays: an update of `tags` replaces the whole
/// collection (Learn: application-update, serviceprincipal-update), so it is always sent whole.
pub fn tags_with(tags: &[String], tag: &str) -> Option<Vec<String>> {
    if tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
        return None;
    }
    let mut out = tags.to_vec();
    out.push(tag.to_string());
    Some(out)
}

/// `tags` without `tag`, or `None` when it is not there; every other tag stays.
pub fn tags_without(tags: &[String], tag: &str) -> Option<Vec<String>> {
    if !tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
        return None;
    }
    Some(
        tags.iter()
            .filter(|t| !t.eq_ignore_ascii_case(tag))
            .cloned()
            .collect(),
    )
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PermissionScope {
    pub id: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub is_enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    pub id: String,
    pub app_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub oauth2_permission_scopes: Vec<PermissionScope>,
    /// Custom strings (Learn: resources/serviceprincipal, `tags`); the setup's mark when the
    /// setup created it.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl ServicePrincipal {
    /// `"Marketo Integration" (<id>)`, or the bare id when it has no display name: how messages
    /// name it.
    pub fn label(&self) -> String {
        match &self.display_name {
            Some(n) => format!("\"{n}\" ({})", self.id),
            None => self.id.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PermissionGrant {
    pub id: String,
    pub client_id: String,
    pub consent_type: Option<String>,
    #[serde(default)]
    pub principal_id: Option<String>,
    pub resource_id: String,
    #[serde(default)]
    pub scope: Option<String>,
}

impl PermissionGrant {
    pub fn scopes(&self) -> Vec<&str> {
        self.scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .collect()
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HrdPolicy {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub definition: Vec<String>,
    #[serde(default)]
    pub is_organization_default: Option<bool>,
}

/// The one HRD policy definition set-hrd-policy ensures (graph.md §5.2): only
/// `AllowCloudPasswordValidation`, inside the `HomeRealmDiscoveryPolicy` wrapper. Here, in the
/// client, so set-hrd-policy (which creates it) and teardown (which removes only ours) share it.
pub fn cloud_password_validation_definition() -> Value {
    json!({"HomeRealmDiscoveryPolicy": {"AllowCloudPasswordValidation": true}})
}

impl HrdPolicy {
    /// True when the definition is exactly [`cloud_password_validation_definition`]: one element
    /// whose parsed JSON equals it (parsed, so whitespace and key order do not matter; the
    /// wrapper does).
    pub fn has_exactly_our_definition(&self) -> bool {
        matches!(self.definition.as_slice(), [one]
            if serde_json::from_str::<Value>(one).is_ok_and(|v| v == cloud_password_validation_definition()))
    }

    /// Whether the policy lets Entra ID validate cloud passwords (ROPC for federated users),
    /// even with other settings: `AllowCloudPasswordValidation` true *inside* the
    /// `HomeRealmDiscoveryPolicy` wrapper — without it Entra ignores the setting (graph.md §5.2,
    /// peers.md §9.10).
    pub fn allows_cloud_password_validation(&self) -> bool {
        self.definition.iter().any(|d| {
            serde_json::from_str::<Value>(d).is_ok_and(|v| {
                v["HomeRealmDiscoveryPolicy"]["AllowCloudPasswordValidation"] == json!(true)
            })
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    pub id: String,
    #[serde(default)]
    pub authentication_type: Option<String>,
    #[serde(default)]
    pub is_verified: Option<bool>,
}

impl Domain {
    /// Federated (e.g. with AD FS): Entra ID sends its users' sign-ins to the federation server
    /// (graph.md §1.6).
    pub fn is_federated(&self) -> bool {
        self.authentication_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("Federated"))
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_added_and_removed_without_touching_the_others() {
        let tags = vec![
            "WindowsAzureActiveDirectoryIntegratedApp".to_string(),
            "A".to_string(),
        ];
        assert_eq!(tags_with(&tags, "a"), None);
        assert_eq!(tags_with(&tags, "b").unwrap().len(), 3);
        assert_eq!(
            tags_without(&tags, "a").unwrap(),
            vec!["WindowsAzureActiveDirectoryIntegratedApp".to_string()]
        );
        assert_eq!(tags_without(&tags, "b"), None);
    }

    #[test]
    fn cloud_password_validation_needs_the_wrapper() {
        let policy = |d: &str| HrdPolicy {
            definition: vec![d.to_string()],
            ..Default::default()
        };
        assert!(
            policy(r#"{"HomeRealmDiscoveryPolicy":{"AllowCloudPasswordValidation":true}}"#)
                .allows_cloud_password_validation()
        );
        // Other settings beside it do not matter.
        assert!(policy(
            r#"{"HomeRealmDiscoveryPolicy":{"AllowCloudPasswordValidation":true,"PreferredDomain":"x"}}"#
        )
        .allows_cloud_password_validation());
        assert!(
            !policy(r#"{"AllowCloudPasswordValidation":true}"#).allows_cloud_password_validation()
        );
        assert!(
            !policy(r#"{"HomeRealmDiscoveryPolicy":{"AllowCloudPasswordValidation":false}}"#)
                .allows_cloud_password_validation()
        );
        assert!(!policy("not json").allows_cloud_password_validation());
    }

    #[test]
    fn graph_end_dates_with_seven_fraction_digits_parse() {
        let cred = |end: &str| PasswordCredential {
            end_date_time: Some(end.into()),
            ..Default::default()
        };
        assert!(cred("2021-09-09T19:50:29.3086381Z").expires_at().is_some());
        assert!(cred("2028-11-26T00:00:00Z").expires_at().is_some());
        assert!(cred("soon").expires_at().is_none());
        assert!(PasswordCredential::default().expires_at().is_none());
    }

    #[test]
    fn credentials_are_found_by_key_id_in_any_case() {
        let app = Application {
            password_credentials: vec![PasswordCredential {
                key_id: "AbC".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(app.password_credential("abc").is_some());
        assert!(app.password_credential("abd").is_none());
    }

    #[test]
    fn labels_and_federation() {
        let mut sp = ServicePrincipal {
            id: "s".into(),
            ..Default::default()
        };
        assert_eq!(sp.label(), "s");
        sp.display_name = Some("Marketo".into());
        assert_eq!(sp.label(), "\"Marketo\" (s)");
        let d = |t: &str| Domain {
            id: "contoso.com".into(),
            authentication_type: Some(t.into()),
            ..Default::default()
        };
        assert!(d("federated").is_federated());
        assert!(!d("Managed").is_federated());
    }
}
