//! `preflight` — before any write: can the signed-in admin do the whole setup, and is the
//! tenant ready for it? A read-only checklist, one line per check with its fix.
//!
//! Checks (reference/graph.md §1–5, dataverse.md §1–5, docs/real-service-notes.md):
//! - the Graph token: app-only (`roles`) or delegated (`scp`), and which client;
//! - each setup step's Graph permissions (`s2s_graph::needs`), named when missing, with the fix
//!   (for a delegated sign-in with the Azure CLI's client, which never gets `Policy.*` scopes:
//!   register your own public client and use `--login-client-id`). A delegated token's higher
//!   privilege counts where Learn lists it (`Directory.AccessAsUser.All` with the admin's own
//!   directory role, for apps, domains and the organization). Checks that do not apply say
//!   `skip`: `Organization.Read.All` when the tenant is given as its id (register-app reads it only
//!   for a domain), the HRD policy step and the `Policy.*` needs of verify-sync and teardown when
//!   no federated domain was found in this run, and what this sign-in cannot read;
//! - for a signed-in admin, the Entra directory roles (`/me/memberOf`);
//! - the tenant's domains (a federated one needs the HRD step) and password hash sync (only a
//!   signed-in Global Administrator can read it: the call has no application permission);
//! - the tenant's app-management policy on client-secret lifetime, where readable, against the
//!   lifetime make-secret will ask for (`--expires-in`, as the runbook passes it to both; else
//!   `secret.lifetime`, else 24mo): a shorter maximum fails, with the command that fits it.
//!
//! A fix that several checks share (one consent for three steps) is printed once; the later
//! checks refer to it. Every "run preflight again" is this run's own command, to paste.
//! - in the Dynamics org: the admin's own user (for a service principal, its application user:
//!   Dataverse refuses app-only tokens of apps that are not), its System Administrator role,
//!   and the Marketo solution (step 1) with its version.
//!
//! It never writes to the tenant or the org; `preflight.checks` is `[{id, name, ok, detail,
//! fix}]`. `tenant.domain` (the default domain) and `dynamics.org_name` (the org's friendly
//! name) are written when the document lacks them, so every later step's first line names the
//! target in words. A failed check on a pipe records `steps.preflight.error` (`handed_on`), so
//! `preflight | register-app | …` stops before the first write. The keys it reads and writes and its exit codes: `preflight --help`
//! (rendered from `READS`, `WRITES` and core's exit-code table).
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
use s2s_core::keys;
use s2s_core::lifetime::{DEFAULT_LIFETIME, Lifetime, parse_lifetime};
use s2s_core::run::Outcome;
use s2s_core::{AnyKey, Caller, CommonArgs, Ctx, Result, Tool};
use s2s_dataverse::{
    Dataverse, MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE, MARKETO_SOLUTION, compare_versions,
};
use s2s_graph::Graph;
use s2s_graph::needs::{self, Need};

/// The Dataverse role the admin needs to create users, assign roles and publish.
const ADMIN_ROLE: &str = "System Administrator";

/// Check, before any write, that the signed-in admin may do every setup step and that the
/// tenant and the Dynamics org are ready (Marketo solution installed). Read-only.
///
/// Prints one line per check with its fix on stderr; writes the document with `preflight.*`
/// on stdout. When a check fails at the head of a pipeline, the document goes on marked as a
/// failed step, so the tools after it write nothing.
#[derive(Debug, Parser)]
#[command(
    name = "preflight",
    version,
    after_help = s2s_core::help::after_help::<Cli>()
)]
pub struct Cli {
    /// The client secret lifetime the setup will ask make-secret for (90d, 12w, 24mo, 1y): the
    /// tenant's app-management policy is checked against it [default: secret.lifetime, else 24mo]
    #[arg(long, value_name = "LIFETIME", value_parser = s2s_core::lifetime::parse_lifetime)]
    pub expires_in: Option<Lifetime>,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl Tool for Cli {
    const NAME: &'static str = "preflight";
    const READ_ONLY: bool = true;
    // Not STARTS_SETUP: like every tool but register-app, an empty pipe is a failed previous
    // step; start from nothing with `< /dev/null` or `--state`.
    const READS: &'static [AnyKey] = &[
        keys::TENANT_ID.any(),
        keys::TENANT_DOMAIN.any(),
        keys::TENANT_CLOUD.any(),
        keys::DYNAMICS_URL.any(),
        keys::SECRET_LIFETIME.any(),
    ];
    const WRITES: &'static [AnyKey] = &[
        keys::TENANT_DOMAIN.any(),
        keys::DYNAMICS_ORG_NAME.any(),
        keys::PREFLIGHT_OK.any(),
        keys::PREFLIGHT_AT.any(),
        keys::PREFLIGHT_CHECKS.any(),
    ];
    const EXAMPLES: &'static str = "\
preflight --tenant contoso.onmicrosoft.com --dynamics-url https://contoso.crm.dynamics.com < /dev/null
preflight --state customers/contoso/contoso.state.json --expires-in 180d";
    const HELP_NOTES: &'static str = "\
tenant.domain and dynamics.org_name are written once known, when the document lacks them. Sends
no write. Checks that do not apply (no federated domain: no HRD policy) say skip.";
    const EXIT_NOTES: &'static [(u8, &'static str)] = &[
        (0, "everything the setup needs is there"),
        (
            6,
            "something the setup needs is missing (each failed check says how to fix it)",
        ),
    ];
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

pub fn main() -> std::process::ExitCode {
    s2s_core::run::main::<Cli, _>(run)
}

async fn run(ctx: &mut Ctx, cli: Cli) -> Result<Outcome> {
    let lifetime = match cli.expires_in {
        Some(l) => l,
        None => match ctx.doc.get(keys::SECRET_LIFETIME)? {
            Some(text) => parse_lifetime(text).map_err(|e| {
                s2s_core::Error::usage(format!("state document key {}: {e}", keys::SECRET_LIFETIME))
            })?,
            None => DEFAULT_LIFETIME,
        },
    };
    let mut checks = Vec::new();
    let domain = graph_checks(ctx, lifetime, &mut checks).await?;
    // The target in words for every later step's first line: the tenant's default domain and
    // the org's friendly name, kept once known (a tenant given by id has no domain yet).
    if let Some(d) = domain {
        if ctx.doc.get_value(keys::TENANT_DOMAIN.path()).is_none() {
            ctx.doc.set(keys::TENANT_DOMAIN, d);
        }
    }
    match Dataverse::from_config(&ctx.http) {
        Ok(dv) => {
            dataverse_checks(&dv, &mut checks).await?;
            let answered = checks.iter().any(|c| c.id == "dataverse-user" && c.ok());
            if answered && ctx.doc.get_value(keys::DYNAMICS_ORG_NAME.path()).is_none() {
                if let Ok(Some(name)) = dv
                    .current_organization()
                    .await
                    .map(|o| o.friendly_name.filter(|n| !n.trim().is_empty()))
                {
                    ctx.doc.set(keys::DYNAMICS_ORG_NAME, name);
                }
            }
        }
        Err(_) => checks.push(Check::fail(
            "dynamics-org",
            "Dynamics org",
            "no Dynamics org given",
            "pass --dynamics-url https://<org>.crm.dynamics.com (or MKTO_S2S_DYNAMICS_URL)",
        )),
    }

    let hint = format!(
        "apply the fix shown for each failed check, then {}",
        again()
    );
    let outcome = checklist::record(ctx, keys::PREFLIGHT_CHECKLIST, &checks, &hint);
    if outcome == Outcome::Done {
        ctx.say(&format!(
            "all {} checks passed: the setup can run",
            checks.len()
        ));
    }
    Ok(outcome)
}

/// The token, each step's permissions, directory roles, domains, password hash sync and the
/// app-management policy. Returns the tenant's default domain when the domains were readable.
async fn graph_checks(
    ctx: &Ctx,
    lifetime: Lifetime,
    checks: &mut Vec<Check>,
) -> Result<Option<String>> {
    let g = Graph::new(&ctx.http);
    let token = ctx.http.token(g.root()).await?;
    let Some(caller) = s2s_core::auth::jwt::caller(&token) else {
        checks.push(Check::fail(
            "graph-token",
            "Graph sign-in",
            "the Graph token is not a readable JWT, so its permissions cannot be checked",
            "run the setup and read each step's error; or sign in another way (--auth)",
        ));
        return Ok(None);
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
    // Domains first: with no federated domain the HRD step assigns nothing, so what only it
    // (and its removal and check) would need is not needed in this tenant.
    let domains = g
        .get_if_permitted("domains?$select=id,authenticationType,isDefault")
        .await?;
    let federated: Option<Vec<String>> = domains.as_ref().map(federated_domains);
    let default_domain = domains.as_ref().and_then(|v| {
        v["value"]
            .as_array()?
            .iter()
            .find(|d| d["isDefault"] == serde_json::json!(true))?["id"]
            .as_str()
            .map(str::to_string)
    });
    let no_federation = federated.as_ref().is_some_and(Vec::is_empty);
    let policy_only =
        |g: &[&str]| no_federation && g.first().is_some_and(|p| p.starts_with("Policy."));
    // A tenant given as its id needs no lookup: register-app reads the organization only to
    // turn a domain (contoso.onmicrosoft.com) into the tenant id.
    let tenant_is_id = ctx
        .config()
        .tenant()
        .is_ok_and(|t| s2s_core::guid::parse(t).is_ok());
    for need in needs::ALL {
        let id = format!("graph-{}", need.tool);
        let name = format!("{}: {}", need.tool, need.what);
        if tenant_is_id && need.what == needs::READ_ORGANIZATION.what {
            checks.push(Check::skip(
                &id,
                &name,
                "not needed: the tenant is given as its id",
            ));
        } else if no_federation && need.what == needs::HRD_POLICY.what {
            checks.push(Check::skip(
                &id,
                &name,
                "not needed: no federated domain was found, so set-hrd-policy assigns no policy",
            ));
        } else {
            checks.push(need_check(need, &caller, roles.as_deref(), &policy_only));
        }
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
            None => Check::skip(
                "directory-roles",
                "Entra roles of the signed-in admin",
                "not readable with this sign-in (GET /me/memberOf was refused); each step will tell",
            ),
        });
    }

    let phs = g.password_hash_sync_enabled().await?;
    checks.push(federation_check(federated.as_deref(), phs));
    checks.push(secret_lifetime_check(
        g.secret_lifetime_limit().await?,
        lifetime,
    ));
    Ok(default_domain)
}

/// "run preflight again: <this run's command>", for the fixes.
fn again() -> String {
    format!("run preflight again: {}", s2s_core::hint::same_command())
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

/// One setup step's Graph permissions (and, signed in, its directory roles). Groups that
/// `not_needed` says this tenant has no use for are left out.
fn need_check(
    need: &Need,
    caller: &Caller,
    roles: Option<&[String]>,
    not_needed: &dyn Fn(&[&str]) -> bool,
) -> Check {
    let id = format!("graph-{}", need.tool);
    let name = format!("{}: {}", need.tool, need.what);
    let missing = need.missing_except(caller, not_needed);
    if !missing.is_empty() {
        return Check::fail(
            &id,
            &name,
            format!("the token lacks {}", missing.join(" and ")),
            need.preflight_fix(caller, &missing),
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
                // All permissions are there: the fix names the roles.
                need.preflight_fix(caller, &[]),
            );
        }
    }
    let held: Vec<&str> = need
        .all_of
        .iter()
        .filter(|g| !not_needed(g))
        .filter_map(|g| g.iter().find(|p| caller.holds_any(&[p])).copied())
        .collect();
    let through_user = held.contains(&needs::ACCESS_AS_USER);
    Check::pass(
        &id,
        &name,
        format!(
            "the token holds {}{}",
            held.join(", "),
            if through_user {
                " (acting with the signed-in admin's own directory roles)"
            } else {
                ""
            }
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
            format!(
                "grant Domain.Read.All (see the set-hrd-policy line), then {}",
                again()
            ),
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

/// The tenant's longest client-secret lifetime against the one the setup will ask for
/// (`--expires-in`, as the runbook passes it to make-secret too): a policy that forbids it fails
/// here, before register-app has created anything.
fn secret_lifetime_check(limit: Option<Option<String>>, lifetime: Lifetime) -> Check {
    const NAME: &str = "client secret lifetime policy";
    let id = "secret-lifetime";
    match limit {
        None => Check::skip(
            id,
            NAME,
            "the tenant's app-management policy is not readable with this sign-in (needs Policy.Read.All); \
             make-secret reports a limit if it meets one",
        ),
        Some(None) => Check::pass(
            id,
            NAME,
            format!(
                "no tenant-wide limit on client secret lifetime; make-secret will ask for {lifetime}"
            ),
        ),
        Some(Some(max)) => match Lifetime::from_iso8601(&max) {
            None => Check::warn(
                id,
                NAME,
                format!(
                    "client secrets may live at most {} (a duration this tool cannot read); make-secret will ask for {lifetime}",
                    s2s_core::output::sanitize(&max)
                ),
                None,
            ),
            Some(allowed) if longer(lifetime, allowed) => Check::fail(
                id,
                NAME,
                format!(
                    "client secrets may live at most {} ({allowed}), but the setup would ask make-secret for {lifetime}",
                    s2s_core::output::sanitize(&max)
                ),
                format!(
                    "pass --expires-in {allowed} (or less) to the runbook, or to make-secret and preflight: {}",
                    again_with_expires_in(allowed)
                ),
            ),
            Some(allowed) => Check::pass(
                id,
                NAME,
                format!(
                    "client secrets may live at most {} ({allowed}); make-secret will ask for {lifetime}, within it",
                    s2s_core::output::sanitize(&max)
                ),
            ),
        },
    }
}

/// Whether `a` ends later than `b` when both start now.
fn longer(a: Lifetime, b: Lifetime) -> bool {
    let now = time::OffsetDateTime::now_utc();
    match (a.after(now), b.after(now)) {
        (Some(a), Some(b)) => a > b,
        (None, Some(_)) => true,
        _ => false,
    }
}

/// This run's command with `--expires-in` set to `allowed` (replacing one it was given).
fn again_with_expires_in(allowed: Lifetime) -> String {
    let same = s2s_core::hint::same_command();
    let mut words: Vec<&str> = same.split(' ').collect();
    if let Some(i) = words.iter().position(|w| *w == "--expires-in") {
        words.drain(i..(i + 2).min(words.len()));
    } else if let Some(i) = words.iter().position(|w| w.starts_with("--expires-in=")) {
        words.remove(i);
    }
    let allowed = allowed.to_string();
    words.push("--expires-in");
    words.push(&allowed);
    words.join(" ")
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
                 Users + permissions), then {}",
                me.user_id,
                again()
            ),
        )
    });

    checks.push(match dv.marketo_solution().await? {
        None => Check::fail(
            "marketo-solution",
            "Marketo solution (step 1)",
            format!("\"{MARKETO_SOLUTION}\" is not installed in {org}"),
            format!(
                "import the Marketo solution (Marketo Admin > CRM > Microsoft, then Dynamics Settings > Solutions > Import), then {}",
                again()
            ),
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

    #[test]
    fn a_missing_permission_fails_its_step_with_the_fix() {
        let c = Caller {
            app_id: Some("11111111-1111-1111-1111-111111111111".into()),
            delegated: false,
            roles: vec!["Application.ReadWrite.All".into()],
            scopes: Vec::new(),
        };
        let all = |_: &[&str]| false;
        let ch = need_check(&needs::HRD_POLICY, &c, None, &all);
        assert!(!ch.ok());
        assert!(
            ch.detail
                .contains("Policy.ReadWrite.ApplicationConfiguration")
        );
        assert!(need_check(&needs::MAKE_SECRET, &c, None, &all).ok());
        // Inside preflight, the fix does not say to run preflight first.
        let fix = ch.fix.unwrap_or_default();
        assert!(fix.contains("run preflight again"), "{fix}");
        assert!(!fix.contains("`preflight` first"), "{fix}");
    }

    #[test]
    fn the_secret_lifetime_the_setup_asks_for_is_checked_against_the_policy() {
        let policy = |max: &str| Some(Some(max.to_string()));
        let d = Lifetime::Days;
        assert!(!secret_lifetime_check(policy("P180D"), DEFAULT_LIFETIME).ok());
        let fix = secret_lifetime_check(policy("P180D"), DEFAULT_LIFETIME)
            .fix
            .unwrap_or_default();
        assert!(fix.contains("--expires-in 180d"), "{fix}");
        assert!(secret_lifetime_check(policy("P180D"), d(90)).ok());
        assert!(secret_lifetime_check(policy("P180D"), d(180)).ok());
        assert!(secret_lifetime_check(policy("P2Y"), Lifetime::Months(24)).ok());
        assert!(!secret_lifetime_check(policy("P1Y"), Lifetime::Months(13)).ok());
        assert_eq!(
            secret_lifetime_check(None, DEFAULT_LIFETIME).status,
            s2s_core::checklist::Status::Skip
        );
    }

    #[test]
    fn federation_needs_password_hash_sync() {
        assert!(federation_check(Some(&[]), None).ok());
        assert!(!federation_check(Some(&["contoso.com".into()]), Some(false)).ok());
        assert!(federation_check(Some(&["contoso.com".into()]), None).ok());
        assert!(!federation_check(None, None).ok());
    }
}
