//! `grant-consent`: the runbook's "grant admin consent" step (Marketo S2S step 2; graph.md §3.1).
//!
//! Ensures exactly one tenant-wide delegated grant (`oauth2PermissionGrant`, `consentType`
//! `AllPrincipals`) from the app's service principal to the Dynamics CRM service principal whose
//! `scope` contains `user_impersonation`. This is what the portal's "Grant admin consent" button
//! does; Marketo signs in with ROPC as the sync user and needs it (graph.md §0).
//!
//! What "already done" means (design.md, "Idempotency keys"): the grants filtered by clientId,
//! resourceId and consentType. A grant that lacks a scope gets it added by PATCH, never a second
//! grant. When the tenant has no Dynamics CRM service principal yet it is created (an idempotent
//! upsert by appId, graph.md §2) and the tool waits until it is readable before granting.
//!
//! Lost answers: core retries a POST whose answer was lost; the retry then meets 409 (the grant
//! exists). That is treated as "exists": the grant is re-read, waiting out replication, and adopted.
//!
//! `consent.created` records whether this setup created the grant (true) or found one (false).
//! A grant carries no mark: teardown removes grants only with a service principal that goes
//! (one carrying this setup's mark); on a service principal it keeps (an adopted app's own) it
//! keeps the grant too and, when this records that the setup made it, says how to revoke it.
//!
//! Kills: before the grant's POST, `consent.pending_create: true` is saved to the `--state` file
//! (`Ctx::checkpoint`). A run killed after the POST went through but before the document was
//! saved leaves it there; the re-run finds the grant, records it `consent.created: true`, and
//! removes the intent, as every run that ends does.
//!
//! The keys it reads and writes and its exit codes: `grant-consent --help` (rendered from
//! `READS`, `WRITES` and core's exit-code table).
//!
//! Example:
//! ```text
//! register-app --name "Marketo Integration" | grant-consent | make-secret > state.json
//! ```

use clap::Parser;

use s2s_core::keys;
use s2s_core::retry::{Poll, until_ready};
use s2s_core::{AnyKey, CommonArgs, Ctx, Error, Result};
use s2s_graph::{
    DYNAMICS_CRM_APP_ID, Graph, PermissionGrant, ServicePrincipal, SpRef, USER_IMPERSONATION,
};

/// Placeholder shown in the `--dry-run` plan for an id that only the create would return.
const PLANNED_RESOURCE: &str = "<id of the Dynamics CRM service principal, once created>";

/// Ensure tenant-wide admin consent for the app to call Dynamics 365 as the signed-in user.
///
/// Grants the app's service principal the Dynamics CRM delegated scope user_impersonation for all
/// users (consentType AllPrincipals), adding the scope to an existing grant instead of creating a
/// second one, and creating the Dynamics CRM service principal first when the tenant has none.
#[derive(Debug, Parser)]
#[command(
    name = "grant-consent",
    version,
    after_help = s2s_core::help::after_help::<Cli>()
)]
pub struct Cli {
    /// Object id of the app's service principal [state: app.service_principal_id]
    #[arg(long, value_name = "GUID", value_parser = s2s_core::guid::clap_parser)]
    pub service_principal_id: Option<String>,

    /// Application (client) id of the app, to look up its service principal when its id is not
    /// known [state: app.client_id]
    #[arg(long, value_name = "GUID", value_parser = s2s_core::guid::clap_parser)]
    pub client_id: Option<String>,

    /// Delegated Dynamics CRM scope to grant; repeat for several
    #[arg(long = "scope", value_name = "SCOPE", default_value = USER_IMPERSONATION, value_parser = parse_scope)]
    pub scopes: Vec<String>,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl s2s_core::Tool for Cli {
    const NAME: &'static str = "grant-consent";
    const READS: &'static [AnyKey] = &[
        keys::APP_SERVICE_PRINCIPAL_ID.any(),
        keys::APP_CLIENT_ID.any(),
        keys::CONSENT_GRANT_ID.any(),
        keys::CONSENT_CREATED.any(),
        keys::CONSENT_PENDING_CREATE.any(),
    ];
    const WRITES: &'static [AnyKey] = &[
        keys::CONSENT_GRANT_ID.any(),
        keys::CONSENT_RESOURCE_SERVICE_PRINCIPAL_ID.any(),
        keys::CONSENT_SCOPE.any(),
        keys::CONSENT_CREATED.any(),
        keys::CONSENT_PENDING_CREATE.any(),
    ];
    const EXAMPLES: &'static str = "\
register-app --name 'Marketo Integration' | grant-consent | make-secret > state.json
grant-consent --state marketo-s2s.state.json";
    const HELP_NOTES: &'static str = "\
The app's service principal is app.service_principal_id, or looked up by app.client_id.
consent.created is true when this setup created the grant, false when it found one. A re-run
sends no write. consent.pending_create is saved to --state just before the grant is created and
removed when the run ends: a re-run after a kill records the grant it finds as created.";
    const EXIT_NOTES: &'static [(u8, &'static str)] = &[(4, "e.g. the admin role is missing")];
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

pub fn main() -> std::process::ExitCode {
    s2s_core::run::main::<Cli, _>(run)
}

/// A scope is one claim value (`user_impersonation`); the grant's `scope` is a space-separated
/// list of them (graph.md §3.1), so a space inside one would silently become two.
fn parse_scope(s: &str) -> std::result::Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("a scope must not be empty".into());
    }
    if !t
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(format!(
            "{s:?} is not a scope name (letters, digits, '_', '.', '-'), e.g. user_impersonation"
        ));
    }
    Ok(t.to_string())
}

async fn run(ctx: &mut Ctx, cli: Cli) -> Result<()> {
    let client_ref = SpRef::from_flags_or_doc(
        cli.service_principal_id.as_deref(),
        cli.client_id.as_deref(),
        &ctx.doc,
    )?;
    let mut wanted: Vec<String> = Vec::new();
    for s in &cli.scopes {
        if !wanted.contains(s) {
            wanted.push(s.clone());
        }
    }

    // Read before this run records its own: an earlier run was killed while creating the grant.
    let earlier_create = ctx.doc.get(keys::CONSENT_PENDING_CREATE)? == Some(true);

    let g = Graph::new(&ctx.http);
    // A grant for a service principal the replica does not know yet is refused (graph.md §7.4).
    let client = g
        .wait_for_service_principal(&client_ref)
        .await
        .map_err(explain)?;
    let resource = ensure_dynamics_sp(ctx, &g).await?;
    if let Some(r) = &resource {
        warn_unknown_scopes(ctx, r, &wanted);
    }
    let resource_id = resource.as_ref().map(|r| r.id.clone());
    let outcome = match find_grant(ctx, &g, &client, resource_id.as_deref(), &wanted).await? {
        Found::Grant(outcome) => outcome,
        Found::Missing { resource_id } => {
            // The intent is saved before the POST: if the run is killed once it went out,
            // whether or not its answer came back, the re-run knows the grant it then finds is
            // this setup's.
            if !ctx.dry_run() {
                ctx.doc.set(keys::CONSENT_PENDING_CREATE, true);
                ctx.checkpoint()?;
            }
            match create_grant(ctx, &g, &client, &resource_id, &wanted).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    // Refused before anything was committed: no grant of ours to find later.
                    if !e.ambiguous {
                        ctx.doc.remove(keys::CONSENT_PENDING_CREATE);
                    }
                    return Err(e);
                }
            }
        }
    };

    // Made by this setup: by this run, by an earlier run that recorded it for this grant, or
    // by an earlier run killed after its create went out (the grant found is that create's).
    let recorded = ctx.doc.get(keys::CONSENT_CREATED)? == Some(true)
        && ctx.doc.get(keys::CONSENT_GRANT_ID)?.is_some_and(|d| {
            outcome
                .grant_id
                .as_deref()
                .is_some_and(|g| g.eq_ignore_ascii_case(d))
        });
    let killed_create = earlier_create && outcome.grant_id.is_some();
    ctx.doc.set(
        keys::CONSENT_CREATED,
        outcome.created || recorded || killed_create,
    );
    ctx.doc.remove(keys::CONSENT_PENDING_CREATE);
    if let Some(id) = &outcome.grant_id {
        ctx.doc.set(keys::CONSENT_GRANT_ID, id);
    }
    if let Some(r) = &resource_id {
        ctx.doc.set(keys::CONSENT_RESOURCE_SERVICE_PRINCIPAL_ID, r);
    }
    ctx.doc.set(keys::CONSENT_SCOPE, outcome.scope);
    Ok(())
}

/// The Dynamics CRM service principal of this tenant, created when missing (graph.md §2, §11:
/// a tenant without a Dynamics org may lack it). `None` only in `--dry-run` when it would be created.
async fn ensure_dynamics_sp(ctx: &Ctx, g: &Graph<'_>) -> Result<Option<ServicePrincipal>> {
    // A grant naming a resource the replica does not know yet is refused (§7.4): readable.
    match g
        .ensure_dynamics_crm_service_principal(true, ctx.reporter())
        .await
        .map_err(explain)?
    {
        None => {
            ctx.say(&format!(
                "would create the Dynamics CRM service principal (appId {DYNAMICS_CRM_APP_ID}), missing in this tenant"
            ));
            Ok(None)
        }
        Some(found) => {
            if found.created {
                ctx.say(&format!(
                    "created the Dynamics CRM service principal {} (appId {DYNAMICS_CRM_APP_ID}), missing in this tenant",
                    found.sp.id
                ));
            }
            Ok(Some(found.sp))
        }
    }
}

/// Graph accepts any scope string in a grant, so a typo would be granted silently; the resource
/// publishes its scopes (graph.md F-7), so say so when one is not among them.
fn warn_unknown_scopes(ctx: &Ctx, resource: &ServicePrincipal, wanted: &[String]) {
    if resource.oauth2_permission_scopes.is_empty() {
        return;
    }
    for w in wanted {
        if !resource
            .oauth2_permission_scopes
            .iter()
            .any(|s| s.value.as_deref() == Some(w.as_str()))
        {
            ctx.warn(&format!(
                "the Dynamics CRM service principal publishes no delegated scope {w:?}; granting it anyway"
            ));
        }
    }
}

#[derive(Debug, PartialEq)]
struct Outcome {
    /// `None` only in `--dry-run` when the grant would be created.
    grant_id: Option<String>,
    /// The grant's whole scope after this run.
    scope: String,
    /// This run created the grant (or, in a dry run, would).
    created: bool,
}

/// Scopes of `have` followed by those of `wanted` it lacks; `None` when nothing is missing.
fn merged_scope(have: &[&str], wanted: &[String]) -> Option<String> {
    let missing: Vec<&str> = wanted
        .iter()
        .map(String::as_str)
        .filter(|w| !have.contains(w))
        .collect();
    if missing.is_empty() {
        return None;
    }
    Some(
        have.iter()
            .copied()
            .chain(missing)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Of several AllPrincipals grants for one client/resource pair (made by other tools), the one
/// that already has the most of the wanted scopes.
fn pick(grants: &[PermissionGrant], wanted: &[String]) -> Option<usize> {
    (0..grants.len()).max_by_key(|&i| {
        let have = grants[i].scopes();
        (
            wanted.iter().filter(|w| have.contains(&w.as_str())).count(),
            std::cmp::Reverse(i),
        )
    })
}

/// Where the grant stands before any create.
enum Found {
    /// A grant exists (its missing scopes now added), or the dry-run plan with the Dynamics CRM
    /// service principal still to be created.
    Grant(Outcome),
    /// No grant for this client and resource: it is to be created.
    Missing { resource_id: String },
}

/// The app's grant to Dynamics CRM when there is one, with the wanted scopes added (one grant,
/// never a second).
async fn find_grant(
    ctx: &Ctx,
    g: &Graph<'_>,
    client: &ServicePrincipal,
    resource_id: Option<&str>,
    wanted: &[String],
) -> Result<Found> {
    let Some(resource_id) = resource_id else {
        // --dry-run with the Dynamics CRM service principal still to be created.
        g.create_grant(&client.id, PLANNED_RESOURCE, &wanted.join(" "))
            .await
            .map_err(explain)?;
        ctx.say(&format!(
            "would grant admin consent for {}",
            wanted.join(" ")
        ));
        return Ok(Found::Grant(Outcome {
            grant_id: None,
            scope: wanted.join(" "),
            created: true,
        }));
    };
    let grants = g
        .grants_for(&client.id, resource_id)
        .await
        .map_err(explain)?;
    Ok(match pick(&grants, wanted) {
        Some(i) => Found::Grant(extend_grant(ctx, g, &grants, i, wanted).await?),
        None => Found::Missing {
            resource_id: resource_id.to_string(),
        },
    })
}

/// Creates the grant (graph.md §3.1); a 409 means it exists — our own create whose answer was
/// lost, or one a lagging replica hid from the list — and it is adopted.
async fn create_grant(
    ctx: &Ctx,
    g: &Graph<'_>,
    client: &ServicePrincipal,
    resource_id: &str,
    wanted: &[String],
) -> Result<Outcome> {
    match g
        .create_grant(&client.id, resource_id, &wanted.join(" "))
        .await
    {
        Ok(Some(grant)) => {
            ctx.say(&format!(
                "granted admin consent for {} on Dynamics CRM to {} (grant {})",
                wanted.join(" "),
                client.label(),
                grant.id
            ));
            let scope = grant.scope.clone().unwrap_or_else(|| wanted.join(" "));
            Ok(Outcome {
                grant_id: Some(grant.id),
                scope,
                created: true,
            })
        }
        Ok(None) => {
            ctx.say(&format!(
                "would grant admin consent for {} on Dynamics CRM to {}",
                wanted.join(" "),
                client.label()
            ));
            Ok(Outcome {
                grant_id: None,
                scope: wanted.join(" "),
                created: true,
            })
        }
        // The grant exists: our own create committed before its answer was lost, or a replica
        // had not shown it to the list above (graph.md §3.1, §7.4). Re-read it and adopt it.
        Err(e) if s2s_graph::is_conflict(&e) => {
            let grants = until_ready(
                ctx.http.deadline(),
                "reading the existing grant",
                ctx.reporter(),
                || async {
                    let grants = g
                        .grants_for(&client.id, resource_id)
                        .await
                        .map_err(explain)?;
                    Ok(if grants.is_empty() {
                        Poll::Pending("Graph says it exists but does not list it yet".into())
                    } else {
                        Poll::Ready(grants)
                    })
                },
            )
            .await?;
            let i = pick(&grants, wanted).unwrap_or(0);
            let mut outcome = extend_grant(ctx, g, &grants, i, wanted).await?;
            // The conflict answered a retry of our own create whose first answer was lost.
            outcome.created = e.ambiguous;
            Ok(outcome)
        }
        Err(e) => Err(explain(e.context("granting admin consent"))),
    }
}

/// Adds the wanted scopes an existing grant lacks (PATCH, graph.md §3.1), or reports it as done.
async fn extend_grant(
    ctx: &Ctx,
    g: &Graph<'_>,
    grants: &[PermissionGrant],
    i: usize,
    wanted: &[String],
) -> Result<Outcome> {
    let grant = &grants[i];
    if grants.len() > 1 {
        let others: Vec<&str> = grants
            .iter()
            .filter(|o| o.id != grant.id)
            .map(|o| o.id.as_str())
            .collect();
        ctx.warn(&format!(
            "{} tenant-wide grants exist for this app and Dynamics CRM; using {} and leaving {}",
            grants.len(),
            grant.id,
            others.join(", ")
        ));
    }
    let have = grant.scopes();
    let Some(scope) = merged_scope(&have, wanted) else {
        ctx.say(&format!(
            "admin consent for {} is already granted (grant {})",
            wanted.join(" "),
            grant.id
        ));
        return Ok(Outcome {
            grant_id: Some(grant.id.clone()),
            scope: have.join(" "),
            created: false,
        });
    };
    let sent = g
        .update_grant_scope(&grant.id, &scope)
        .await
        .map_err(|e| explain(e.context("adding the scope to the existing grant")))?;
    let verb = if sent { "added" } else { "would add" };
    ctx.say(&format!(
        "{verb} {} to the existing grant {} (scope now \"{scope}\")",
        wanted
            .iter()
            .filter(|w| !have.contains(&w.as_str()))
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
        grant.id
    ));
    Ok(Outcome {
        grant_id: Some(grant.id.clone()),
        scope,
        created: false,
    })
}

/// A 403 names what the caller lacks (graph.md §3.1: roles from grant-admin-consent.md, the
/// permission from the oauth2PermissionGrant pages; creating a service principal needs
/// Application.ReadWrite.All, §2).
fn explain(e: Error) -> Error {
    s2s_graph::needs::explain_forbidden(e, &s2s_graph::needs::GRANT_CONSENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_default_and_are_checked() {
        let cli = Cli::try_parse_from(["grant-consent"]).unwrap();
        assert_eq!(cli.scopes, vec!["user_impersonation".to_string()]);
        let cli = Cli::try_parse_from(["grant-consent", "--scope", "a.b", "--scope", "c"]).unwrap();
        assert_eq!(cli.scopes, vec!["a.b".to_string(), "c".to_string()]);
        assert!(Cli::try_parse_from(["grant-consent", "--scope", "a b"]).is_err());
        assert!(Cli::try_parse_from(["grant-consent", "--scope", ""]).is_err());
    }

    #[test]
    fn scopes_are_added_never_dropped() {
        let w = vec!["user_impersonation".to_string()];
        assert_eq!(
            merged_scope(&["openid"], &w).as_deref(),
            Some("openid user_impersonation")
        );
        assert_eq!(merged_scope(&["user_impersonation", "x"], &w), None);
        assert_eq!(merged_scope(&[], &w).as_deref(), Some("user_impersonation"));
    }

    #[test]
    fn the_grant_with_most_wanted_scopes_is_kept() {
        let gr = |id: &str, scope: &str| PermissionGrant {
            id: id.into(),
            scope: Some(scope.into()),
            ..Default::default()
        };
        let w = vec!["user_impersonation".to_string()];
        assert_eq!(pick(&[], &w), None);
        assert_eq!(
            pick(&[gr("a", "x"), gr("b", "user_impersonation")], &w),
            Some(1)
        );
        assert_eq!(pick(&[gr("a", "x"), gr("b", "y")], &w), Some(0));
    }

    #[test]
    fn forbidden_names_the_roles_and_the_permission() {
        let e = Error::from_service(
            "POST /v1.0/oauth2PermissionGrants",
            s2s_core::ServiceError {
                service: "graph",
                status: 403,
                code: "Authorization_RequestDenied".into(),
                ..Default::default()
            },
        );
        let e = explain(e);
        assert_eq!(e.kind.code(), 4);
        let h = e.hint.unwrap_or_default();
        assert!(
            h.contains("Cloud Application Administrator")
                && h.contains("DelegatedPermissionGrant.ReadWrite.All")
        );
    }
}
