//! A typed client for the subset of the Dataverse Web API v9.2 that the Dynamics 365 steps of
//! Marketo's runbook need (reference/dataverse.md §0): `WhoAmI`, `solutions`, `businessunits`,
//! `systemusers` (application users), `roles` and their `systemuserroles_association`, the
//! metadata used to discover the Marketo solution's names at run time (`solutioncomponents`,
//! `EntityDefinitions`, `ManyToOneRelationships`, `Attributes`), record updates that can never
//! create (`If-Match: *`), and publishing (`PublishAllXml`, `PublishAllXmlAsync` +
//! `asyncoperations`, `PublishXml`).
//!
//! The client builds URLs and bodies; `s2s_core::Http` sends them (retries, deadline, dry-run
//! plan, error parsing). It never prints. Dataverse's error codes that the tools act on are in
//! [`codes`], with classifiers such as [`is_app_not_yet_known`]. The checks of the Dataverse
//! names the tools take as flags are in [`names`].

mod client;
pub mod marketo_config;
mod metadata;
mod model;
pub mod names;
mod reads;

pub use client::{
    API_PATH, Associated, Created, Dataverse, SYSTEM_USER_LOOKUPS, Written, publish_xml,
};
pub use metadata::BooleanAttributeSpec;
pub use model::{
    AsyncOperation, Attribute, BusinessUnit, COMPONENT_ENTITY, EntityDefinition, JobState, Label,
    LocalizedLabel, Relationship, Role, Solution, SolutionComponent, SystemUser, WhoAmI,
};

use std::cmp::Ordering;

use s2s_core::Error;

/// The Dataverse error codes the tools act on (reference §7.2, from Microsoft's
/// `data-service-error-codes.md`).
pub mod codes {
    /// DuplicateApplicationUser: "You are attempting to create an Application ID = {0} that
    /// already exists." (reference §1.3).
    pub const DUPLICATE_APPLICATION_USER: &str = "0x8004F511";
    /// DuplicateRecord, "Cannot insert duplicate key" — also an already associated role
    /// (reference §2).
    pub const DUPLICATE_RECORD: &str = "0x80040237";
    /// EntityCustomizationLockException: another customization is running; retry later
    /// (reference §3).
    pub const CUSTOMIZATION_LOCK: &str = "0x80090412";
    /// ObjectNotFoundInAD: "The object does not exist in active directory." (reference §1.6).
    pub const OBJECT_NOT_FOUND_IN_AD: &str = "0x80041d2a";
    /// AADError: "Error from AAD" (reference §1.6).
    pub const AAD_ERROR: &str = "0x80072559";
    /// DuplicateAttributeSchemaName (reference §5.4).
    pub const DUPLICATE_ATTRIBUTE_SCHEMA_NAME: &str = "0x80047013";
    /// DuplicateAttributePhysicalName (reference §5.4).
    pub const DUPLICATE_ATTRIBUTE_PHYSICAL_NAME: &str = "0x80060304";
    /// PrivilegeDenied (reference §2).
    pub const PRIVILEGE_DENIED: &str = "0x80040220";
    /// "The user is not a member of the organization": the caller (for an app-only token: its
    /// app) is not a user of the org (MicrosoftDocs/power-platform issue 2124).
    pub const NOT_A_MEMBER: &str = "0x80072560";
}

/// A Dataverse 403 to the admin's own sign-in, explained: the admin's app is not an
/// application user of the org (0x80072560), or its user lacks a privilege (0x80040220).
/// Client-credentials callers must be application users with a security role (Learn "Use OAuth
/// authentication with Microsoft Dataverse"). Other errors pass through unchanged.
pub fn explain_forbidden(e: Error, org: &str) -> Error {
    if e.status() != Some(403) || e.hint.is_some() {
        return e;
    }
    let caller = e.service().and_then(|s| s.caller.clone());
    let client = caller
        .as_ref()
        .and_then(|c| c.app_id.clone())
        .unwrap_or_else(|| "(unknown)".into());
    let delegated = caller.as_ref().is_some_and(|c| c.delegated);
    let hint = if e.has_code(codes::NOT_A_MEMBER) {
        if delegated {
            format!(
                "the signed-in admin is not a user of {org}: add the account to the environment (Power Platform admin center >                  Environments > the org > Settings > Users + permissions > Users) with the System Administrator role, then re-run"
            )
        } else {
            format!(
                "the admin's app (client id {client}) is not an application user of {org}, and Dataverse accepts app-only tokens only from application users: Power Platform admin center > Environments > the org >                  Settings > Users + permissions > Application users > New app user, pick the app with client id {client}, the root business unit and the security role System Administrator; then re-run (or run `preflight`)"
            )
        }
    } else {
        let who = if delegated {
            "the signed-in admin".to_string()
        } else {
            format!("the admin's application user (client id {client})")
        };
        format!(
            "{who} lacks a privilege in {org}: give it the System Administrator security role (Power Platform admin center > Environments > the org > Settings > Users + permissions), then re-run"
        )
    };
    e.with_kind(s2s_core::Kind::Refused).with_hint(hint)
}

/// The security role Marketo's sync user needs (reference §2): assign-role gives it, teardown
/// takes it away.
pub const MARKETO_SYNC_ROLE: &str = "Marketo Sync User";

/// The Boolean column Marketo's sync filter reads (reference §5.4: "Name must be exactly
/// new_synctomkto"): add-sync-filter creates it, teardown removes it on request.
pub const SYNC_FILTER_FIELD: &str = "new_synctomkto";

/// The display name of the Marketo solution (reference §4, §5.1: its unique name is not public).
pub const MARKETO_SOLUTION: &str = "Marketo Lead Management";

/// From this Marketo solution version on, only the sync user needs the "Marketo Sync User" role;
/// before it, every user does (reference §5.1).
pub const MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE: &str = "4.0.0.14";

/// True when creating an application user failed because Dataverse does not know the app yet:
/// the app registration (or its service principal) has not replicated to the org.
///
/// UNVERIFIED (reference §1.6, §11 item 2): the real error for this case is not documented.
/// Accepted: the two plausible codes from Microsoft's error table, ObjectNotFoundInAD
/// (0x80041d2a) and AADError (0x80072559), or a message saying the application or object was not
/// found in the directory / tenant. Only refusals (4xx) count; 5xx and 429 are retried by core.
pub fn is_app_not_yet_known(e: &Error) -> bool {
    let Some(se) = e.service() else {
        return false;
    };
    if !(400..500).contains(&se.status) || se.status == 429 {
        return false;
    }
    if se.has_code(codes::OBJECT_NOT_FOUND_IN_AD) || se.has_code(codes::AAD_ERROR) {
        return true;
    }
    let m = se.message.to_ascii_lowercase();
    [
        "does not exist in active directory",
        "not found in the directory",
        "was not found in the directory",
        "not found in tenant",
        "not found in the tenant",
        "error from aad",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// True when an application user for this app already exists (a lost answer that was committed,
/// or a concurrent run): re-read and adopt it.
///
/// Real Dataverse answers 412 DuplicateRecord (`0x80040237`, "A record with matching key values
/// already exists.") when any row has the applicationid, soft-deleted rows included
/// (microsoft/terraform-provider-power-platform issue 623); `0x8004F511` is the documented
/// DuplicateApplicationUser code. Both count.
pub fn is_duplicate_application_user(e: &Error) -> bool {
    e.has_code(codes::DUPLICATE_APPLICATION_USER) || e.has_code(codes::DUPLICATE_RECORD)
}

/// True when an attribute with this schema name already exists.
pub fn is_duplicate_attribute(e: &Error) -> bool {
    e.has_code(codes::DUPLICATE_ATTRIBUTE_SCHEMA_NAME)
        || e.has_code(codes::DUPLICATE_ATTRIBUTE_PHYSICAL_NAME)
}

/// Compares dotted numeric versions part by part (`5.0.2.1` > `4.0.0.14`; missing parts are 0).
/// `None` when either is not numeric.
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let parse = |s: &str| -> Option<Vec<u64>> {
        s.trim()
            .split('.')
            .map(|p| p.trim().parse::<u64>().ok())
            .collect()
    };
    let (mut x, mut y) = (parse(a)?, parse(b)?);
    let n = x.len().max(y.len());
    x.resize(n, 0);
    y.resize(n, 0);
    Some(x.cmp(&y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use s2s_core::ServiceError;

    fn svc(status: u16, code: &str, message: &str) -> Error {
        Error::from_service(
            "POST /api/data/v9.2/systemusers",
            ServiceError {
                service: "dataverse",
                status,
                code: code.into(),
                message: message.into(),
                ..Default::default()
            },
        )
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(
            compare_versions("5.0.2.1", "4.0.0.14"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare_versions("4.0.0.9", "4.0.0.14"),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare_versions("4.0.0.14", "4.0.0.14"),
            Some(Ordering::Equal)
        );
        assert_eq!(compare_versions("4.0", "4.0.0.0"), Some(Ordering::Equal));
        assert_eq!(compare_versions("4.x", "4.0"), None);
    }

    #[test]
    fn app_not_yet_known() {
        assert!(is_app_not_yet_known(&svc(400, "0x80041d2a", "")));
        assert!(is_app_not_yet_known(&svc(
            404,
            "0x80072559",
            "Error from AAD"
        )));
        assert!(is_app_not_yet_known(&svc(
            400,
            "",
            "The object does not exist in active directory."
        )));
        assert!(!is_app_not_yet_known(&svc(503, "0x80041d2a", "")));
        assert!(!is_app_not_yet_known(&svc(403, "0x80040220", "privileges")));
        assert!(!is_app_not_yet_known(&Error::timeout("no answer")));
    }

    #[test]
    fn duplicates() {
        assert!(is_duplicate_application_user(&svc(400, "0x8004f511", "")));
        assert!(is_duplicate_attribute(&svc(400, "0x80047013", "")));
        assert!(!is_duplicate_attribute(&svc(400, "0x80040237", "")));
    }
}
