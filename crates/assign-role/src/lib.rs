//! `assign-role` — Marketo step 2, "Create Application User in Microsoft" and "assign it to the
//! Marketo Sync User role" (reference/dataverse.md §1, §2).
//!
//! Checks that step 1 was done (the solution "Marketo Lead Management" is installed; below
//! version 4.0.0.14 every user needs the role, and it says so), then ensures an enabled
//! application user for the app's client id — found by `applicationid`, soft-deleted rows
//! ignored, created in the root business unit or `--business-unit` — holding each `--role` from
//! its own business unit. The business unit and every role are found before the first write
//! (a purge, the create, the enable), so a misspelt name changes nothing.
//!
//! `--purge-deleted` deletes a soft-deleted application user of the app for good, and only one
//! the tenant shows is this setup's: the document records that the setup created it
//! (`dynamics.application_user_created` with its id), or the live app of the client id carries
//! this setup's tag (`setup.id`, read from Graph); otherwise exit 4 with nothing changed.
//!
//! `dynamics.username` is the user's e-mail: the username Marketo's step 3 asks for. A user and a
//! role association carry no mark, so `dynamics.application_user_created` and
//! `dynamics.roles[].added` (what this setup created or gave) are what lets teardown take back
//! only what the setup did (docs/architecture.md, "Ownership"). The keys it reads and writes and
//! its exit codes: `assign-role --help` (rendered from `READS`, `WRITES` and core's exit-code
//! table).
//!
//! Example:
//! ```text
//! register-app | grant-consent | make-secret \
//!   | assign-role --dynamics-url https://contoso.crm.dynamics.com \
//!   | configure-marketo | publish-customizations
//! ```

use std::cmp::Ordering;

use clap::Parser;
use serde_json::json;

use s2s_core::keys;
use s2s_core::retry::{Poll, until_ready};
use s2s_core::{AnyKey, CommonArgs, Ctx, Error, Result, config};
use s2s_dataverse::names::{not_blank, unique};
use s2s_dataverse::{
    Associated, BusinessUnit, Created, Dataverse, MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE,
    MARKETO_SOLUTION, Role, Solution, SystemUser, Written, compare_versions, is_app_not_yet_known,
    is_duplicate_application_user,
};

/// The role Marketo's sync user needs (reference §2).
pub const DEFAULT_ROLE: &str = s2s_dataverse::MARKETO_SYNC_ROLE;

/// How long after register-app Dataverse may still not know the app (replication from Entra
/// ID); "app not known" is waited out within it and reported at once after it.
const REPLICATION_WINDOW: time::Duration = time::Duration::minutes(30);

/// Shown in place of the id of an application user a dry run would create.
const NEW_USER: &str = "00000000-0000-0000-0000-000000000000";

/// Ensure the Dynamics 365 application user for the Marketo app, holding the Marketo Sync User role.
///
/// Reads the state document on stdin and writes it, enriched with `dynamics.*`, on stdout.
#[derive(Debug, Parser)]
#[command(
    name = "assign-role",
    version,
    after_help = s2s_core::help::after_help::<Cli>()
)]
pub struct Cli {
    /// Application (client) id of the Marketo app [state: app.client_id]
    #[arg(long, value_name = "GUID", value_parser = s2s_core::guid::clap_parser)]
    pub client_id: Option<String>,

    /// Business unit for a new application user, by name [default: the root business unit]
    #[arg(long, value_name = "NAME")]
    pub business_unit: Option<String>,

    /// Security role to hold, from the user's business unit (repeatable)
    #[arg(long = "role", value_name = "NAME", default_value = DEFAULT_ROLE)]
    pub roles: Vec<String>,

    /// Permanently delete a soft-deleted application user of this app (deleted in the admin
    /// center, still blocking a new one), then create a fresh one. Only a user this setup made
    /// (dynamics.application_user_created) or of an app carrying this setup's tag, and only
    /// once the business unit and every role are found
    #[arg(long)]
    pub purge_deleted: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl s2s_core::Tool for Cli {
    const NAME: &'static str = "assign-role";
    const READS: &'static [AnyKey] = &[
        keys::SETUP_ID.any(),
        keys::APP_CLIENT_ID.any(),
        keys::DYNAMICS_URL.any(),
        keys::DYNAMICS_APPLICATION_USER_ID.any(),
        keys::DYNAMICS_APPLICATION_USER_CREATED.any(),
        keys::DYNAMICS_ROLES.any(),
    ];
    const WRITES: &'static [AnyKey] = &[
        keys::DYNAMICS_URL.any(),
        keys::DYNAMICS_APPLICATION_USER_ID.any(),
        keys::DYNAMICS_USERNAME.any(),
        keys::DYNAMICS_BUSINESS_UNIT_ID.any(),
        keys::DYNAMICS_APPLICATION_USER_CREATED.any(),
        keys::DYNAMICS_ROLES.any(),
        keys::DYNAMICS_SOLUTION.any(),
    ];
    const EXAMPLES: &'static str = "\
register-app | grant-consent | make-secret \\
  | assign-role --dynamics-url https://contoso.crm.dynamics.com | configure-marketo
assign-role --client-id 0d9f3c5e-1111-2222-3333-444455556666 --business-unit Sales --state s.json";
    const HELP_NOTES: &'static str = "\
dynamics.username is the Marketo username; dynamics.application_user_created is true when this
setup created the user; dynamics.roles is [{id, name, added}], added when this setup gave the
role. Re-running on a finished setup sends no write.";
    const EXIT_NOTES: &'static [(u8, &'static str)] = &[(
        4,
        "e.g. the Marketo solution is not installed, a business unit or role that is not found (before any write), or a soft-deleted application user without --purge-deleted or not shown to be this setup's",
    )];
    fn common(&self) -> &CommonArgs {
        &self.common
    }
    fn validate(&self) -> Result<()> {
        for role in &self.roles {
            not_blank("--role", role)?;
        }
        if let Some(bu) = &self.business_unit {
            not_blank("--business-unit", bu)?;
        }
        Ok(())
    }
}

pub fn main() -> std::process::ExitCode {
    s2s_core::run::main::<Cli, _>(run)
}

async fn run(ctx: &mut Ctx, cli: Cli) -> Result<()> {
    let client_id = match &cli.client_id {
        Some(c) => c.clone(),
        None => ctx.doc.get(keys::APP_CLIENT_ID)?.ok_or_else(|| {
            config::missing(
                "the application (client) id",
                "--client-id",
                keys::APP_CLIENT_ID.path(),
            )
        })?,
    };
    let dv = Dataverse::from_config(&ctx.http)?;
    let org = dv.org().to_string();

    let solution = ensure_marketo_solution(ctx, &dv).await?;
    // Every read and check first — the user (or the business unit a new one goes to), each
    // role, whether a soft-deleted user may be purged — so a typo writes nothing.
    let names = unique(&cli.roles);
    let found = find_user(ctx, &dv, &client_id, cli.business_unit.as_deref()).await?;
    let mut roles = resolve_roles(&dv, &names, &found.business_unit).await?;
    if found.active.is_none() {
        check_purge(ctx, &dv, &client_id, &found.deleted, cli.purge_deleted).await?;
    }
    let planned_unit = found.business_unit.businessunitid.clone();
    let user = ensure_application_user(ctx, &dv, &client_id, found).await?;
    if !user
        .business_unit
        .businessunitid
        .eq_ignore_ascii_case(&planned_unit)
    {
        // A user another run created meanwhile, in another unit: its roles come from there.
        roles = resolve_roles(&dv, &names, &user.business_unit).await?;
    }
    // What an earlier run of this setup recorded for the same user: what it created stays
    // created on a re-run (which only finds it).
    let earlier = Earlier::of(&ctx.doc, user.existing.as_ref())?;
    let roles = ensure_roles(ctx, &dv, &user, roles).await?;

    ctx.doc.set(keys::DYNAMICS_URL, &org);
    if let Some(u) = &user.existing {
        ctx.doc
            .set(keys::DYNAMICS_APPLICATION_USER_ID, &u.systemuserid);
        // The user is enabled now: a mark an earlier teardown left is stale.
        if !ctx.dry_run() {
            ctx.doc.remove(keys::DYNAMICS_APPLICATION_USER_DISABLED);
        }
        match u.internalemailaddress.as_deref().filter(|e| !e.is_empty()) {
            // The org's answer is outside input too: what Marketo's step 3 is told to type
            // must be an e-mail address, not text that forges lines when printed.
            Some(mail) => match s2s_dataverse::names::username(mail, "the application user's primary e-mail") {
                Ok(()) => ctx.doc.set(keys::DYNAMICS_USERNAME, mail),
                Err(e) => ctx.warn(&format!(
                    "{}; dynamics.username is not recorded: set the user's Primary Email in the org, then re-run",
                    e.message
                )),
            },
            None => ctx.warn(&format!(
                "application user {} has no primary e-mail address; Marketo's step 3 needs it as the username",
                u.systemuserid
            )),
        }
    }
    ctx.doc.set(
        keys::DYNAMICS_BUSINESS_UNIT_ID,
        &user.business_unit.businessunitid,
    );
    ctx.doc.set(
        keys::DYNAMICS_APPLICATION_USER_CREATED,
        user.created || earlier.user_created,
    );
    ctx.doc.set(
        keys::DYNAMICS_ROLES,
        roles
            .iter()
            .map(|(r, added)| {
                json!({
                    "id": r.roleid,
                    "name": r.name,
                    "added": *added || earlier.added(&r.roleid),
                })
            })
            .collect::<Vec<_>>(),
    );
    ctx.doc.set(
        keys::DYNAMICS_SOLUTION,
        json!({"unique_name": solution.uniquename, "version": solution.version}),
    );
    Ok(())
}

/// What the document says an earlier run of this setup did to the same application user.
#[derive(Debug, Default)]
struct Earlier {
    user_created: bool,
    /// Ids (lower case) of the roles it recorded as added.
    added_roles: Vec<String>,
}

impl Earlier {
    fn of(doc: &s2s_core::StateDoc, user: Option<&SystemUser>) -> Result<Earlier> {
        let same_user = match (doc.get(keys::DYNAMICS_APPLICATION_USER_ID)?, user) {
            (Some(d), Some(u)) => d.eq_ignore_ascii_case(&u.systemuserid),
            _ => false,
        };
        if !same_user {
            return Ok(Earlier::default());
        }
        Ok(Earlier {
            user_created: doc.get(keys::DYNAMICS_APPLICATION_USER_CREATED)? == Some(true),
            added_roles: doc
                .get(keys::DYNAMICS_ROLES)?
                .into_iter()
                .flatten()
                .filter(|r| r["added"] == json!(true))
                .filter_map(|r| r["id"].as_str().map(str::to_ascii_lowercase))
                .collect(),
        })
    }

    fn added(&self, role_id: &str) -> bool {
        self.added_roles
            .iter()
            .any(|r| r.eq_ignore_ascii_case(role_id))
    }
}

/// Step 1 must have been done: the Marketo solution is installed (reference §4, §5.1).
async fn ensure_marketo_solution(ctx: &Ctx, dv: &Dataverse<'_>) -> Result<Solution> {
    let Some(solution) = dv.marketo_solution().await? else {
        return Err(Error::refused(format!(
            "the Marketo solution \"{MARKETO_SOLUTION}\" is not installed in {}",
            dv.org()
        ))
        .with_hint(
            "import the Marketo solution first (Marketo step 1: download it from Marketo Admin > CRM > Microsoft, \
             then Dynamics Settings > Solutions > Import), then re-run",
        ));
    };
    let version = solution.version.as_deref().unwrap_or("unknown");
    match compare_versions(version, MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE) {
        Some(Ordering::Less) => ctx.warn(&format!(
            "the Marketo solution is version {version}, older than {MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE}: \
             every Dynamics user who works with Marketo data then needs the \"{DEFAULT_ROLE}\" role, not only the sync user; \
             consider updating the solution"
        )),
        None => ctx.warn(&format!(
            "cannot read the Marketo solution's version {version:?}; versions before \
             {MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE} need the role on every user"
        )),
        _ => {}
    }
    ctx.say(&format!(
        "found the Marketo solution \"{MARKETO_SOLUTION}\" ({}, version {version})",
        solution.uniquename
    ));
    Ok(solution)
}

/// The application user, once ensured. `existing` is `None` only in a dry run that would create it.
struct AppUser {
    existing: Option<SystemUser>,
    business_unit: BusinessUnit,
    /// This run created it (or, in a dry run, would).
    created: bool,
}

impl AppUser {
    fn id(&self) -> &str {
        self.existing
            .as_ref()
            .map(|u| u.systemuserid.as_str())
            .unwrap_or(NEW_USER)
    }
}

/// What Dataverse holds for the client id, read before any write.
struct Found {
    /// The one active application user.
    active: Option<SystemUser>,
    /// Soft-deleted ones: they block a new user.
    deleted: Vec<SystemUser>,
    /// The active user's business unit, or the one a new user is created in.
    business_unit: BusinessUnit,
}

/// The application user for the client id (reference §1.4) and its business unit, or, when
/// there is none, the business unit a new one goes to (`--business-unit`, else the root): reads
/// only, so a bad `--business-unit` stops the run before any write.
async fn find_user(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    client_id: &str,
    business_unit: Option<&str>,
) -> Result<Found> {
    // One read gives the active user and any soft-deleted one (which blocks a new user).
    let (deleted, active): (Vec<SystemUser>, Vec<SystemUser>) = dv
        .application_users_with_deleted(client_id)
        .await?
        .into_iter()
        .partition(SystemUser::is_soft_deleted);
    let Some(user) = one_active_user(client_id, active)? else {
        return Ok(Found {
            active: None,
            deleted,
            business_unit: target_business_unit(dv, business_unit).await?,
        });
    };
    ctx.say(&format!(
        "found application user {} for client id {client_id} (systemuserid {})",
        display_user(&user),
        user.systemuserid
    ));
    let bu_id = user.business_unit_id.clone().ok_or_else(|| {
        Error::internal(format!(
            "application user {} has no business unit in Dataverse's answer",
            user.systemuserid
        ))
    })?;
    // Its business unit is read only when its name is needed: for the --business-unit check
    // here, or for a message (see `named`).
    let mut bu = BusinessUnit {
        businessunitid: bu_id,
        name: None,
        parent_id: None,
    };
    if let Some(wanted) = business_unit {
        bu = named(dv, bu).await?;
        if !bu
            .name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
        {
            // Moving a user between business units drops its roles; not this tool's call.
            ctx.warn(&format!(
                "the application user is in business unit {}, not --business-unit {wanted:?}; \
                 it stays there and its roles come from that unit",
                bu_name(&bu)
            ));
        }
    }
    Ok(Found {
        active: Some(user),
        deleted,
        business_unit: bu,
    })
}

/// A soft-deleted application user of the app (deleted in the admin center) keeps blocking a
/// new one: Dataverse answers 412 `0x80040237` for any row with the applicationid
/// (microsoft/terraform-provider-power-platform issue 623). It cannot be reactivated through the
/// Web API, so with `--purge-deleted` it is deleted for good (one `DELETE` of a soft-deleted
/// row, as that provider does, in [`ensure_application_user`]); without, the run stops before
/// any write and says so. Deleting for good is allowed only for a user that is this setup's:
/// the document records that the setup created it (`dynamics.application_user_created` with its
/// id in `dynamics.application_user_id`), or the live app of the client id carries this
/// setup's tag (docs/architecture.md, "Ownership") — never on the client id alone.
async fn check_purge(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    client_id: &str,
    deleted: &[SystemUser],
    purge: bool,
) -> Result<()> {
    if deleted.is_empty() {
        return Ok(());
    }
    let ids = deleted
        .iter()
        .map(|u| u.systemuserid.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if !purge {
        return Err(Error::refused(format!(
            "client id {client_id} has a soft-deleted application user in {} ({ids}); Dataverse refuses a new one while it exists (412 0x80040237)",
            dv.org()
        ))
        .with_hint(
            "re-run with --purge-deleted to delete it for good and create a fresh application user, or restore it in the Power Platform admin center (Settings > Users + permissions > Application users)",
        ));
    }
    let doc = &ctx.doc;
    let created = doc.get(keys::DYNAMICS_APPLICATION_USER_CREATED)? == Some(true);
    let recorded_id = doc
        .get(keys::DYNAMICS_APPLICATION_USER_ID)?
        .filter(|_| created);
    let recorded = deleted.iter().all(|u| {
        recorded_id
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case(&u.systemuserid))
    });
    if recorded {
        return Ok(());
    }
    let setup = s2s_core::setup::SetupId::of_doc(doc)?;
    let app_ours = match &setup {
        Some(s) => s2s_graph::Graph::new(&ctx.http)
            .application_by_app_id(client_id)
            .await
            .map_err(|e| {
                s2s_graph::needs::explain_forbidden(e, &s2s_graph::needs::ASSIGN_ROLE_PURGE)
            })?
            .is_some_and(|a| s.marks_tags(&a.tags)),
        None => false,
    };
    if app_ours {
        return Ok(());
    }
    Err(Error::refused(format!(
        "--purge-deleted: the soft-deleted application user(s) {ids} of client id {client_id} in {} are not shown to \
         be this setup's: the document does not record that this setup created them (dynamics.application_user_created), \
         and the app of client id {client_id} does not carry {}; nothing was changed",
        dv.org(),
        match &setup {
            Some(s) => format!("this setup's tag ({})", s.tag()),
            None => "the tag of a setup this document names (it has no setup.id)".to_string(),
        }
    ))
    .with_hint(
        "run assign-role with the state document of the setup that made the user, or restore or delete the user in the \
         Power Platform admin center (Settings > Users + permissions > Application users), then re-run",
    ))
}

/// The one active application user for the client id, created (after purging the soft-deleted
/// ones [`check_purge`] allowed) and enabled when needed. Every check was made before: this
/// only writes.
async fn ensure_application_user(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    client_id: &str,
    found: Found,
) -> Result<AppUser> {
    let Found {
        active,
        deleted,
        business_unit: bu,
    } = found;
    let (user, bu, created) = match active {
        Some(u) => (u, bu, false),
        None => {
            purge_soft_deleted(ctx, dv, &deleted).await?;
            match create_application_user(ctx, dv, client_id, &bu).await? {
                Some((u, new)) => {
                    // A user met as a duplicate may be in another unit than the planned one.
                    let bu = match u.business_unit_id.as_deref() {
                        Some(id) if !id.eq_ignore_ascii_case(&bu.businessunitid) => BusinessUnit {
                            businessunitid: id.to_string(),
                            name: None,
                            parent_id: None,
                        },
                        _ => bu,
                    };
                    (u, bu, new)
                }
                None => {
                    ctx.say(&format!(
                        "dry run: would create an application user for client id {client_id} in business unit {}",
                        bu_name(&bu)
                    ));
                    return Ok(AppUser {
                        existing: None,
                        business_unit: bu,
                        created: true,
                    });
                }
            }
        }
    };

    if user.is_disabled() {
        // Terraform's model starts a new application user disabled (reference §1.4).
        match dv.enable_user(&user.systemuserid).await? {
            Written::Done(()) => ctx.say(&format!(
                "enabled application user {} (systemuserid {})",
                display_user(&user),
                user.systemuserid
            )),
            Written::Planned => ctx.say(&format!(
                "dry run: would enable application user {}",
                user.systemuserid
            )),
        }
    }
    Ok(AppUser {
        existing: Some(user),
        business_unit: bu,
        created,
    })
}

/// Deletes for good the soft-deleted users [`check_purge`] allowed.
async fn purge_soft_deleted(ctx: &Ctx, dv: &Dataverse<'_>, deleted: &[SystemUser]) -> Result<()> {
    for u in deleted {
        match dv.delete_system_user(&u.systemuserid).await? {
            Written::Done(()) => ctx.say(&format!(
                "purged soft-deleted application user {} (systemuserid {})",
                display_user(u),
                u.systemuserid
            )),
            Written::Planned => ctx.say(&format!(
                "dry run: would purge soft-deleted application user {}",
                u.systemuserid
            )),
        }
    }
    Ok(())
}

/// The one active user for the app; several are an error Terraform also refuses (reference §1.4).
async fn find_application_user(dv: &Dataverse<'_>, client_id: &str) -> Result<Option<SystemUser>> {
    one_active_user(client_id, dv.application_users(client_id).await?)
}

fn one_active_user(client_id: &str, mut users: Vec<SystemUser>) -> Result<Option<SystemUser>> {
    match users.len() {
        0 => Ok(None),
        1 => Ok(users.pop()),
        _ => Err(Error::refused(format!(
            "found {} active application users for client id {client_id}: {}",
            users.len(),
            users
                .iter()
                .map(|u| u.systemuserid.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_hint("Dataverse supports one application user per app: disable and delete the extra ones, then re-run")),
    }
}

/// `--business-unit NAME`, or the root unit (reference §1.5).
async fn target_business_unit(dv: &Dataverse<'_>, name: Option<&str>) -> Result<BusinessUnit> {
    let Some(name) = name else {
        return dv.root_business_unit().await;
    };
    let mut units = dv.business_units_by_name(name).await?;
    match units.len() {
        1 => Ok(units.remove(0)),
        0 => Err(Error::refused(format!(
            "no business unit named {name:?} in {}",
            dv.org()
        ))
        .with_hint("check the name in Power Platform admin center > Settings > Business units, or omit --business-unit for the root unit")),
        n => Err(Error::refused(format!(
            "{n} business units are named {name:?}: {}",
            units
                .iter()
                .map(|u| u.businessunitid.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Creates the user, waiting while Dataverse does not know the app yet (reference §1.6: no
/// documented replication SLA, so poll with backoff until the deadline, never a fixed sleep).
/// A duplicate (0x8004F511) or a write whose answer was lost means it may exist: re-read and
/// adopt. `None` in a dry run; the flag says this run created it (a duplicate met after a lost
/// answer is this run's own create).
async fn create_application_user(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    client_id: &str,
    bu: &BusinessUnit,
) -> Result<Option<(SystemUser, bool)>> {
    // Waiting only makes sense while the app may still be replicating: within
    // REPLICATION_WINDOW of register-app's run (reference §1.6: no documented SLA; minutes in
    // practice). An app registered long ago that Dataverse still does not know is another
    // problem (wrong tenant or client id), reported at once.
    let registered_at = ctx
        .doc
        .get_str("steps.register-app.at")
        .ok()
        .flatten()
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        });
    let may_wait =
        registered_at.is_none_or(|t| time::OffsetDateTime::now_utc() - t < REPLICATION_WINDOW);
    // The spinner only shows on a terminal; in a pipeline one line says why nothing happens yet.
    let announced = std::cell::Cell::new(false);
    let announced = &announced;
    let created = until_ready(
        ctx.http.deadline(),
        "creating the application user",
        ctx.reporter(),
        || async move {
            match dv.create_application_user(client_id, &bu.businessunitid).await {
                Ok(Written::Planned) => Ok(Poll::Ready(None)),
                // The answer holds the row (`Prefer: return=representation`): no read-back.
                // A user created a moment ago holds no role yet.
                Ok(Written::Done(Created::Row(u))) => Ok(Poll::Ready(Some((
                    u.systemuserid.clone(),
                    Some(SystemUser {
                        systemuserroles_association: u
                            .systemuserroles_association
                            .clone()
                            .or(Some(Vec::new())),
                        ..u
                    }),
                    true,
                )))),
                Ok(Written::Done(Created::Id(Some(id)))) => Ok(Poll::Ready(Some((id, None, true)))),
                Ok(Written::Done(Created::Id(None))) => match find_application_user(dv, client_id).await? {
                    Some(u) => Ok(Poll::Ready(Some((u.systemuserid.clone(), Some(u), true)))),
                    None => Err(Error::internal(
                        "Dataverse accepted the new application user but neither named it (no OData-EntityId) nor lists it",
                    )),
                },
                Err(e) if is_app_not_yet_known(&e) && !may_wait => Err(e
                    .context(format!(
                        "Dataverse does not know client id {client_id}, registered more than {} minutes ago",
                        REPLICATION_WINDOW.whole_minutes()
                    ))
                    .with_kind(s2s_core::Kind::Refused)
                    .with_hint(
                        "check that the app lives in the tenant of this org and has a service principal (re-run register-app), and that --client-id / app.client_id is its Application (client) ID",
                    )),
                Err(e) if is_app_not_yet_known(&e) => {
                    if !announced.replace(true) {
                        ctx.say(&format!(
                            "waiting for Dataverse to learn about client id {client_id} (replication from Entra ID can take minutes)"
                        ));
                    }
                    Ok(Poll::Pending(format!(
                        "Dataverse does not know client id {client_id} yet"
                    )))
                }
                Err(e) if is_duplicate_application_user(&e) || e.ambiguous => {
                    match find_application_user(dv, client_id).await? {
                        Some(u) => Ok(Poll::Ready(Some((u.systemuserid.clone(), Some(u), e.ambiguous)))),
                        None if e.ambiguous => Ok(Poll::Pending(
                            "the create's answer was lost and no user is visible yet".into(),
                        )),
                        None => Err(e
                            .context(
                                "Dataverse reports an application user for this app, but none is active",
                            )
                            .with_hint(
                                "a soft-deleted application user of this app blocks a new one: re-run with --purge-deleted",
                            )),
                    }
                }
                Err(e) => Err(e.context("creating the application user")),
            }
        },
    )
    .await?;
    let Some((id, row, new)) = created else {
        return Ok(None);
    };
    let user = match row {
        Some(u) => u,
        // Only the id is known (the service ignored the preference): read the row.
        None => dv.system_user(&id).await?.ok_or_else(|| {
            Error::internal(format!(
                "the application user {id} Dataverse just named cannot be read back"
            ))
        })?,
    };
    if new {
        ctx.say(&format!(
            "created application user {} in business unit {} (systemuserid {id})",
            display_user(&user),
            bu_name(bu)
        ));
    } else {
        ctx.say(&format!(
            "adopted application user {} that already existed for client id {client_id} (systemuserid {id})",
            display_user(&user)
        ));
    }
    Ok(Some((user, new)))
}

/// Each role by name from the business unit the user is (or will be) in: reads only, before
/// any write, so a misspelt role stops the run with nothing created or enabled.
async fn resolve_roles(
    dv: &Dataverse<'_>,
    names: &[String],
    bu: &BusinessUnit,
) -> Result<Vec<(String, Role)>> {
    let mut out = Vec::new();
    for name in names {
        out.push((name.clone(), find_role(dv, name, bu).await?));
    }
    Ok(out)
}

/// Each role ([`resolve_roles`]) associated unless already held (reference §2: read before
/// write, a duplicate 0x80040237 also means done). With each role: whether this run associated
/// it (a duplicate answer counts: the role was not held when read).
async fn ensure_roles(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    user: &AppUser,
    roles: Vec<(String, Role)>,
) -> Result<Vec<(Role, bool)>> {
    let held: Vec<String> = match &user.existing {
        Some(u) => match &u.systemuserroles_association {
            Some(r) => r.iter().map(|r| r.roleid.to_ascii_lowercase()).collect(),
            None => dv
                .user_roles(&u.systemuserid)
                .await?
                .into_iter()
                .map(|r| r.roleid.to_ascii_lowercase())
                .collect(),
        },
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for (name, role) in roles {
        let held_already = held.contains(&role.roleid.to_ascii_lowercase());
        if held_already {
            ctx.say(&format!(
                "application user already holds role \"{name}\" ({})",
                role.roleid
            ));
        } else {
            match dv.associate_role(user.id(), &role.roleid).await? {
                Written::Done(Associated::Added) => ctx.say(&format!(
                    "assigned role \"{name}\" ({}) to the application user",
                    role.roleid
                )),
                Written::Done(Associated::AlreadyThere) => ctx.say(&format!(
                    "application user already holds role \"{name}\" ({})",
                    role.roleid
                )),
                Written::Planned => ctx.say(&format!(
                    "dry run: would assign role \"{name}\" ({}) to the application user",
                    role.roleid
                )),
            }
        }
        out.push((
            Role {
                name: Some(role.name.clone().unwrap_or_else(|| name.clone())),
                ..role
            },
            !held_already,
        ));
    }
    Ok(out)
}

/// The business unit with its name, read only when the name is not known yet (messages name
/// the unit); unchanged when the unit cannot be read.
async fn named(dv: &Dataverse<'_>, bu: BusinessUnit) -> Result<BusinessUnit> {
    if bu.name.is_some() {
        return Ok(bu);
    }
    Ok(dv.business_unit(&bu.businessunitid).await?.unwrap_or(bu))
}

async fn find_role(dv: &Dataverse<'_>, name: &str, bu: &BusinessUnit) -> Result<Role> {
    let mut roles = dv.roles_by_name(name, &bu.businessunitid).await?;
    if roles.len() != 1 {
        // Name the unit in the message.
        let bu = named(dv, bu.clone()).await?;
        return Err(role_lookup_error(name, &bu, &roles));
    }
    Ok(roles.remove(0))
}

fn role_lookup_error(name: &str, bu: &BusinessUnit, roles: &[Role]) -> Error {
    match roles.len() {
        0 => {
            let hint = if name == DEFAULT_ROLE {
                "the Marketo solution (step 1) brings this role; check its import completed, or name the role with --role"
            } else {
                "check the role's exact name in the business unit (Settings > Security roles)"
            };
            Error::refused(format!(
                "no security role named {name:?} in business unit {}",
                bu_name(bu)
            ))
            .with_hint(hint)
        }
        n => Error::refused(format!(
            "{n} security roles are named {name:?} in business unit {}: {}",
            bu_name(bu),
            roles
                .iter()
                .map(|r| r.roleid.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn display_user(u: &SystemUser) -> String {
    match (u.fullname.as_deref(), u.internalemailaddress.as_deref()) {
        (Some(f), Some(m)) if !m.is_empty() => format!("\"{f}\" <{m}>"),
        (Some(f), _) => format!("\"{f}\""),
        (None, Some(m)) => format!("<{m}>"),
        (None, None) => String::from("(unnamed)"),
    }
}

fn bu_name(bu: &BusinessUnit) -> String {
    match &bu.name {
        Some(n) => format!("\"{n}\" ({})", bu.businessunitid),
        None => bu.businessunitid.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_default_and_repeat() {
        let c = Cli::try_parse_from(["assign-role"]).unwrap();
        assert_eq!(c.roles, vec![DEFAULT_ROLE.to_string()]);
        let c = Cli::try_parse_from(["assign-role", "--role", "A", "--role", "B", "--role", "A"])
            .unwrap();
        assert_eq!(unique(&c.roles), vec!["A".to_string(), "B".to_string()]);
    }

    #[test]
    fn client_id_must_be_a_guid() {
        assert!(Cli::try_parse_from(["assign-role", "--client-id", "nope"]).is_err());
        let c = Cli::try_parse_from([
            "assign-role",
            "--client-id",
            "{ABCDEF01-2345-6789-ABCD-EF0123456789}",
        ])
        .unwrap();
        assert_eq!(
            c.client_id.as_deref(),
            Some("abcdef01-2345-6789-abcd-ef0123456789")
        );
    }
}
