//! `preflight` — before any write: can the signed-in admin do the whole setup, and is the
//! tenant ready for it? A read-only checklist, one line per check with its fix.
//!
//! Checks (reference/graph.md §1–5, dataverse.md §1–5, docs/real-service-notes.md):
//! - the Graph token: app-only (`roles`) or delegated (`scp`), and which client;
//! - each setup step's Graph permissions (`s2s_graph::needs`), named when missing, with the fix
//!   (for a delegated sign-in with the Azure CLI's client, which never gets `Policy.*` scopes:
//!   register your own public client and use `--login-client-id`); `Organization.Read.All` only
//!   when the tenant is given as a domain (register-app reads the tenant id then), else the line
//!   says it is not needed;
//! - for a signed-in admin, the Entra directory roles (`/me/memberOf`);
//! - the tenant's domains (a federated one needs the HRD step) and password hash sync (only a
//!   signed-in Global Administrator can read it: the call has no application permission);
//! - the tenant's app-management policy on client-secret lifetime, where readable;
//! - in the Dynamics org: the admin's own user (for a service principal, its application user:
//!   Dataverse refuses app-only tokens of apps that are not), its System Administrator role,
//!   and the Marketo solution (step 1) with its version.
//!
//! Input keys:  `tenant.*`, `dynamics.url` (or `--dynamics-url`); nothing else.
//! Output keys: `preflight.ok`, `preflight.at`, `preflight.checks` (`[{id, name, ok, detail,
//!              fix}]`), `steps.preflight`.
//! Exit codes:  0 every check passed; 6 something setup needs is missing (the document is still
//!              written); 2 bad input; 3 sign-in failed; 5 timed out; 1 unexpected. It never
//!              writes to the tenant or the org.
//!
//! Example:
//! ```text
//! preflight --tenant contoso.onmicrosoft.com --dynamics-url https://contoso.crm.dynamics.com \
//!   < /dev/null | register-app | grant-consent | ...
//! ```

use std::cmp::Ordering;

use clap::Parser;
use serde_json::Value;

use s2s_core::checklist::{self, Check};
use s2s_core::{Caller, CommonArgs, Ctx, Key, Result, Tool};
use s2s_dataverse::{
    Dataverse, MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE, MARKETO_SOLUTION, compare_versions,
};
use s2s_graph::Graph;
use s2s_graph::needs::{self, Need};

/// The Dataverse role the admin needs to create users, assign roles and publish.
const ADMIN_ROLE: &str = "System Administrator";
/// The help's closing part: examples and the keys, then the exit codes from core's one table.
fn after_help() -> String {
    format!(
        "{}\n{}",
        "\
Examples:
  preflight --tenant contoso.onmicrosoft.com --dynamics-url https://contoso.crm.dynamics.com < /dev/null
  preflight --state customers/contoso/contoso.state.json

Reads tenant.* and dynamics.url; writes preflight.ok, preflight.checks. Sends no write.",
        s2s_core::exit_codes::help(true, &[(0, "everything the setup needs is there"), (6, "something the setup needs is missing (each failed check says how to fix it)")])
    )
}

/// Check, before any write, that the signed-in admin may do every setup step and that the
/// tenant and the Dynamics org are ready (Marketo solution installed). Read-only.
///
/// Prints one line per check with its fix on stderr; writes the document with `preflight.*`
/// on stdout.
#[derive(Debug, Parser)]
#[command(
    name = "preflight",
    version,
    after_help = after_help()
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
}

impl Tool for Cli {
    const NAME: &'static str = "preflight";
    const READ_ONLY: bool = true;
    // Not STARTS_SETUP: like every tool but register-app, an empty pipe is a failed previous
    // step; start from nothing with `< /dev/null` or `--state`.
    const READS: &'static [(&'static str, Key)] = &[];
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

pub fn main() -> std::process::ExitCode {
    s2s_core::run::main::<Cli, _>(run)
}

async fn run(ctx: &mut Ctx, _cli: Cli) -> Result<()> {
    let mut checks = Vec::new();
    graph_checks(ctx, &mut checks).await?;
    match Dataverse::from_config(&ctx.http) {
        Ok(dv) => dataverse_checks(&dv, &mut checks).await?,
        Err(_) => checks.push(Check::fail(
            "dynamics-org",
            "Dynamics org",
            "no Dynamics org given",
            "pass --dynamics-url https://<org>.crm.dynamics.com (or MKTO_S2S_DYNAMICS_URL)",
        )),
    }

    if let Some(failed) = checklist::record(ctx, "preflight", &checks) {
        return Err(
            failed.with_hint("apply the fix shown for each failed check, then run preflight again")
        );
    }
    ctx.say(&format!(
        "all {} checks passed: the setup can run",
        checks.len()
    ));
    Ok(())
}

/// The token, each step's permissions, directory roles, domains, password hash sync and the
/// app-management policy.
async fn graph_checks(ctx: &Ctx, checks: &mut Vec<Check>) -> Result<()> {
    let g = Graph::new(&ctx.http);
    let token = ctx.http.tokens().token(&ctx.http, g.root()).await?;
    let Some(caller) = s2s_core::auth::token_caller(&token) else {
        checks.push(Check::fail(
            "graph-token",
            "Graph sign-in",
            "the Graph token is not a readable JWT, so its permissions cannot be checked",
            "run the setup and read each step's error; or sign in another way (--auth)",
        ));
        return Ok(());
    };
    let client = caller.app_id.clone().unwrap_or_else(|| "(unknown)".into());
    let held = if caller.delegated {
        &caller.scopes
    } else {
        &caller.roles
    };
    checks.push(Check::pass(
        "graph-token",
        "Graph sign-in",
        format!(
            "{} token of client {client}; {}: {}",
            if caller.delegated {
                "delegated (signed-in admin)"
            } else {
                "app-only (service principal)"
            },
            if caller.delegated {
                "scopes"
            } else {
                "application permissions"
            },
            if held.is_empty() {
                "(none)".to_string()
            } else {
                held.join(", ")
            }
        ),
    ));

    let roles = if caller.delegated {
        g.my_directory_roles().await?
    } else {
        None
    };
    // A tenant given as its id needs no lookup: register-app reads the organization only to
    // turn a domain (contoso.onmicrosoft.com) into the tenant id.
    let tenant_is_id = ctx
        .config()
        .tenant()
        .is_ok_and(|t| s2s_core::guid::parse(t).is_ok());
    for need in needs::ALL {
        if tenant_is_id && need.what == needs::READ_ORGANIZATION.what {
            checks.push(Check::pass(
                &format!("graph-{}", need.tool),
                &format!("{}: {}", need.tool, need.what),
                "not needed: the tenant is given as its id",
            ));
            continue;
        }
        checks.push(need_check(need, &caller, roles.as_deref()));
    }
    if caller.delegated {
        checks.push(match &roles {
            Some(r) => Check::pass(
                "directory-roles",
                "Entra roles of the signed-in admin",
                if r.is_empty() {
                    "(none)".to_string()
                } else {
                    r.join(", ")
                },
            ),
            None => Check::pass(
                "directory-roles",
                "Entra roles of the signed-in admin",
                "not readable with this sign-in (GET /me/memberOf was refused); each step will tell",
            ),
        });
    }

    // Domains: a federated one means the HRD step acts, and it needs password hash sync.
    let federated: Option<Vec<String>> = g
        .get_if_permitted("domains?$select=id,authenticationType")
        .await?
        .map(|v| federated_domains(&v));
    let phs = g.password_hash_sync_enabled().await?;
    checks.push(federation_check(federated.as_deref(), phs));
    checks.push(secret_lifetime_check(g.secret_lifetime_limit().await?));
    Ok(())
}

/// The federated domains of a `GET /domains` answer.
fn federated_domains(v: &Value) -> Vec<String> {
    v["value"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|d| {
                    d["authenticationType"]
                        .as_str()
                        .is_some_and(|t| t.eq_ignore_ascii_case("federated"))
                })
                .filter_map(|d| d["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// One setup step's Graph permissions (and, signed in, its directory roles).
fn need_check(need: &Need, caller: &Caller, roles: Option<&[String]>) -> Check {
    let id = format!("graph-{}", need.tool);
    let name = format!("{}: {}", need.tool, need.what);
    let missing = need.missing(caller);
    if !missing.is_empty() {
        return Check::fail(
            &id,
            &name,
            format!("the token lacks {}", missing.join(" and ")),
            need.preflight_fix(caller),
        );
    }
    if let (true, Some(held), false) = (caller.delegated, roles, need.roles.is_empty()) {
        if !need
            .roles
            .iter()
            .any(|r| held.iter().any(|h| h.eq_ignore_ascii_case(r)))
        {
            return Check::fail(
                &id,
                &name,
                format!(
                    "the signed-in admin has none of the roles {}",
                    need.roles.join(", ")
                ),
                need.preflight_fix(&Caller {
                    // all permissions are there: the fix names the roles
                    ..caller.clone()
                }),
            );
        }
    }
    Check::pass(
        &id,
        &name,
        format!(
            "the token holds {}",
            need.all_of
                .iter()
                .filter_map(|g| g.iter().find(|p| caller.holds_any(&[p])).copied())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

fn federation_check(federated: Option<&[String]>, phs: Option<bool>) -> Check {
    const NAME: &str = "federated domains and password hash sync";
    let phs_text = match phs {
        Some(true) => "password hash sync is on",
        Some(false) => "password hash sync is off",
        None => {
            "password hash sync is not readable with this sign-in (GET /directory/onPremisesSynchronization accepts no \
             application permission; a signed-in Global Administrator can read it)"
        }
    };
    match federated {
        None => Check::fail(
            "federation",
            NAME,
            "the tenant's domains are not readable",
            "grant Domain.Read.All (see the set-hrd-policy line), then run preflight again",
        ),
        Some([]) => Check::pass(
            "federation",
            NAME,
            format!("no federated domain: no Home Realm Discovery policy is needed; {phs_text}"),
        ),
        Some(f) if phs == Some(false) => Check::fail(
            "federation",
            NAME,
            format!(
                "federated domain(s) {}, but {phs_text}: Marketo's password sign-in through the HRD policy needs it",
                f.join(", ")
            ),
            "turn on password hash sync in Microsoft Entra Connect (or Cloud Sync) for the Marketo sync user, then re-run",
        ),
        Some(f) => Check::pass(
            "federation",
            NAME,
            format!(
                "federated domain(s) {}: set-hrd-policy will assign the HRD policy; {phs_text}",
                f.join(", ")
            ),
        ),
    }
}

fn secret_lifetime_check(limit: Option<Option<String>>) -> Check {
    const NAME: &str = "client secret lifetime policy";
    match limit {
        None => Check::pass(
            "secret-lifetime",
            NAME,
            "the tenant's app-management policy is not readable with this sign-in (needs Policy.Read.All); \
             make-secret reports a limit if it meets one",
        ),
        Some(None) => Check::pass(
            "secret-lifetime",
            NAME,
            "no tenant-wide limit on client secret lifetime",
        ),
        Some(Some(max)) => Check::pass(
            "secret-lifetime",
            NAME,
            format!(
                "client secrets may live at most {max}: run make-secret with --expires-in within it (its default is 24mo)"
            ),
        ),
    }
}

/// The admin in the org (its application user, for a service principal), its role, and the
/// Marketo solution.
async fn dataverse_checks(dv: &Dataverse<'_>, checks: &mut Vec<Check>) -> Result<()> {
    let org = dv.org().to_string();
    let me = match dv.who_am_i().await {
        Ok(w) => w,
        Err(e) if e.status() == Some(403) => {
            checks.push(Check::fail(
                "dataverse-user",
                "the admin's user in the Dynamics org",
                format!("{org} refused the admin: {e}"),
                e.hint.clone().unwrap_or_else(|| {
                    "add the admin (or its app, as an application user) to the org with the System Administrator role".into()
                }),
            ));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    checks.push(Check::pass(
        "dataverse-user",
        "the admin's user in the Dynamics org",
        format!("{org} knows the admin as user {}", me.user_id),
    ));
    let roles = dv.user_roles(&me.user_id).await?;
    let names: Vec<String> = roles.iter().filter_map(|r| r.name.clone()).collect();
    checks.push(if names.iter().any(|n| n.eq_ignore_ascii_case(ADMIN_ROLE)) {
        Check::pass(
            "dataverse-role",
            "the admin's security role",
            format!("holds {ADMIN_ROLE}"),
        )
    } else {
        Check::fail(
            "dataverse-role",
            "the admin's security role",
            format!(
                "holds {}; creating the application user, assigning roles and publishing need {ADMIN_ROLE}",
                if names.is_empty() {
                    "no role".to_string()
                } else {
                    names.join(", ")
                }
            ),
            format!(
                "give user {} the {ADMIN_ROLE} role (Power Platform admin center > Environments > the org > Settings > \
                 Users + permissions), then run preflight again",
                me.user_id
            ),
        )
    });

    checks.push(match dv.marketo_solution().await? {
        None => Check::fail(
            "marketo-solution",
            "Marketo solution (step 1)",
            format!("\"{MARKETO_SOLUTION}\" is not installed in {org}"),
            "import the Marketo solution (Marketo Admin > CRM > Microsoft, then Dynamics Settings > Solutions > Import), then run preflight again",
        ),
        Some(s) => {
            let v = s.version.clone().unwrap_or_else(|| "unknown".into());
            let old = matches!(
                compare_versions(&v, MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE),
                Some(Ordering::Less)
            );
            Check::pass(
                "marketo-solution",
                "Marketo solution (step 1)",
                format!(
                    "\"{MARKETO_SOLUTION}\" ({}) version {v} is installed{}",
                    s.uniquename,
                    if old {
                        format!(
                            "; older than {MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE}: every user working with Marketo data needs the Marketo Sync User role"
                        )
                    } else {
                        String::new()
                    }
                ),
            )
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_missing_permission_fails_its_step_with_the_fix() {
        let c = Caller {
            app_id: Some("11111111-1111-1111-1111-111111111111".into()),
            delegated: false,
            roles: vec!["Application.ReadWrite.All".into()],
            scopes: Vec::new(),
        };
        let ch = need_check(&needs::HRD_POLICY, &c, None);
        assert!(!ch.ok());
        assert!(
            ch.detail
                .contains("Policy.ReadWrite.ApplicationConfiguration")
        );
        assert!(need_check(&needs::MAKE_SECRET, &c, None).ok());
        // Inside preflight, the fix does not say to run preflight first.
        let fix = ch.fix.unwrap_or_default();
        assert!(fix.contains("run preflight again"), "{fix}");
        assert!(!fix.contains("`preflight` first"), "{fix}");
    }

    #[test]
    fn federation_needs_password_hash_sync() {
        assert!(federation_check(Some(&[]), None).ok());
        assert!(!federation_check(Some(&["contoso.com".into()]), Some(false)).ok());
        assert!(federation_check(Some(&["contoso.com".into()]), None).ok());
        assert!(!federation_check(None, None).ok());
    }
}
