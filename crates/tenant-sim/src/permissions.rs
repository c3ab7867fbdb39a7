//! The one permission table of the emulator: which Microsoft Graph calls accept which
//! application permissions (the `roles` claim of an app-only token), which delegated scopes (the
//! `scp` claim of a user's token) and, for delegated calls, which Entra directory roles of the
//! signed-in user. Copied from the "Permissions" section of each Microsoft Learn API page linked
//! in [`Rule::source`] (read 2026-12; the pages list "least privileged" and "higher privileged"
//! permissions, and any of them is accepted here).
//!
//! Deliberate strictness where the emulator does not model a concept:
//! - `Application.ReadWrite.OwnedBy` is not accepted for writes: it only covers apps the caller
//!   owns, and the emulator does not track owners (a real tenant could accept it for the app the
//!   admin's service principal created).
//! - Directory roles are checked by name, without custom roles or administrative units.
//!
//! The table also says which tool sends each call (`tools`) and which permission the tools'
//! default admin relies on (`needs`): the README's "Roles and permissions each tool needs" table
//! is tested against [`tool_permissions`], and [`default_admin_permissions`] is the admin's
//! app-only token when `--admin-permissions` is not given.

use std::collections::BTreeSet;

/// One endpoint × method.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub method: &'static str,
    /// The path under `/v1.0`, with `{id}` for any key (`applications/{id}` also matches
    /// `applications(uniqueName='x')` and `applications(appId='x')`).
    pub path: &'static str,
    /// Application permissions: every group must be satisfied by one of its members. Empty:
    /// the call does not support application permissions at all.
    pub application: &'static [&'static [&'static str]],
    /// Delegated scopes, same shape.
    pub delegated: &'static [&'static [&'static str]],
    /// For delegated calls: the signed-in user needs one of these directory roles (empty: any
    /// member of the tenant may call it).
    pub roles: &'static [&'static str],
    /// The tools that send this call.
    pub tools: &'static [&'static str],
    /// What the tools' default admin relies on for this call (one member of each group).
    pub needs: &'static [&'static str],
    /// The Microsoft Learn page whose "Permissions" table this row copies.
    pub source: &'static str,
}

const APP_READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.OwnedBy",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const APP_READ_DELEGATED: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
const APP_WRITE: &[&str] = &["Application.ReadWrite.All"];
const APP_WRITE_DELEGATED: &[&str] = &["Application.ReadWrite.All", "Directory.AccessAsUser.All"];
/// Roles that may manage app registrations and service principals (Learn: "Microsoft Entra
/// built-in roles"; Application Developer only for apps it owns, not modelled).
const APP_ADMIN_ROLES: &[&str] = &[
    "Global Administrator",
    "Application Administrator",
    "Cloud Application Administrator",
];
const GRANT_READ: &[&str] = &[
    "DelegatedPermissionGrant.Read.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const GRANT_WRITE: &[&str] = &[
    "DelegatedPermissionGrant.ReadWrite.All",
    "Directory.ReadWrite.All",
];
/// grant-admin-consent.md: Privileged Role Administrator for any API; Cloud Application
/// Administrator / Application Administrator for any but Microsoft Graph app roles.
const CONSENT_ROLES: &[&str] = &[
    "Global Administrator",
    "Privileged Role Administrator",
    "Application Administrator",
    "Cloud Application Administrator",
];
const POLICY_READ: &[&str] = &[
    "Policy.Read.All",
    "Policy.Read.ApplicationConfiguration",
    "Policy.ReadWrite.ApplicationConfiguration",
];
const POLICY_WRITE: &[&str] = &["Policy.ReadWrite.ApplicationConfiguration"];
const POLICY_ROLES: &[&str] = &[
    "Global Administrator",
    "Application Administrator",
    "Cloud Application Administrator",
];
const POLICY_READ_ROLES: &[&str] = &[
    "Global Administrator",
    "Global Reader",
    "Security Reader",
    "Application Administrator",
    "Cloud Application Administrator",
];

/// The table. Order does not matter; each (method, path) appears once.
pub const RULES: &[Rule] = &[
    Rule {
        method: "GET",
        path: "organization",
        application: &[&[
            "Organization.Read.All",
            "Organization.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ]],
        delegated: &[&[
            "User.Read",
            "Organization.Read.All",
            "Directory.Read.All",
            "Directory.AccessAsUser.All",
        ]],
        roles: &[],
        tools: &["register-app"],
        needs: &["Organization.Read.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/organization-list?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "GET",
        path: "domains",
        application: &[&[
            "Domain.Read.All",
            "Domain.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ]],
        delegated: &[&[
            "Domain.Read.All",
            "Domain.ReadWrite.All",
            "Directory.Read.All",
            "Directory.AccessAsUser.All",
        ]],
        roles: &[],
        tools: &["set-hrd-policy", "verify-sync", "preflight"],
        needs: &["Domain.Read.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/domain-list?view=graph-rest-1.0#permissions",
    },
    Rule {
        // "Application: Not supported." Only a signed-in Global Administrator.
        method: "GET",
        path: "directory/onPremisesSynchronization",
        application: &[],
        delegated: &[&[
            "OnPremDirectorySynchronization.Read.All",
            "OnPremDirectorySynchronization.ReadWrite.All",
        ]],
        roles: &["Global Administrator"],
        tools: &["set-hrd-policy", "preflight"],
        needs: &[],
        source: "https://learn.microsoft.com/en-us/graph/api/onpremisesdirectorysynchronization-get?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "GET",
        path: "policies/defaultAppManagementPolicy",
        application: &[&[
            "Policy.Read.All",
            "Policy.ReadWrite.ApplicationConfiguration",
        ]],
        delegated: &[&[
            "Policy.Read.All",
            "Policy.ReadWrite.ApplicationConfiguration",
        ]],
        roles: POLICY_READ_ROLES,
        // make-secret reads it only to quote the maximum after a refused addPassword, and
        // goes on without it when the token may not read it (so it needs nothing more).
        tools: &["preflight", "make-secret"],
        needs: &[],
        source: "https://learn.microsoft.com/en-us/graph/api/tenantappmanagementpolicy-get?view=graph-rest-1.0#permissions",
    },
    Rule {
        // The signed-in user's own directory roles (delegated tokens only: app-only has no /me).
        method: "GET",
        path: "me/memberOf",
        application: &[],
        delegated: &[&[
            "User.Read",
            "Directory.Read.All",
            "Directory.AccessAsUser.All",
        ]],
        roles: &[],
        tools: &["preflight"],
        needs: &[],
        source: "https://learn.microsoft.com/en-us/graph/api/user-list-memberof?view=graph-rest-1.0#permissions",
    },
    // ---- applications ----
    Rule {
        method: "GET",
        path: "applications",
        application: &[APP_READ],
        delegated: &[APP_READ_DELEGATED],
        roles: &[],
        tools: &["register-app", "verify-sync", "teardown"],
        needs: &["Application.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/application-list?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "GET",
        path: "applications/{id}",
        application: &[APP_READ],
        delegated: &[APP_READ_DELEGATED],
        roles: &[],
        // assign-role: only `--purge-deleted` of a user the document does not record (is the
        // app this setup's?).
        tools: &[
            "register-app",
            "make-secret",
            "verify-sync",
            "teardown",
            "assign-role",
        ],
        needs: &["Application.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "POST",
        path: "applications",
        application: &[APP_WRITE],
        delegated: &[APP_WRITE_DELEGATED],
        roles: APP_ADMIN_ROLES,
        tools: &["register-app"],
        needs: &["Application.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/application-post-applications?view=graph-rest-1.0#permissions",
    },
    Rule {
        // Update, and upsert with `Prefer: create-if-missing`.
        method: "PATCH",
        path: "applications/{id}",
        application: &[APP_WRITE],
        delegated: &[APP_WRITE_DELEGATED],
        roles: APP_ADMIN_ROLES,
        tools: &["register-app", "teardown"],
        needs: &["Application.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/application-upsert?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "DELETE",
        path: "applications/{id}",
        application: &[APP_WRITE],
        delegated: &[APP_WRITE_DELEGATED],
        roles: APP_ADMIN_ROLES,
        tools: &["teardown"],
        needs: &["Application.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/application-delete?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "POST",
        path: "applications/{id}/addPassword",
        application: &[APP_WRITE],
        delegated: &[APP_WRITE_DELEGATED],
        roles: APP_ADMIN_ROLES,
        tools: &["make-secret"],
        needs: &["Application.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/application-addpassword?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "POST",
        path: "applications/{id}/removePassword",
        application: &[APP_WRITE],
        delegated: &[APP_WRITE_DELEGATED],
        roles: APP_ADMIN_ROLES,
        tools: &["make-secret"],
        needs: &["Application.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/application-removepassword?view=graph-rest-1.0#permissions",
    },
    // ---- service principals ----
    Rule {
        method: "GET",
        path: "servicePrincipals",
        application: &[APP_READ],
        delegated: &[APP_READ_DELEGATED],
        roles: &[],
        tools: &["verify-sync"],
        needs: &["Application.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/serviceprincipal-list?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "GET",
        path: "servicePrincipals/{id}",
        application: &[APP_READ],
        delegated: &[APP_READ_DELEGATED],
        roles: &[],
        tools: &[
            "register-app",
            "grant-consent",
            "set-hrd-policy",
            "verify-sync",
            "teardown",
        ],
        needs: &["Application.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/serviceprincipal-get?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "POST",
        path: "servicePrincipals",
        application: &[APP_WRITE],
        delegated: &[APP_WRITE_DELEGATED],
        roles: APP_ADMIN_ROLES,
        tools: &["register-app", "grant-consent"],
        needs: &["Application.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/serviceprincipal-post-serviceprincipals?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "PATCH",
        path: "servicePrincipals/{id}",
        application: &[APP_WRITE],
        delegated: &[APP_WRITE_DELEGATED],
        roles: APP_ADMIN_ROLES,
        tools: &["register-app", "grant-consent", "teardown"],
        needs: &["Application.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/serviceprincipal-upsert?view=graph-rest-1.0#permissions",
    },
    // ---- admin consent ----
    Rule {
        method: "DELETE",
        path: "servicePrincipals/{id}",
        application: &[APP_WRITE],
        delegated: &[APP_WRITE_DELEGATED],
        roles: APP_ADMIN_ROLES,
        tools: &["teardown"],
        needs: &["Application.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/serviceprincipal-delete?view=graph-rest-1.0#permissions",
    },
    Rule {
        // The list by type (`deletedItems/microsoft.graph.application`, or `graph.application`)
        // and one item (`deletedItems/{id}`) share this form; the rows of the two Learn pages
        // agree for applications and service principals, the types the emulator holds.
        method: "GET",
        path: "directory/deletedItems/{id}",
        application: &[APP_READ],
        delegated: &[APP_READ_DELEGATED],
        roles: &[],
        tools: &["teardown"],
        needs: &["Application.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/directory-deleteditems-get?view=graph-rest-1.0#permissions",
    },
    Rule {
        // One item read through a type cast (`deletedItems/{id}/graph.servicePrincipal`).
        method: "GET",
        path: "directory/deletedItems/{id}/{id}",
        application: &[APP_READ],
        delegated: &[APP_READ_DELEGATED],
        roles: &[],
        tools: &[],
        needs: &[],
        source: "https://learn.microsoft.com/en-us/graph/api/directory-deleteditems-list?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "DELETE",
        path: "directory/deletedItems/{id}",
        application: &[APP_WRITE],
        delegated: &[APP_WRITE_DELEGATED],
        roles: APP_ADMIN_ROLES,
        tools: &[],
        needs: &[],
        source: "https://learn.microsoft.com/en-us/graph/api/directory-deleteditems-delete?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "POST",
        path: "directory/deletedItems/{id}/restore",
        application: &[APP_WRITE],
        delegated: &[APP_WRITE_DELEGATED],
        roles: APP_ADMIN_ROLES,
        tools: &[],
        needs: &[],
        source: "https://learn.microsoft.com/en-us/graph/api/directory-deleteditems-restore?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "GET",
        path: "oauth2PermissionGrants",
        application: &[GRANT_READ],
        delegated: &[GRANT_READ],
        roles: &[],
        tools: &["grant-consent", "verify-sync", "teardown"],
        needs: &["DelegatedPermissionGrant.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/oauth2permissiongrant-list?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "GET",
        path: "servicePrincipals/{id}/oauth2PermissionGrants",
        application: &[GRANT_READ],
        delegated: &[GRANT_READ],
        roles: &[],
        tools: &[],
        needs: &[],
        source: "https://learn.microsoft.com/en-us/graph/api/serviceprincipal-list-oauth2permissiongrants?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "GET",
        path: "oauth2PermissionGrants/{id}",
        application: &[GRANT_READ],
        delegated: &[GRANT_READ],
        roles: &[],
        tools: &[],
        needs: &[],
        source: "https://learn.microsoft.com/en-us/graph/api/oauth2permissiongrant-get?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "POST",
        path: "oauth2PermissionGrants",
        application: &[GRANT_WRITE],
        delegated: &[GRANT_WRITE],
        roles: CONSENT_ROLES,
        tools: &["grant-consent"],
        needs: &["DelegatedPermissionGrant.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/oauth2permissiongrant-post?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "PATCH",
        path: "oauth2PermissionGrants/{id}",
        application: &[GRANT_WRITE],
        delegated: &[GRANT_WRITE],
        roles: CONSENT_ROLES,
        tools: &["grant-consent"],
        needs: &["DelegatedPermissionGrant.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/oauth2permissiongrant-update?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "DELETE",
        path: "oauth2PermissionGrants/{id}",
        application: &[GRANT_WRITE],
        delegated: &[GRANT_WRITE],
        roles: CONSENT_ROLES,
        tools: &["teardown"],
        needs: &["DelegatedPermissionGrant.ReadWrite.All"],
        source: "https://learn.microsoft.com/en-us/graph/api/oauth2permissiongrant-delete?view=graph-rest-1.0#permissions",
    },
    // ---- Home Realm Discovery policies ----
    Rule {
        method: "GET",
        path: "policies/homeRealmDiscoveryPolicies",
        application: &[POLICY_READ],
        delegated: &[POLICY_READ],
        roles: POLICY_READ_ROLES,
        tools: &["set-hrd-policy"],
        needs: &["Policy.ReadWrite.ApplicationConfiguration"],
        source: "https://learn.microsoft.com/en-us/graph/api/homerealmdiscoverypolicy-list?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "GET",
        path: "policies/homeRealmDiscoveryPolicies/{id}",
        application: &[POLICY_READ],
        delegated: &[POLICY_READ],
        roles: POLICY_READ_ROLES,
        tools: &["set-hrd-policy", "teardown"],
        needs: &["Policy.ReadWrite.ApplicationConfiguration"],
        source: "https://learn.microsoft.com/en-us/graph/api/homerealmdiscoverypolicy-get?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "GET",
        path: "policies/homeRealmDiscoveryPolicies/{id}/appliesTo",
        application: &[POLICY_READ],
        delegated: &[POLICY_READ],
        roles: POLICY_READ_ROLES,
        tools: &["set-hrd-policy", "teardown"],
        needs: &["Policy.ReadWrite.ApplicationConfiguration"],
        source: "https://learn.microsoft.com/en-us/graph/api/homerealmdiscoverypolicy-list-appliesto?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "POST",
        path: "policies/homeRealmDiscoveryPolicies",
        application: &[POLICY_WRITE],
        delegated: &[POLICY_WRITE],
        roles: POLICY_ROLES,
        tools: &["set-hrd-policy"],
        needs: &["Policy.ReadWrite.ApplicationConfiguration"],
        source: "https://learn.microsoft.com/en-us/graph/api/homerealmdiscoverypolicy-post-homerealmdiscoverypolicies?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "PATCH",
        path: "policies/homeRealmDiscoveryPolicies/{id}",
        application: &[POLICY_WRITE],
        delegated: &[POLICY_WRITE],
        roles: POLICY_ROLES,
        tools: &["set-hrd-policy", "teardown"],
        needs: &["Policy.ReadWrite.ApplicationConfiguration"],
        source: "https://learn.microsoft.com/en-us/graph/api/homerealmdiscoverypolicy-update?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "DELETE",
        path: "policies/homeRealmDiscoveryPolicies/{id}",
        application: &[POLICY_WRITE],
        delegated: &[POLICY_WRITE],
        roles: POLICY_ROLES,
        tools: &["set-hrd-policy", "teardown"],
        needs: &["Policy.ReadWrite.ApplicationConfiguration"],
        source: "https://learn.microsoft.com/en-us/graph/api/homerealmdiscoverypolicy-delete?view=graph-rest-1.0#permissions",
    },
    Rule {
        // "Policy.Read.All and Application.Read.All" or "Policy.ReadWrite.ApplicationConfiguration
        // and Application.ReadWrite.All", delegated and application alike: a Policy permission
        // *and* an Application one (docs/real-service-notes.md #22).
        method: "GET",
        path: "servicePrincipals/{id}/homeRealmDiscoveryPolicies",
        application: &[POLICY_READ, APP_READ],
        delegated: &[POLICY_READ, APP_READ_DELEGATED],
        roles: POLICY_READ_ROLES,
        tools: &["set-hrd-policy", "verify-sync", "teardown"],
        needs: &[
            "Policy.ReadWrite.ApplicationConfiguration",
            "Application.ReadWrite.All",
        ],
        source: "https://learn.microsoft.com/en-us/graph/api/serviceprincipal-list-homerealmdiscoverypolicies?view=graph-rest-1.0#permissions",
    },
    Rule {
        // "Policy.Read.All and Application.ReadWrite.All" or "Policy.ReadWrite.ApplicationConfiguration
        // and Application.ReadWrite.All" (reference graph.md §5.3).
        method: "POST",
        path: "servicePrincipals/{id}/homeRealmDiscoveryPolicies/$ref",
        application: &[POLICY_READ, APP_WRITE],
        delegated: &[POLICY_READ, APP_WRITE_DELEGATED],
        roles: POLICY_ROLES,
        tools: &["set-hrd-policy"],
        needs: &[
            "Policy.ReadWrite.ApplicationConfiguration",
            "Application.ReadWrite.All",
        ],
        source: "https://learn.microsoft.com/en-us/graph/api/serviceprincipal-post-homerealmdiscoverypolicies?view=graph-rest-1.0#permissions",
    },
    Rule {
        method: "DELETE",
        path: "servicePrincipals/{id}/homeRealmDiscoveryPolicies/{id}/$ref",
        application: &[POLICY_READ, APP_WRITE],
        delegated: &[POLICY_READ, APP_WRITE_DELEGATED],
        roles: POLICY_ROLES,
        tools: &["set-hrd-policy", "teardown"],
        needs: &[
            "Policy.ReadWrite.ApplicationConfiguration",
            "Application.ReadWrite.All",
        ],
        source: "https://learn.microsoft.com/en-us/graph/api/serviceprincipal-delete-homerealmdiscoverypolicies?view=graph-rest-1.0#permissions",
    },
];

/// Path segments that are names, not keys (anything else in a path is an id).
const NAMES: &[&str] = &[
    "organization",
    "domains",
    "directory",
    "deletedItems",
    "restore",
    "onPremisesSynchronization",
    "policies",
    "defaultAppManagementPolicy",
    "homeRealmDiscoveryPolicies",
    "appliesTo",
    "applications",
    "servicePrincipals",
    "oauth2PermissionGrants",
    "addPassword",
    "removePassword",
    "me",
    "memberOf",
    "$ref",
];

/// The table's form of a request path: `applications(uniqueName='x')/addPassword` and
/// `applications/<guid>/addPassword` both become `applications/{id}/addPassword`.
pub fn template(segments: &[(String, bool)]) -> String {
    let mut out: Vec<String> = Vec::new();
    for (name, keyed) in segments {
        if NAMES.contains(&name.as_str()) {
            out.push(name.clone());
        } else {
            out.push("{id}".into());
        }
        if *keyed {
            out.push("{id}".into());
        }
    }
    out.join("/")
}

/// The rule for a request, if the table has one.
pub fn rule(method: &str, template: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|r| r.method == method && r.path == template)
}

/// Who is calling, from the token's claims.
#[derive(Debug, Clone)]
pub enum Caller<'a> {
    App {
        roles: Vec<&'a str>,
    },
    User {
        scopes: Vec<&'a str>,
        directory_roles: &'a [String],
    },
}

/// Why a call was refused: the first permission group the token does not satisfy, or the
/// missing directory role.
#[derive(Debug, Clone, PartialEq)]
pub enum Denied {
    /// App-only tokens are not accepted by this call at all.
    AppOnlyNotSupported,
    MissingPermission(Vec<&'static str>),
    MissingScope(Vec<&'static str>),
    MissingRole(Vec<&'static str>),
}

fn satisfied(groups: &[&'static [&'static str]], held: &[&str]) -> Result<(), Vec<&'static str>> {
    for g in groups {
        if !g
            .iter()
            .any(|p| held.iter().any(|h| h.eq_ignore_ascii_case(p)))
        {
            return Err(g.to_vec());
        }
    }
    Ok(())
}

/// Does the caller pass this rule?
pub fn check(rule: &Rule, caller: &Caller<'_>) -> Result<(), Denied> {
    match caller {
        Caller::App { roles } => {
            if rule.application.is_empty() {
                return Err(Denied::AppOnlyNotSupported);
            }
            satisfied(rule.application, roles).map_err(Denied::MissingPermission)
        }
        Caller::User {
            scopes,
            directory_roles,
        } => {
            satisfied(rule.delegated, scopes).map_err(Denied::MissingScope)?;
            if !rule.roles.is_empty()
                && !rule
                    .roles
                    .iter()
                    .any(|r| directory_roles.iter().any(|h| h.eq_ignore_ascii_case(r)))
            {
                return Err(Denied::MissingRole(rule.roles.to_vec()));
            }
            Ok(())
        }
    }
}

/// The application permissions a tool relies on (the README's Graph column).
pub fn tool_permissions(tool: &str) -> BTreeSet<&'static str> {
    RULES
        .iter()
        .filter(|r| r.tools.contains(&tool))
        .flat_map(|r| r.needs.iter().copied())
        .collect()
}

/// The directory roles with which a signed-in admin can run a tool: those every write it sends
/// accepts (the README's Entra role column).
pub fn tool_roles(tool: &str) -> BTreeSet<&'static str> {
    let mut out: Option<BTreeSet<&'static str>> = None;
    for r in RULES
        .iter()
        .filter(|r| r.tools.contains(&tool) && !r.roles.is_empty() && r.method != "GET")
    {
        let these: BTreeSet<&'static str> = r.roles.iter().copied().collect();
        out = Some(match out {
            None => these,
            Some(o) => o.intersection(&these).copied().collect(),
        });
    }
    out.unwrap_or_default()
}

/// The app roles of the admin's app-only token by default: what the setup tools need.
pub fn default_admin_permissions() -> Vec<String> {
    let set: BTreeSet<&str> = RULES
        .iter()
        .filter(|r| r.tools.iter().any(|t| *t != "preflight"))
        .flat_map(|r| r.needs.iter().copied())
        .collect();
    set.into_iter().map(str::to_string).collect()
}

/// Delegated Microsoft Graph scopes the Azure CLI's first-party public client
/// (04b07795-8ddb-461a-bbee-02f9e1bf7b46) is pre-authorized for, as its tokens show them
/// (decoded `scp` posted in Azure/azure-cli issue 22775). No `Policy.*` scope: policy endpoints
/// answer 403 to its tokens (Azure/azure-cli issues 23906 and 33062).
pub const AZURE_CLI_GRAPH_SCOPES: &[&str] = &[
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "AuditLog.Read.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "Directory.AccessAsUser.All",
    "Group.ReadWrite.All",
    "User.Read.All",
    "User.ReadWrite.All",
];

/// Delegated scopes of a public client registered in the tenant (`isFallbackPublicClient`): the
/// emulator assumes it was registered with the delegated permissions the README lists and
/// admin-consented, which is how the README tells admins to register one.
pub const REGISTERED_CLIENT_GRAPH_SCOPES: &[&str] = &[
    "Application.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "Directory.Read.All",
    "OnPremDirectorySynchronization.Read.All",
    "Policy.Read.All",
    "Policy.ReadWrite.ApplicationConfiguration",
    "User.Read",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(n: &str, k: bool) -> (String, bool) {
        (n.to_string(), k)
    }

    #[test]
    fn paths_become_templates() {
        assert_eq!(
            template(&[seg("applications", true), seg("addPassword", false)]),
            "applications/{id}/addPassword"
        );
        assert_eq!(
            template(&[
                seg("servicePrincipals", false),
                seg("5f0c0b1e-0000-0000-0000-000000000000", false),
                seg("homeRealmDiscoveryPolicies", false),
                seg("$ref", false)
            ]),
            "servicePrincipals/{id}/homeRealmDiscoveryPolicies/$ref"
        );
    }

    #[test]
    fn each_endpoint_appears_once_and_cites_learn() {
        for (i, a) in RULES.iter().enumerate() {
            assert!(
                a.source.starts_with("https://learn.microsoft.com/"),
                "{}",
                a.path
            );
            for b in &RULES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {}",
                    a.method,
                    a.path
                );
            }
            // what the default admin relies on must pass the rule
            if !a.needs.is_empty() {
                assert_eq!(
                    check(
                        a,
                        &Caller::App {
                            roles: a.needs.to_vec()
                        }
                    ),
                    Ok(()),
                    "{} {}",
                    a.method,
                    a.path
                );
            }
        }
    }

    #[test]
    fn hrd_writes_need_policy_permission() {
        let r = rule("POST", "policies/homeRealmDiscoveryPolicies").expect("row");
        assert_eq!(
            check(
                r,
                &Caller::App {
                    roles: vec!["Application.ReadWrite.All"]
                }
            ),
            Err(Denied::MissingPermission(vec![
                "Policy.ReadWrite.ApplicationConfiguration"
            ]))
        );
        let roles = vec!["Global Administrator".to_string()];
        let cli = Caller::User {
            scopes: AZURE_CLI_GRAPH_SCOPES.to_vec(),
            directory_roles: &roles,
        };
        assert!(matches!(check(r, &cli), Err(Denied::MissingScope(_))));
    }

    #[test]
    fn listing_a_service_principals_hrd_policies_needs_a_policy_and_an_application_permission() {
        let r = rule("GET", "servicePrincipals/{id}/homeRealmDiscoveryPolicies").expect("row");
        assert_eq!(
            check(
                r,
                &Caller::App {
                    roles: vec!["Policy.Read.All"]
                }
            ),
            Err(Denied::MissingPermission(APP_READ.to_vec()))
        );
        assert_eq!(
            check(
                r,
                &Caller::App {
                    roles: vec!["Policy.Read.All", "Application.Read.All"]
                }
            ),
            Ok(())
        );
    }

    #[test]
    fn on_premises_sync_is_delegated_only() {
        let r = rule("GET", "directory/onPremisesSynchronization").expect("row");
        let all: Vec<&str> = default_admin_permissions()
            .iter()
            .map(|s| Box::leak(s.clone().into_boxed_str()) as &str)
            .collect();
        assert_eq!(
            check(r, &Caller::App { roles: all }),
            Err(Denied::AppOnlyNotSupported)
        );
    }

    #[test]
    fn the_default_admin_holds_what_the_tools_need() {
        assert_eq!(
            default_admin_permissions(),
            vec![
                "Application.ReadWrite.All",
                "DelegatedPermissionGrant.ReadWrite.All",
                "Domain.Read.All",
                "Organization.Read.All",
                "Policy.ReadWrite.ApplicationConfiguration"
            ]
        );
    }
}
