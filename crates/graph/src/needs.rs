//! What each Entra ID step needs from the signed-in admin in Microsoft Graph, and how a 403 is
//! turned into "you lack X, do Y". Permission names come from the Microsoft Learn "Permissions"
//! table of each call (reference/graph.md §1–5; the emulator's `permissions.rs` holds the same
//! facts per endpoint with links, and a test keeps this list, that table and the README's
//! "Roles and permissions each tool needs" table in step).

use s2s_core::{Caller, Error, Kind};

/// The Azure CLI's first-party public client, also the tools' default device-code client.
pub use s2s_core::config::AZURE_CLI_CLIENT_ID;

/// One thing a step does in Graph and what it takes.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    /// The tool that does it.
    pub tool: &'static str,
    /// What it does, for messages ("managing Home Realm Discovery policies").
    pub what: &'static str,
    /// Each group needs one of its permissions (application permission for a service principal,
    /// the same-named delegated scope for a signed-in admin); the first is the one to ask for.
    /// A group may end with [`ACCESS_AS_USER`], a delegated-only scope that Learn lists as a
    /// higher privilege of the call: with it the signed-in admin acts with their own directory
    /// role (checked through `roles`), as with the Azure CLI's tokens.
    pub all_of: &'static [&'static [&'static str]],
    /// Entra roles with which a signed-in admin may do it (any one).
    pub roles: &'static [&'static str],
}

/// `Directory.AccessAsUser.All`: delegated only (no app-only token can hold it), "access the
/// directory as the signed-in user" — a higher privilege for reading and writing applications,
/// service principals, domains and the organization (the Learn permission tables of those calls;
/// the emulator's `permissions.rs` accepts it there), not for consent grants or policies.
pub const ACCESS_AS_USER: &str = "Directory.AccessAsUser.All";

const APP_ADMINS: &[&str] = &[
    "Application Administrator",
    "Cloud Application Administrator",
    "Global Administrator",
];

pub const REGISTER_APP: Need = Need {
    tool: "register-app",
    what: "creating and updating the app registration and its service principal",
    all_of: &[&["Application.ReadWrite.All", ACCESS_AS_USER]],
    roles: APP_ADMINS,
};
pub const READ_ORGANIZATION: Need = Need {
    tool: "register-app",
    what: "reading the tenant id of a tenant given as a domain",
    all_of: &[&[
        "Organization.Read.All",
        "Directory.Read.All",
        ACCESS_AS_USER,
    ]],
    roles: &[],
};
pub const GRANT_CONSENT: Need = Need {
    tool: "grant-consent",
    what: "granting tenant-wide admin consent",
    all_of: &[
        &[
            "DelegatedPermissionGrant.ReadWrite.All",
            "Directory.ReadWrite.All",
        ],
        &["Application.ReadWrite.All", ACCESS_AS_USER],
    ],
    roles: &[
        "Cloud Application Administrator",
        "Application Administrator",
        "Privileged Role Administrator",
        "Global Administrator",
    ],
};
pub const MAKE_SECRET: Need = Need {
    tool: "make-secret",
    what: "adding and removing client secrets",
    all_of: &[&["Application.ReadWrite.All", ACCESS_AS_USER]],
    roles: APP_ADMINS,
};
pub const READ_DOMAINS: Need = Need {
    tool: "set-hrd-policy",
    what: "reading the tenant's domains (is one federated?)",
    all_of: &[&["Domain.Read.All", "Directory.Read.All", ACCESS_AS_USER]],
    roles: &[],
};
pub const HRD_POLICY: Need = Need {
    tool: "set-hrd-policy",
    what: "managing Home Realm Discovery policies and assigning one to the service principal",
    all_of: &[
        &["Policy.ReadWrite.ApplicationConfiguration"],
        &["Application.ReadWrite.All", ACCESS_AS_USER],
    ],
    roles: APP_ADMINS,
};
pub const VERIFY: Need = Need {
    tool: "verify-sync",
    what: "reading the app, its consent, its HRD policy and the tenant's domains",
    all_of: &[
        &[
            "Application.ReadWrite.All",
            "Application.Read.All",
            ACCESS_AS_USER,
        ],
        &[
            "DelegatedPermissionGrant.ReadWrite.All",
            "DelegatedPermissionGrant.Read.All",
        ],
        &[
            "Policy.ReadWrite.ApplicationConfiguration",
            "Policy.Read.All",
        ],
        &["Domain.Read.All", "Directory.Read.All", ACCESS_AS_USER],
    ],
    roles: &[],
};

pub const ASSIGN_ROLE_PURGE: Need = Need {
    tool: "assign-role",
    what: "reading the app registration, to tell whether the soft-deleted user to purge is this setup's",
    all_of: &[&[
        "Application.ReadWrite.All",
        "Application.Read.All",
        ACCESS_AS_USER,
    ]],
    roles: &[],
};

pub const TEARDOWN: Need = Need {
    tool: "teardown",
    what: "removing the app, its service principal, its consent and its HRD policy",
    all_of: &[
        &["Application.ReadWrite.All", ACCESS_AS_USER],
        &[
            "DelegatedPermissionGrant.ReadWrite.All",
            "Directory.ReadWrite.All",
        ],
        &["Policy.ReadWrite.ApplicationConfiguration"],
    ],
    roles: APP_ADMINS,
};

/// Every need of every tool, in runbook order.
pub const ALL: &[Need] = &[
    REGISTER_APP,
    READ_ORGANIZATION,
    GRANT_CONSENT,
    MAKE_SECRET,
    READ_DOMAINS,
    HRD_POLICY,
    ASSIGN_ROLE_PURGE,
    VERIFY,
    TEARDOWN,
];

/// The application permissions a tool asks for (the first of each group), sorted.
pub fn tool_permissions(tool: &str) -> Vec<&'static str> {
    let mut v: Vec<&str> = ALL
        .iter()
        .filter(|n| n.tool == tool)
        .flat_map(|n| n.all_of.iter().filter_map(|g| g.first().copied()))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl Need {
    /// The groups the caller's token does not satisfy (each named by its first permission).
    pub fn missing(&self, caller: &Caller) -> Vec<&'static str> {
        self.missing_except(caller, |_| false)
    }

    /// [`Need::missing`], leaving out the groups `not_needed` says this run has no use for (the
    /// `Policy.*` groups in a tenant without a federated domain, where no HRD policy is made).
    pub fn missing_except(
        &self,
        caller: &Caller,
        not_needed: impl Fn(&[&str]) -> bool,
    ) -> Vec<&'static str> {
        // Directory.AccessAsUser.All is a delegated scope only: in an app-only token's roles it
        // would be meaningless, and is not taken as holding anything.
        let holds = |g: &[&str]| {
            g.iter()
                .any(|p| (caller.delegated || *p != ACCESS_AS_USER) && caller.holds_any(&[p]))
        };
        self.all_of
            .iter()
            .filter(|g| !not_needed(g) && !holds(g))
            .filter_map(|g| g.first().copied())
            .collect()
    }

    /// The fix for a caller that lacks something this need takes; `None` when its token holds
    /// every permission (then a directory role or something else is missing).
    pub fn fix(&self, caller: &Caller) -> String {
        self.fix_then(caller, "re-run (or run `preflight` first)")
    }

    /// [`Need::fix`] as `preflight` gives it: after the consent, the thing to run is preflight
    /// itself (this run's command, to paste), not "`preflight` first".
    /// `missing` is what this run needs and lacks ([`Need::missing_except`]).
    /// Its text does not start with what the step does (the check's line says that), so that
    /// checks lacking the same permission get the same fix, which preflight prints only once.
    pub fn preflight_fix(&self, caller: &Caller, missing: &[&str]) -> String {
        self.fix_for(
            caller,
            missing,
            &format!("run preflight again: {}", s2s_core::hint::same_command()),
            false,
        )
    }

    /// The fix, with `then` as what to do once the permission is consented.
    fn fix_then(&self, caller: &Caller, then: &str) -> String {
        self.fix_for(caller, &self.missing(caller), then, true)
    }

    /// `name_it`: start with what the step does ("{what} needs …"), for an error's hint.
    fn fix_for(&self, caller: &Caller, missing: &[&str], then: &str, name_it: bool) -> String {
        let list = missing.join(" and ");
        let client = caller.app_id.as_deref().unwrap_or("(unknown)");
        if missing.is_empty() {
            if caller.delegated && !self.roles.is_empty() {
                return format!(
                    "{} needs one of the Entra roles {} for the signed-in admin (the token's scopes are enough): \
                     ask a Global Administrator to assign one (Entra admin center > Roles & admins), or activate it in PIM, then re-run",
                    self.what,
                    self.roles.join(", ")
                );
            }
            return format!(
                "{} was refused although the token holds the permissions it needs ({}): check Conditional Access, \
                 PIM activation and app-management policies with the tenant's administrator",
                self.what,
                self.all_of
                    .iter()
                    .filter_map(|g| g.first().copied())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if !caller.delegated {
            let lacking = if name_it {
                format!(
                    "{} needs the Microsoft Graph application permission {list}, which the service principal \
                     (client id {client}) does not hold",
                    self.what
                )
            } else {
                format!(
                    "the service principal (client id {client}) lacks the Microsoft Graph application permission {list}"
                )
            };
            return format!(
                "{lacking}: in Entra admin center > App registrations > that app > \
                 API permissions > Add a permission > Microsoft Graph > Application permissions, add {list}, \
                 select \"Grant admin consent\", wait a minute and {then}{}",
                if self.roles.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; or sign in as an admin holding one of the Entra roles {} (--auth device-code)",
                        self.roles.join(", ")
                    )
                }
            );
        }
        if client.eq_ignore_ascii_case(AZURE_CLI_CLIENT_ID) {
            let lacking = if name_it {
                format!(
                    "{} needs the delegated Microsoft Graph permission {list}, which tokens of the Azure CLI's client \
                     ({AZURE_CLI_CLIENT_ID}, used by --auth az and by default for device-code sign-in) never carry",
                    self.what
                )
            } else {
                format!(
                    "tokens of the Azure CLI's client ({AZURE_CLI_CLIENT_ID}, used by --auth az and by default for \
                     device-code sign-in) never carry the delegated Microsoft Graph permission {list}"
                )
            };
            return format!(
                "{lacking} (Azure/azure-cli issues 23906 and 33062). Register your own public client once: Entra admin \
                 center > App registrations > New registration (single tenant); Authentication > \"Allow public \
                 client flows\": Yes; API permissions > Microsoft Graph > Delegated permissions: {}; \"Grant admin \
                 consent\". Then sign in with it: --auth device-code --login-client-id <its client id> (or \
                 MKTO_S2S_LOGIN_CLIENT_ID)",
                setup_scopes().join(", ")
            );
        }
        format!(
            "{} needs the delegated Microsoft Graph permission {list}, which the sign-in client {client} was not \
             granted: add it under that app's API permissions > Microsoft Graph > Delegated permissions, select \
             \"Grant admin consent\", sign in again and re-run",
            self.what
        )
    }
}

/// The delegated scopes a sign-in client needs for the whole runbook.
pub fn setup_scopes() -> Vec<&'static str> {
    let mut v: Vec<&str> = ALL
        .iter()
        .flat_map(|n| n.all_of.iter().filter_map(|g| g.first().copied()))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// A Graph 403 explained: the missing permission (from the token's claims) or role, and the fix.
/// Other errors pass through unchanged.
pub fn explain_forbidden(e: Error, need: &Need) -> Error {
    if e.status() != Some(403) {
        return e;
    }
    let caller = e.service().and_then(|s| s.caller.clone());
    let hint = match &caller {
        Some(c) => need.fix(c),
        None => format!(
            "{} needs the Microsoft Graph permission {} (application permission for a service principal; \
             for a signed-in admin also one of the Entra roles {})",
            need.what,
            need.all_of
                .iter()
                .filter_map(|g| g.first().copied())
                .collect::<Vec<_>>()
                .join(" and "),
            if need.roles.is_empty() {
                "(none needed)".to_string()
            } else {
                need.roles.join(", ")
            }
        ),
    };
    e.with_kind(Kind::Refused).with_hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(roles: &[&str]) -> Caller {
        Caller {
            app_id: Some("11111111-1111-1111-1111-111111111111".into()),
            delegated: false,
            roles: roles.iter().map(|s| s.to_string()).collect(),
            scopes: Vec::new(),
        }
    }

    #[test]
    fn the_missing_permission_is_named() {
        let c = app(&["Application.ReadWrite.All"]);
        assert_eq!(
            HRD_POLICY.missing(&c),
            vec!["Policy.ReadWrite.ApplicationConfiguration"]
        );
        let fix = HRD_POLICY.fix(&c);
        assert!(fix.contains("application permission Policy.ReadWrite.ApplicationConfiguration"));
        assert!(fix.contains("Grant admin consent"));
    }

    #[test]
    fn the_azure_cli_client_gets_the_register_your_own_advice() {
        let c = Caller {
            app_id: Some(AZURE_CLI_CLIENT_ID.into()),
            delegated: true,
            roles: Vec::new(),
            scopes: vec!["Application.ReadWrite.All".into()],
        };
        let fix = HRD_POLICY.fix(&c);
        assert!(fix.contains("--login-client-id"), "{fix}");
        assert!(fix.contains("23906"), "{fix}");
        let c = Caller {
            scopes: vec![
                "Application.ReadWrite.All".into(),
                "Policy.ReadWrite.ApplicationConfiguration".into(),
            ],
            ..c
        };
        assert!(HRD_POLICY.fix(&c).contains("Entra roles"));
    }

    #[test]
    fn directory_access_as_user_serves_a_signed_in_admin_for_apps_and_domains_not_policies() {
        let cli = Caller {
            app_id: Some(AZURE_CLI_CLIENT_ID.into()),
            delegated: true,
            roles: Vec::new(),
            scopes: vec![
                ACCESS_AS_USER.into(),
                "DelegatedPermissionGrant.ReadWrite.All".into(),
            ],
        };
        for need in [REGISTER_APP, READ_ORGANIZATION, MAKE_SECRET, READ_DOMAINS] {
            assert!(need.missing(&cli).is_empty(), "{}", need.what);
        }
        assert!(GRANT_CONSENT.missing(&cli).is_empty());
        assert_eq!(
            HRD_POLICY.missing(&cli),
            ["Policy.ReadWrite.ApplicationConfiguration"]
        );
        // An app-only token never holds it: the application permission is still asked for.
        let app_only = app(&[ACCESS_AS_USER]);
        assert_eq!(
            MAKE_SECRET.missing(&app_only),
            ["Application.ReadWrite.All"]
        );
        // Without a federated domain the policy groups are not needed.
        let no_policy = |g: &[&str]| g[0].starts_with("Policy.");
        assert!(VERIFY.missing_except(&cli, no_policy).is_empty());
        assert!(TEARDOWN.missing_except(&cli, no_policy).is_empty());
    }

    #[test]
    fn tool_permissions_are_the_first_of_each_group() {
        assert_eq!(
            tool_permissions("set-hrd-policy"),
            vec![
                "Application.ReadWrite.All",
                "Domain.Read.All",
                "Policy.ReadWrite.ApplicationConfiguration"
            ]
        );
    }
}
