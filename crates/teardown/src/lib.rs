//! `teardown` — the reverse of the runbook: removes what `register-app` … `add-sync-filter`
//! created, in reverse order, for a trial org, an offboarded customer or a botched first try.
//!
//! **Only what the live tenant shows is this setup's goes** (docs/architecture.md,
//! "Ownership"); the state document only says where to look. The setup is the document's
//! `setup.id` (or `--setup-id`); its mark is on what it created: the app's and service
//! principal's `tags`, the HRD policy's and the sync-filter column's description, each client
//! secret's display name. What carries no mark (the application user, a role, a grant) counts
//! only through an object that does, and, where the app is not the setup's alone, only when the
//! document records that the setup created it. The admin's own app (the client the Graph token
//! was issued to) and own Dataverse user (`WhoAmI`) are never touched. Everything kept is named
//! with its reason, in the plan and in the summary at the end.
//!
//! In the order the removals run (each idempotent: a re-run sends no write for what is gone):
//!
//! 1. with `--remove-sync-filter` only: the `new_synctomkto` columns that carry the setup's mark
//!    (`DELETE` of the attribute, then `PublishXml` of those entities) — never a hand-made one,
//!    and none while "Marketo User" is another connection's user or could not be read (the
//!    Marketo configuration record not found: nobody can tell whose sync filter they are).
//!    They hold every record's sync choice, so they are kept by default.
//! 2. Marketo Config's "Marketo User" lookup is emptied, only when it points at the setup's
//!    application user; with `--restore-sync-user` it is pointed back at the user
//!    configure-marketo replaced (`marketo_config.previous_user_id`), otherwise the summary
//!    says who that was and how to put them back.
//! 3. the role(s) are removed from the application user, which is then disabled (Dataverse keeps
//!    users for audit). For the setup's own app: its application user in this org and the
//!    roles in `dynamics.roles`; for a shared app or an adopted app's service principal the
//!    setup made: only the user `dynamics.application_user_created` and the roles
//!    `dynamics.roles[].added` record.
//! 4. the Home Realm Discovery policy with the setup's mark: unassigned, and deleted when no
//!    other service principal uses it (a shared app's only loses the mark).
//! 5. the app's consent grants, its service principal and the app registration — for an app
//!    only this setup uses. A shared app (several setups' tags) loses only this setup's tag and
//!    secrets. An adopted app (`app.adopted`, carrying no setup's tag: one that carries another
//!    setup's tag is that connection's, whatever the document says) stays: only the secrets with
//!    the setup's mark go,
//!    and the service principal (with its grants) when the setup created it. Entra keeps what
//!    is deleted restorable for 30 days; the app must be restored first, then its service
//!    principal (Learn: directory-deleteditems-restore); the line and
//!    `teardown.restore_command` give both, in order.
//! 6. the local secret file — only when it holds a secret that goes (make-secret's name for
//!    the client id when the whole app goes or went, the document's `secret.sha256`, or a hint
//!    of a credential that goes) and is a small private regular file, as make-secret writes
//!    it. On a shared or adopted app, which stays, the default name alone is not enough: the
//!    file may hold another setup's secret or a portal credential.
//!
//! The end is a summary: removed n, kept n with the reason for each, and what to do in Marketo
//! (Admin > CRM: remove this connection's credentials).
//!
//! Every read comes first; then the plan is shown and, on a terminal, confirmed, naming the
//! tenant and the org (`--yes` is needed otherwise, checked before any request; "no" is exit 2,
//! as in every tool). Objects are found by their idempotency keys (design.md) when the document
//! lacks their ids: the app by object id, client id or unique name; its service principal by
//! `appId`; the application user by `applicationid`. After the app is deleted, its deleted item
//! (with its tags) still proves for 30 days which application user was the setup's.
//!
//! Entra ID is eventually consistent (graph.md §7.4). Right after a setup step wrote (within 10
//! minutes, later than any teardown), an object the document names that answers 404 is read
//! again until it shows up or two minutes pass. An object a teardown removed in the last 10
//! minutes (`teardown.removed`) is not removed again while a replica still lists it.
//!
//! Keys: it removes the keys of what it removed (`app.object_id`, `app.client_id`,
//! `app.service_principal_id`, `consent`, `secret`, `hrd_policy` — or sets `hrd_policy.status:
//! unassigned` when the policy is kept for other service principals —, `dynamics.roles`,
//! `marketo_config.sync_user_id`, `sync_filter` with `--remove-sync-filter`, and `verify`), so a
//! re-run finds nothing to do; `--restore-sync-user` sets `marketo_config.sync_user_id` to the
//! restored user and removes `.previous_user_id` and `.previous_user`. `teardown.removed` is
//! `[{kind, id, name, at}]`; `teardown.restore_command` restores the app, then the service
//! principal. The keys it reads and writes and its exit codes: `teardown --help` (rendered from
//! `READS`, `WRITES` and core's exit-code table).
//!
//! Example:
//! ```text
//! teardown --state marketo-s2s.state.json --dry-run     # what would go, and what is kept
//! teardown --state marketo-s2s.state.json --yes
//! ```

use std::path::PathBuf;

use clap::Parser;

use s2s_core::keys;
use s2s_core::{AnyKey, CommonArgs, Ctx, Error, Result};
use s2s_dataverse::Dataverse;
use s2s_dataverse::names::{entity_logical_name, not_blank};
use s2s_graph::{Graph, ServicePrincipal};

mod discovery;
mod input;
mod plan;
mod secret_file;
mod steps;

use discovery::{Admin, Owner, Target};
use input::Input;
use plan::{DvFlags, Plan, Proof};
use steps::{Step, Tense};

/// Remove what the Marketo S2S setup created, in reverse order — only what the tenant shows is
/// this setup's.
///
/// Reads the state document on stdin (or --state FILE), reads every object first, shows the plan
/// (what goes, what is kept and why) and asks for confirmation on a terminal (--yes otherwise),
/// then removes: the Marketo User lookup (if it is the setup's user), the role(s) and the
/// application user (disabled: Dataverse keeps users), the HRD policy (if it carries the
/// setup's mark and is unused elsewhere), the admin-consent grant, the service principal, the
/// app registration (restorable for 30 days) and the local secret file. The sync-filter columns
/// are kept unless --remove-sync-filter.
#[derive(Debug, Parser)]
#[command(
    name = "teardown",
    version,
    after_help = s2s_core::help::after_help::<Cli>()
)]
pub struct Cli {
    /// Remove without asking (needed when stderr is not a terminal, e.g. in CI or a pipeline
    /// whose stderr is redirected)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Also delete the new_synctomkto sync-filter columns this setup created AND ALL THE VALUES
    /// THEY HOLD (a hand-made column is never deleted, and none while Marketo User is another
    /// connection's user or cannot be read)
    #[arg(long)]
    pub remove_sync_filter: bool,

    /// Entity whose sync-filter column to delete with --remove-sync-filter (repeatable)
    /// [default: sync_filter.entities, else lead and contact]
    #[arg(long = "entity", value_name = "NAME", value_parser = entity_logical_name, requires = "remove_sync_filter")]
    pub entities: Vec<String>,

    /// Point Marketo Config's "Marketo User" back at the user configure-marketo replaced
    /// (marketo_config.previous_user_id) instead of emptying it
    #[arg(long)]
    pub restore_sync_user: bool,

    /// Application (client) id of the app to remove [state: app.client_id]
    #[arg(long, value_name = "GUID", value_parser = s2s_core::guid::clap_parser)]
    pub client_id: Option<String>,

    /// The setup (connection) to remove, when its state document was lost [state: setup.id]
    #[arg(long, value_name = "GUID", value_parser = s2s_core::guid::clap_parser)]
    pub setup_id: Option<String>,

    /// Security role to remove from the application user of an app only this setup uses
    /// (repeatable) [default: the roles in dynamics.roles, and "Marketo Sync User"]
    #[arg(long = "role", value_name = "NAME")]
    pub roles: Vec<String>,

    /// The local secret file to delete [state: secret.file] [default:
    /// marketo-s2s-<client id>.secret when it exists; on a shared or adopted app only when it
    /// holds this setup's secret]
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl s2s_core::Tool for Cli {
    const NAME: &'static str = "teardown";
    const READS: &'static [AnyKey] = &[
        keys::SETUP_ID.any(),
        keys::APP_OBJECT_ID.any(),
        keys::APP_CLIENT_ID.any(),
        keys::APP_UNIQUE_NAME.any(),
        keys::APP_SERVICE_PRINCIPAL_ID.any(),
        keys::APP_DISPLAY_NAME.any(),
        keys::APP_ADOPTED.any(),
        keys::SECRET_KEY_ID.any(),
        keys::SECRET_PREVIOUS_KEY_ID.any(),
        keys::SECRET_SHA256.any(),
        keys::SECRET_FILE.any(),
        keys::CONSENT_CREATED.any(),
        keys::CONSENT_GRANT_ID.any(),
        keys::HRD_POLICY_POLICY_ID.any(),
        keys::DYNAMICS_URL.any(),
        keys::DYNAMICS_APPLICATION_USER_ID.any(),
        keys::DYNAMICS_APPLICATION_USER_CREATED.any(),
        keys::DYNAMICS_ROLES.any(),
        keys::MARKETO_CONFIG_ENTITY_SET.any(),
        keys::MARKETO_CONFIG_RECORD_ID.any(),
        keys::MARKETO_CONFIG_USER_LOOKUP.any(),
        keys::MARKETO_CONFIG_NAV_PROPERTY.any(),
        keys::MARKETO_CONFIG_PREVIOUS_USER_ID.any(),
        keys::MARKETO_CONFIG_PREVIOUS_USER.any(),
        keys::SYNC_FILTER_ENTITIES.any(),
        keys::TEARDOWN_CLIENT_ID.any(),
        keys::TEARDOWN_APPLICATION_OBJECT_ID.any(),
    ];
    const WRITES: &'static [AnyKey] = &[
        keys::DYNAMICS_APPLICATION_USER_DISABLED.any(),
        keys::HRD_POLICY_STATUS.any(),
        keys::HRD_POLICY_POLICY_ID.any(),
        keys::MARKETO_CONFIG_SYNC_USER_ID.any(),
        keys::TEARDOWN_CLIENT_ID.any(),
        keys::TEARDOWN_APPLICATION_OBJECT_ID.any(),
        keys::TEARDOWN_SERVICE_PRINCIPAL_ID.any(),
        keys::TEARDOWN_RESTORE_COMMAND.any(),
        keys::TEARDOWN_REMOVED.any(),
    ];
    const EXAMPLES: &'static str = "\
teardown --state marketo-s2s.state.json --dry-run    # every read, the plan, what is kept and why
teardown --state marketo-s2s.state.json --yes
# also point Marketo User back at whom configure-marketo replaced:
teardown --state marketo-s2s.state.json --yes --restore-sync-user
# the document was lost: name the setup (its id is in the app's tags) and the app
echo '{\"setup\":{\"id\":\"<guid>\"},\"app\":{\"unique_name\":\"marketo-trial\"}}' | teardown --yes";
    const HELP_NOTES: &'static str = "\
Removes only what the live tenant shows is this setup's (setup.id): the app and service
principal carrying its tag (a shared app only loses this setup's tag), the HRD policy and
sync-filter columns with its mark, the client secrets named with its mark; the application user
and roles of such an app (for a shared or adopted app: only what dynamics.application_user_created
and dynamics.roles[].added record). Never the admin's own app or user. An adopted app
(app.adopted, no setup's tag) is kept. Everything kept is named with its reason. Objects whose
ids are missing are found by their keys. Removes the keys of what it removed (and verify). A
re-run sends no write. Deleted items stay restorable for 30 days: the app first, then its
service principal (teardown.restore_command has both):
  az rest --method POST --url <graph>/v1.0/directory/deletedItems/<app object id>/restore
  az rest --method POST --url <graph>/v1.0/directory/deletedItems/<service principal id>/restore";
    const EXIT_NOTES: &'static [(u8, &'static str)] = &[(
        2,
        "also not confirmed: no --yes off a terminal, or not answered yes",
    )];
    fn common(&self) -> &CommonArgs {
        &self.common
    }
    fn validate(&self) -> Result<()> {
        for role in &self.roles {
            not_blank("--role", role)?;
        }
        // Checked before the document is read and before any request: a pipeline that forgot
        // --yes must not get halfway.
        if !self.yes && !self.common.dry_run && !s2s_core::confirm::can_prompt() {
            return Err(Error::usage(
                "teardown removes the app registration, its grant and secret, and disables the application user: it needs --yes when it cannot ask on a terminal",
            )
            .with_hint("run it with --dry-run first to see what it would remove, then with --yes"));
        }
        Ok(())
    }
}

pub fn main() -> std::process::ExitCode {
    s2s_core::run::main::<Cli, _>(run)
}

async fn run(ctx: &mut Ctx, cli: Cli) -> Result<()> {
    let input = Input::read(ctx, &cli)?;
    // Dataverse is optional: a setup that stopped before assign-role never named an org. With
    // --remove-sync-filter it is required.
    let dv = match Dataverse::from_config(&ctx.http) {
        Ok(d) => Some(d),
        Err(e) if e.kind == s2s_core::Kind::Usage && !cli.remove_sync_filter => {
            ctx.say("no Dynamics org is named (--dynamics-url or dynamics.url): the application user and the Marketo configuration are not touched");
            None
        }
        Err(e) => return Err(e),
    };
    let g = Graph::new(&ctx.http);
    if input.setup.is_none() {
        ctx.warn(
            "the document names no setup (setup.id: an earlier version's document, or one written by hand): only an \
             object that carries no other setup's mark and that this document alone names can be judged, so most \
             things are kept; run register-app on the document first (it marks the app an earlier version's \
             document names), or pass --setup-id",
        );
    }

    // ---- every read first ---------------------------------------------------------------
    let admin = Admin::read(&g, dv.as_ref()).await?;
    let mut plan = Plan::default();
    let target = find_target(ctx, &g, &input, &admin, &mut plan).await?;
    let sp = match &target {
        Target::Live(app, owner) if !matches!(owner, Owner::Foreign(_)) => {
            discovery::find_service_principal(ctx, &g, &input, app).await?
        }
        Target::Live(..) => None,
        _ => {
            // A service principal is only ever removed with its app: one without an app here
            // (Dynamics CRM's, another tenant's app) was never the setup's.
            if let Some(id) = &input.sp_id {
                ctx.say(&format!(
                    "service principal {id} is not touched: without its app registration in this tenant it is not the setup's (Entra removes an app's service principal with the app)"
                ));
            }
            None
        }
    };
    let proof = proof_of(&target, sp.as_ref(), &input);
    if let Some(dv) = &dv {
        let flags = DvFlags {
            remove_sync_filter: cli.remove_sync_filter,
            restore_sync_user: cli.restore_sync_user,
        };
        plan::plan_dataverse(ctx, dv, &input, flags, proof.clone(), &admin, &mut plan).await?;
    }
    let (dying, allowed) = match &target {
        Target::Live(app, owner) => (
            plan::plan_entra(ctx, &g, &input, app, owner, sp.as_ref(), &mut plan).await?,
            !matches!(owner, Owner::Foreign(_)),
        ),
        _ => {
            // The app is gone: only the document's policy may still be there. Its secret file
            // goes only when the deleted app shows it was this setup's: a document whose app
            // ids are wrong (or the admin's) must not cost a live app its saved secret.
            plan::plan_entra_without_app(ctx, &g, &input, &mut plan).await?;
            (
                Vec::new(),
                matches!(target, Target::Gone { proven: true, .. }),
            )
        }
    };
    let client_id = match &target {
        Target::Live(app, _) => Some(app.app_id.to_ascii_lowercase()),
        Target::Gone { client_id, .. } => Some(client_id.clone()),
        Target::None => None,
    };
    secret_file::plan_secret_file(
        ctx,
        &input,
        secret_file::FileScope {
            client_id: client_id.as_deref(),
            dying: &dying,
            allowed,
            whole: matches!(
                &target,
                Target::Live(_, Owner::Own) | Target::Gone { proven: true, .. }
            ),
        },
        &mut plan,
    );

    // ---- the plan, confirmed -----------------------------------------------------------
    if !plan.steps.is_empty() && !cli.yes && !ctx.dry_run() {
        confirm(ctx, &g, dv.as_ref(), &plan).await?;
    }

    // ---- the removals ------------------------------------------------------------------
    // The client id recorded as the removed app's: only for an app that was the setup's.
    let recorded_client = match (&target, &proof) {
        (Target::Live(app, _), Ok(_)) => Some(app.app_id.to_ascii_lowercase()),
        (Target::Gone { client_id, .. }, _) => Some(client_id.clone()),
        _ => None,
    };
    for step in &plan.steps {
        let done = steps::execute(ctx, &g, dv.as_ref(), step).await?;
        if ctx.dry_run() {
            ctx.say(&step.line(Tense::DryRun));
        } else {
            ctx.say(&step.line(Tense::Done));
            if done {
                steps::record(&mut ctx.doc, step, recorded_client.as_deref());
            }
        }
    }
    if !ctx.dry_run() && !plan.steps.is_empty() {
        ctx.doc.remove(keys::VERIFY);
    }
    summary(ctx, &plan, client_id.as_deref());
    Ok(())
}

/// The app the document names, and whose it is; or, when its registration is gone, its client
/// id and whether its deleted item proves it was the setup's.
async fn find_target(
    ctx: &Ctx,
    g: &Graph<'_>,
    input: &Input,
    admin: &Admin,
    plan: &mut Plan,
) -> Result<Target> {
    if let Some(app) = discovery::find_application(ctx, g, input, admin).await? {
        let owner = discovery::judge(ctx, input, admin, &app);
        return Ok(Target::Live(Box::new(app), owner));
    }
    if let Some(c) = discovery::gone_app_was_ours(g, input).await? {
        if !admin.is_own_app(&c) {
            return Ok(Target::Gone {
                client_id: c,
                proven: true,
            });
        }
    }
    Ok(match &input.client_id {
        Some(c) if admin.is_own_app(c) => {
            plan.keep(
                format!("client id {c}"),
                "it is the app this teardown signs in with (the admin's own); it is never touched",
            );
            Target::None
        }
        Some(c) => Target::Gone {
            client_id: c.clone(),
            proven: false,
        },
        None => Target::None,
    })
}

/// Which application users teardown may act on, or why none.
fn proof_of(
    target: &Target,
    sp: Option<&ServicePrincipal>,
    input: &Input,
) -> std::result::Result<Proof, String> {
    let proof = |client: &str, whole| {
        Ok(Proof {
            client_id: client.to_ascii_lowercase(),
            whole,
        })
    };
    let shared_with = |others: &[s2s_core::setup::SetupId]| {
        format!(
            "the app is shared with setup {}, whose connection may use the same application user and Marketo User \
             if it is in this org (it cannot be told from here); if that connection is in another org, disable the \
             user in the Power Platform admin center (Environments > the org > Settings > Users + permissions > \
             Application users)",
            others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    match target {
        Target::Live(app, Owner::Own) => proof(&app.app_id, true),
        Target::Live(_, Owner::Shared(others)) => Err(shared_with(others)),
        Target::Live(app, Owner::Adopted) => match sp.map(|s| plan::sp_marks(input, s)) {
            Some((true, others)) if others.is_empty() => proof(&app.app_id, false),
            Some((true, others)) => Err(shared_with(&others)),
            _ => Err(
                "the adopted app's service principal was not made by this setup, so the tenant does not show which \
                 application user is the setup's"
                    .into(),
            ),
        },
        Target::Live(_, Owner::Foreign(_)) => {
            Err("its app is not this setup's (see the app registration)".into())
        }
        Target::Gone {
            client_id,
            proven: true,
        } => proof(client_id, true),
        Target::Gone { client_id, .. } => Err(format!(
            "the app registration of client id {client_id} is gone, and its deleted item (kept 30 days) does not show \
             this setup's mark"
        )),
        Target::None => Err("the document names no app registration of this setup".into()),
    }
}

/// Shows the plan — what goes, what stays and why — and asks on the terminal, naming the
/// tenant and the org; anything but "yes" stops with no write (exit 2, as in every tool).
async fn confirm(ctx: &Ctx, g: &Graph<'_>, dv: Option<&Dataverse<'_>>, plan: &Plan) -> Result<()> {
    for s in &plan.steps {
        ctx.say(&s.line(Tense::Plan));
    }
    for k in &plan.kept {
        ctx.say(&format!("will keep {}: {}", k.what, k.why));
    }
    let tenant_id = ctx.config().tenant().unwrap_or("?").to_string();
    let tenant = match g.default_domain().await.ok().flatten() {
        Some(d) if !d.eq_ignore_ascii_case(&tenant_id) => format!("{d} ({tenant_id})"),
        _ => tenant_id,
    };
    let org = dv.map_or("no Dynamics org".to_string(), |d| {
        format!("org {}", s2s_core::output::url_for_humans(d.org()))
    });
    let removals = plan.steps.iter().filter(|s| s.is_removal()).count();
    let question = format!("remove these {removals} object(s) from tenant {tenant} and {org}?");
    let question = s2s_core::output::sanitize(&question).to_string();
    s2s_core::confirm::require(ctx.tool(), &question, false, false).map_err(|e| {
        if e.message.starts_with("not confirmed") {
            s2s_core::confirm::not_confirmed(ctx.tool(), "nothing was removed")
        } else {
            e
        }
    })
}

/// The end: removed n, kept n with the reason for each, what to note, and what to do in Marketo.
fn summary(ctx: &Ctx, plan: &Plan, client_id: Option<&str>) {
    let removals = plan.steps.iter().filter(|s| s.is_removal()).count();
    if removals == 0 && plan.kept.is_empty() && plan.notes.is_empty() {
        return;
    }
    let kept = plan.kept.len();
    ctx.say(&if ctx.dry_run() {
        format!("dry run: would remove {removals} object(s) and keep {kept}")
    } else {
        format!("removed {removals} object(s), kept {kept}")
    });
    for k in &plan.kept {
        ctx.say(&format!("  kept {}: {}", k.what, k.why));
    }
    for n in &plan.notes {
        ctx.say(n);
    }
    if plan.steps.iter().any(Step::ends_the_connection) {
        let which = client_id
            .map(|c| format!(" (client id {c})"))
            .unwrap_or_default();
        ctx.say(&format!(
            "{}in Marketo, Admin > CRM > Microsoft Dynamics: remove this connection's credentials{which} — they no longer sign in, \
             and the sync stops until other credentials are entered",
            if ctx.dry_run() { "then, " } else { "now " }
        ));
    }
}

/// A Graph 403 names the roles teardown needs (README, "Roles and permissions").
pub(crate) fn explain_graph(e: Error) -> Error {
    s2s_graph::explain_forbidden(
        e,
        "removing the app needs Application.ReadWrite.All, its grant DelegatedPermissionGrant.ReadWrite.All and \
         its HRD policy Policy.ReadWrite.ApplicationConfiguration (Graph permissions), e.g. through the \
         Cloud Application Administrator role",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_needs_remove_sync_filter() {
        assert!(Cli::try_parse_from(["teardown", "--entity", "lead"]).is_err());
        let c = Cli::try_parse_from([
            "teardown",
            "--remove-sync-filter",
            "--entity",
            "Lead",
            "--yes",
        ])
        .unwrap();
        assert_eq!(c.entities, vec!["lead".to_string()]);
        assert!(Cli::try_parse_from(["teardown", "--client-id", "nope"]).is_err());
        assert!(Cli::try_parse_from(["teardown", "--setup-id", "nope"]).is_err());
    }

    #[test]
    fn without_yes_off_a_terminal_it_refuses_before_anything() {
        use s2s_core::Tool;
        // Tests run with stderr captured: no terminal.
        let c = Cli::try_parse_from(["teardown"]).unwrap();
        let e = c.validate().unwrap_err();
        assert_eq!(e.kind.code(), 2);
        assert!(e.message.contains("--yes"), "{e}");
        assert!(
            Cli::try_parse_from(["teardown", "--dry-run"])
                .unwrap()
                .validate()
                .is_ok()
        );
        assert!(
            Cli::try_parse_from(["teardown", "-y"])
                .unwrap()
                .validate()
                .is_ok()
        );
    }
}
