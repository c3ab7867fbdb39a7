//! `teardown` — the reverse of the runbook: removes what `register-app` … `add-sync-filter`
//! created, in reverse order, for a trial org, an offboarded customer or a botched first try.
//!
//! Each object gets one line on stderr, and each removal is idempotent, so a re-run (after a
//! failure, or on a finished teardown) sends no write for what is already gone:
//!
//! 1. with `--remove-sync-filter` only: the `new_synctomkto` columns (`DELETE` of the attribute
//!    metadata, then `PublishXml` of those entities). They hold every record's sync choice, so
//!    they are kept by default and a warning says what is lost.
//! 2. Marketo Config's "Marketo User" lookup is emptied, only when it points at our application
//!    user (names from `marketo_config.*`, written by configure-marketo; discovered as
//!    configure-marketo does when the document lacks them).
//! 3. the role(s) assign-role gave are removed from the application user, which is then
//!    disabled: Dataverse keeps users for audit, so it stays, disabled.
//! 4. the Home Realm Discovery policy is unassigned, and deleted, only when it is set-hrd-policy's
//!    (its display name and exactly its definition) and no other service principal uses it.
//! 5. every delegated grant of the app's service principal (the admin consent) is deleted, then
//!    the service principal, then the app registration (Entra keeps a deleted app restorable for
//!    30 days; the line gives the restore command). An app register-app adopted
//!    (`app.adopted`, `--client-id`) was not made by the setup: it, its service principal and its
//!    consent stay, and only the client secrets make-secret added are removed.
//! 6. the local secret file is deleted — only when it holds this app's secret (make-secret's file
//!    name for the client id, or content that starts with the hint of one of the app's
//!    credentials), and only a small 0600 regular file.
//!
//! What it removes must be the setup's: register-app creates every app by its unique name, so an
//! app with none that the document does not mark adopted (a portal app, another tool's) is kept
//! with everything of it; the app found must agree with every key of the document
//! (object id, client id, unique name; a mix of two apps is refused before any removal); a
//! service principal is removed only with its app (never one without an app registration here,
//! such as Dynamics CRM's); the application user only when its `applicationid` is the app's
//! client id (never a person, never another app's user, whatever the document says).
//!
//! Every read comes first; then the plan is shown and, on a terminal, confirmed (`--yes` is
//! needed otherwise, checked before any request). Objects are found by their idempotency keys
//! (design.md) when the document lacks their ids, so a document of a setup that failed halfway —
//! say only `app.*` — works: the app by object id, client id or unique name; its service
//! principal by `appId`; the application user by `applicationid`.
//!
//! Entra ID is eventually consistent (graph.md §7.4). Right after a setup step wrote (within 10
//! minutes, later than any teardown), an object the document names that answers 404 is read
//! again until it shows up or two minutes pass, so a teardown straight after the setup does not
//! leave it behind. An object a teardown removed in the last 10 minutes (`teardown.removed`) is
//! not removed again while a replica still lists it, so the re-run sends no write.
//!
//! Input keys:  `app.object_id`, `app.client_id`, `app.unique_name`, `app.service_principal_id`,
//!              `app.display_name`, `app.adopted`, `teardown.client_id` (an earlier teardown's),
//!              `secret.file`, `secret.key_id`, `secret.previous_key_id` (removed from an adopted
//!              app),
//!              `hrd_policy.policy_id`, `hrd_policy.display_name`, `dynamics.url`,
//!              `dynamics.application_user_id`, `dynamics.roles`, `marketo_config.entity_set`,
//!              `.record_id`, `.user_lookup`, `.nav_property`, `sync_filter.entities`.
//! Output keys: removes `app.object_id`, `app.client_id`, `app.service_principal_id`, `consent`,
//!              `secret`, `hrd_policy` (or sets `hrd_policy.status: unassigned` when the policy is
//!              kept for other service principals), `dynamics.roles`,
//!              `marketo_config.sync_user_id`, `sync_filter` (with `--remove-sync-filter`),
//!              `verify`; sets `dynamics.application_user_disabled`, `teardown.client_id`,
//!              `teardown.application_object_id`, `teardown.restore_command`, `teardown.removed`
//!              (`[{kind, id, name, at}]`), `steps.teardown`.
//! Exit codes:  0 done (also when nothing was left); 2 bad input, or no `--yes` off a terminal, or
//!              the plan was not confirmed (no write sent); 3 sign-in failed; 4 Graph or
//!              Dataverse refused (e.g. a missing privilege); 5 not done in time; 1 unexpected.
//!
//! Example:
//! ```text
//! teardown --state marketo-s2s.state.json --dry-run     # what would go
//! teardown --state marketo-s2s.state.json --yes
//! ```

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use s2s_core::retry::{REPLICATION_WINDOW, visible_within};
use s2s_core::run::Key;
use s2s_core::{CommonArgs, Ctx, Error, Kind, Result, StateDoc};
use s2s_dataverse::names::{entity_logical_name, not_blank, unique};
use s2s_dataverse::{Dataverse, SystemUser, Written, marketo_config};
use s2s_graph::{Application, Graph, HrdPolicy, PermissionGrant, ServicePrincipal};

/// The sync-filter column add-sync-filter creates.
use s2s_dataverse::SYNC_FILTER_FIELD;
/// The help's closing part: examples and the keys, then the exit codes from core's one table.
fn after_help() -> String {
    format!(
        "{}\n{}",
        "\
Examples:
  teardown --state marketo-s2s.state.json --dry-run    # every read, the plan, no write
  teardown --state marketo-s2s.state.json --yes
  echo '{\"app\":{\"unique_name\":\"marketo-trial\"}}' | teardown --yes   # document lost

Reads app.* (app.adopted: the app is kept), secret.file, secret.key_id, secret.previous_key_id,
hrd_policy.*, dynamics.*, marketo_config.*, sync_filter.entities; objects whose ids are missing are found by their keys (app unique name or client id, service
principal by appId, application user by applicationid, the Marketo configuration record as
configure-marketo discovers it). It removes only what is the setup's: the app must have the
unique name register-app gave it and agree with every key of the document, the application user
must belong to the app, the secret file must hold the app's secret; an adopted app (app.adopted)
is kept. Removes the keys of what it removed,
records teardown.client_id, teardown.restore_command and teardown.removed. A re-run sends no write.
A deleted app registration stays restorable for 30 days (teardown.restore_command has the URL):
  az rest --method POST --url <graph>/v1.0/directory/deletedItems/<object-id>/restore",
        s2s_core::exit_codes::help(
            false,
            &[(2, "also not confirmed (no --yes off a terminal)")]
        )
    )
}

/// Remove what the Marketo S2S setup created, in reverse order.
///
/// Reads the state document on stdin (or --state FILE), reads every object first, shows the plan
/// and asks for confirmation on a terminal (--yes otherwise), then removes: the Marketo User
/// lookup (if it is ours), the role(s) and the application user (disabled: Dataverse keeps users),
/// the HRD policy (if ours and unused elsewhere), the admin-consent grant, the service principal,
/// the app registration (restorable for 30 days) and the local secret file. The sync-filter
/// columns are kept unless --remove-sync-filter.
#[derive(Debug, Parser)]
#[command(
    name = "teardown",
    version,
    after_help = after_help()
)]
pub struct Cli {
    /// Remove without asking (needed when stderr is not a terminal, e.g. in CI or a pipeline
    /// whose stderr is redirected)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Also delete the new_synctomkto sync-filter columns AND ALL THE VALUES THEY HOLD
    #[arg(long)]
    pub remove_sync_filter: bool,

    /// Entity whose sync-filter column to delete with --remove-sync-filter (repeatable)
    /// [default: sync_filter.entities, else lead and contact]
    #[arg(long = "entity", value_name = "NAME", value_parser = entity_logical_name, requires = "remove_sync_filter")]
    pub entities: Vec<String>,

    /// Application (client) id of the app to remove [state: app.client_id]
    #[arg(long, value_name = "GUID", value_parser = s2s_core::guid::clap_parser)]
    pub client_id: Option<String>,

    /// Security role to remove from the application user (repeatable)
    /// [default: the roles in dynamics.roles, and "Marketo Sync User"]
    #[arg(long = "role", value_name = "NAME")]
    pub roles: Vec<String>,

    /// Display name of our Home Realm Discovery policy [default: hrd_policy.display_name, else
    /// "<app display name> - AllowCloudPasswordValidation"]
    #[arg(long, value_name = "NAME")]
    pub policy_name: Option<String>,

    /// The local secret file to delete [state: secret.file] [default:
    /// marketo-s2s-<client id>.secret when it exists]
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl s2s_core::Tool for Cli {
    const NAME: &'static str = "teardown";
    const READS: &'static [(&'static str, Key)] = &[
        ("app.object_id", Key::Guid),
        ("app.client_id", Key::Guid),
        ("app.unique_name", Key::Str),
        ("app.service_principal_id", Key::Guid),
        ("app.display_name", Key::Str),
        ("app.adopted", Key::Bool),
        ("secret.key_id", Key::Guid),
        ("secret.previous_key_id", Key::Guid),
        ("teardown.client_id", Key::Guid),
        ("secret.file", Key::Str),
        ("hrd_policy.policy_id", Key::Guid),
        ("hrd_policy.display_name", Key::Str),
        ("dynamics.application_user_id", Key::Guid),
        ("dynamics.roles", Key::Array),
        ("marketo_config.entity_set", Key::Str),
        ("marketo_config.record_id", Key::Guid),
        ("marketo_config.user_lookup", Key::Str),
        ("marketo_config.nav_property", Key::Str),
        ("sync_filter.entities", Key::Array),
    ];
    fn common(&self) -> &CommonArgs {
        &self.common
    }
    fn validate(&self) -> Result<()> {
        for role in &self.roles {
            not_blank("--role", role)?;
        }
        if let Some(n) = &self.policy_name {
            s2s_graph::check_display_name(n, "--policy-name", 256)?;
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

/// What the document says, read before the first request.
#[derive(Debug, Default)]
struct Input {
    object_id: Option<String>,
    client_id: Option<String>,
    unique_name: Option<String>,
    /// register-app adopted the app (`--client-id`): the setup did not create it, so it and its
    /// service principal and consent stay; only the secrets make-secret added go.
    adopted: bool,
    /// make-secret's credentials (`secret.key_id`, `secret.previous_key_id`).
    key_ids: Vec<String>,
    sp_id: Option<String>,
    secret_file: Option<PathBuf>,
    policy_id: Option<String>,
    policy_names: Vec<String>,
    user_id: Option<String>,
    role_ids: Vec<String>,
    role_names: Vec<String>,
    config: Option<ConfigNames>,
    sync_entities: Vec<String>,
    /// The entities came from `sync_filter.entities` (add-sync-filter ran), not the default.
    sync_filter_in_doc: bool,
    /// A setup step wrote within [`RECENT`], after any earlier teardown: a 404 for an object
    /// the document names may be replication (graph.md §7.4), so such reads wait.
    fresh_setup: bool,
    /// `(kind, id)` of what a teardown removed within [`RECENT`]: Entra may still list them
    /// while the deletion replicates, and a re-run must not send their removal again.
    recently_removed: Vec<(String, String)>,
}

/// "Right after": how long a write may take to reach every replica, as verify-sync's `--settle`
/// assumes (10 minutes).
const RECENT: Duration = Duration::from_secs(10 * 60);

/// Seconds since an RFC 3339 time; `None` when it does not parse.
fn age_secs(at: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()?;
    Some((time::OffsetDateTime::now_utc() - t).whole_seconds())
}

fn is_recent(at: &str) -> bool {
    age_secs(at).is_some_and(|s| s < RECENT.as_secs() as i64)
}

/// Whether a setup step (not teardown) changed something recently, later than the last teardown.
fn setup_was_recent(doc: &StateDoc) -> bool {
    let Ok(Some(steps)) = doc.get_object("steps") else {
        return false;
    };
    let last_teardown = steps
        .get("teardown")
        .and_then(|t| t["at"].as_str())
        .and_then(age_secs);
    steps.iter().any(|(tool, s)| {
        tool != "teardown"
            && s["changed"] == Value::Bool(true)
            && s["at"].as_str().and_then(age_secs).is_some_and(|age| {
                age < RECENT.as_secs() as i64 && last_teardown.is_none_or(|t| age < t)
            })
    })
}

fn recently_removed(doc: &StateDoc) -> Vec<(String, String)> {
    doc.get("teardown.removed")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r["at"].as_str().is_some_and(is_recent))
        .filter_map(|r| {
            Some((
                r["kind"].as_str()?.to_string(),
                r["id"].as_str()?.to_ascii_lowercase(),
            ))
        })
        .collect()
}

/// Where configure-marketo set the "Marketo User" lookup.
#[derive(Debug, Clone)]
struct ConfigNames {
    entity_set: String,
    record_id: String,
    lookup: String,
    nav_property: String,
}

impl Input {
    fn read(ctx: &Ctx, cli: &Cli) -> Result<Input> {
        let doc = &ctx.doc;
        let str_of = |k: &str| -> Result<Option<String>> {
            Ok(doc
                .get_str(k)?
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string))
        };
        let display_name = str_of("app.display_name")?;
        let mut policy_names = Vec::new();
        if let Some(n) = &cli.policy_name {
            policy_names.push(n.trim().to_string());
        } else {
            if let Some(n) = str_of("hrd_policy.display_name")? {
                policy_names.push(n);
            }
            if let Some(a) = &display_name {
                policy_names.push(format!("{a} - AllowCloudPasswordValidation"));
            }
        }
        let mut role_ids = Vec::new();
        let mut role_names = cli.roles.clone();
        if cli.roles.is_empty() {
            for r in doc.get_array("dynamics.roles")?.into_iter().flatten() {
                if let Some(id) = r["id"].as_str() {
                    role_ids.push(id.to_ascii_lowercase());
                }
                if let Some(n) = r["name"].as_str() {
                    role_names.push(n.to_string());
                }
            }
            role_names.push(s2s_dataverse::MARKETO_SYNC_ROLE.to_string());
        }
        let config = match (
            str_of("marketo_config.entity_set")?,
            doc.get_guid("marketo_config.record_id")?,
            str_of("marketo_config.user_lookup")?,
            str_of("marketo_config.nav_property")?,
        ) {
            (Some(entity_set), Some(record_id), Some(lookup), Some(nav_property)) => {
                Some(ConfigNames {
                    entity_set,
                    record_id,
                    lookup: lookup.to_ascii_lowercase(),
                    nav_property,
                })
            }
            _ => None,
        };
        let mut sync_filter_in_doc = false;
        let sync_entities = if !cli.entities.is_empty() {
            unique(&cli.entities)
        } else {
            let from_doc: Vec<String> = doc
                .get_array("sync_filter.entities")?
                .into_iter()
                .flatten()
                .filter_map(|e| e["entity"].as_str())
                .filter_map(|e| entity_logical_name(e).ok())
                .collect();
            if from_doc.is_empty() {
                vec!["lead".to_string(), "contact".to_string()]
            } else {
                sync_filter_in_doc = true;
                unique(&from_doc)
            }
        };
        let input = Input {
            object_id: doc.get_guid("app.object_id")?,
            client_id: match &cli.client_id {
                Some(c) => Some(c.clone()),
                None => match doc.get_guid("app.client_id")? {
                    Some(c) => Some(c),
                    None => doc.get_guid("teardown.client_id")?,
                },
            },
            unique_name: str_of("app.unique_name")?,
            // register-app marks adoption with app.adopted; earlier versions only recorded
            // app.unique_name as null (an adopted app has no key of ours).
            adopted: doc.get("app.adopted").and_then(Value::as_bool) == Some(true)
                || doc.get("app.unique_name") == Some(&Value::Null),
            key_ids: [
                doc.get_guid("secret.key_id")?,
                doc.get_guid("secret.previous_key_id")?,
            ]
            .into_iter()
            .flatten()
            .map(|k| k.to_ascii_lowercase())
            .collect(),
            sp_id: doc.get_guid("app.service_principal_id")?,
            secret_file: match &cli.secret_file {
                Some(f) => Some(f.clone()),
                // Relative to the --state file's folder, as make-secret records it.
                None => str_of("secret.file")?.map(|f| ctx.resolve_doc_path(Path::new(&f))),
            },
            policy_id: doc.get_guid("hrd_policy.policy_id")?,
            policy_names,
            user_id: doc.get_guid("dynamics.application_user_id")?,
            role_ids,
            role_names: unique(&role_names),
            config,
            sync_entities,
            sync_filter_in_doc,
            fresh_setup: setup_was_recent(doc),
            recently_removed: recently_removed(doc),
        };
        if input.object_id.is_none()
            && input.client_id.is_none()
            && input.unique_name.is_none()
            && input.sp_id.is_none()
            && input.user_id.is_none()
        {
            return Err(s2s_core::config::missing(
                "something that names the app to remove",
                "--client-id",
                "app.client_id (or app.object_id, app.unique_name)",
            ));
        }
        Ok(input)
    }
}

impl Input {
    /// Reads an object the document names: once, or — right after the setup wrote — until it
    /// shows up or [`REPLICATION_WINDOW`] passes (graph.md §7.4: a new object can answer 404 on
    /// another replica), so a teardown run straight after the setup does not leave it behind.
    async fn read_named<T, F, Fut>(&self, ctx: &Ctx, what: &str, mut read: F) -> Result<Option<T>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        if self.fresh_setup {
            visible_within(
                ctx.http.deadline(),
                REPLICATION_WINDOW,
                what,
                ctx.reporter(),
                read,
            )
            .await
        } else {
            read().await
        }
    }

    /// Removed by a teardown a moment ago: gone, even if a replica still lists it.
    fn was_removed(&self, kind: &str, id: &str) -> bool {
        self.recently_removed
            .iter()
            .any(|(k, i)| k == kind && i.eq_ignore_ascii_case(id))
    }
}

/// Says that a just-removed object is still listed, and that nothing is sent for it.
fn still_replicating(ctx: &Ctx, what: &str) {
    ctx.say(&format!(
        "{what} was removed by the last teardown; Entra still lists it while the deletion replicates, so nothing is sent"
    ));
}

/// One removal, in the order they run.
#[derive(Debug, Clone)]
enum Step {
    DeleteColumn {
        entity: String,
        metadata_id: String,
    },
    PublishEntities(Vec<String>),
    ClearMarketoUser {
        config: ConfigNames,
        user_id: String,
    },
    RemoveRole {
        user_id: String,
        role_id: String,
        name: String,
    },
    DisableUser {
        user_id: String,
        label: String,
    },
    UnassignPolicy {
        sp_id: String,
        policy: HrdPolicy,
        /// Other service principals use it: it stays after the unassignment.
        kept_for: usize,
    },
    DeletePolicy(HrdPolicy),
    DeleteGrant(PermissionGrant),
    DeleteServicePrincipal(ServicePrincipal),
    DeleteApplication {
        app: Application,
        restore: String,
    },
    DeleteSecretFile(PathBuf),
    /// A client secret make-secret added to an adopted app (the app itself stays).
    RemovePassword {
        app_object_id: String,
        key_id: String,
        hint: String,
    },
}

impl Step {
    /// (verb, past tense, object, note) for the plan line and the done line.
    fn words(&self) -> (&'static str, &'static str, String, Option<String>) {
        match self {
            Step::DeleteColumn { entity, .. } => (
                "delete",
                "deleted",
                format!("the sync-filter column {SYNC_FILTER_FIELD} on {entity} and all its values"),
                None,
            ),
            Step::PublishEntities(e) => ("publish", "published", e.join(", "), None),
            Step::ClearMarketoUser { config, user_id } => (
                "clear",
                "cleared",
                format!(
                    "\"Marketo User\" of the Marketo configuration record ({}), which pointed at the application user {user_id}",
                    config.record_id
                ),
                None,
            ),
            Step::RemoveRole { name, role_id, .. } => (
                "remove",
                "removed",
                format!("role \"{name}\" ({role_id}) from the application user"),
                None,
            ),
            Step::DisableUser { label, .. } => (
                "disable",
                "disabled",
                format!("application user {label}"),
                Some(
                    "Dataverse keeps users for audit, so it stays listed as disabled (delete it in the Power Platform admin center if your policy requires)"
                        .into(),
                ),
            ),
            Step::UnassignPolicy {
                policy, kept_for, ..
            } => (
                "unassign",
                "unassigned",
                format!(
                    "Home Realm Discovery policy {} from the app's service principal",
                    policy_label(policy)
                ),
                (*kept_for > 0).then(|| {
                    format!(
                        "the policy itself is kept: {kept_for} other service principal(s) use it"
                    )
                }),
            ),
            Step::DeletePolicy(p) => (
                "delete",
                "deleted",
                format!("Home Realm Discovery policy {}", policy_label(p)),
                None,
            ),
            Step::DeleteGrant(g) => (
                "delete",
                "deleted",
                format!(
                    "the {} consent grant {} (scope \"{}\") to resource {}",
                    match g.consent_type.as_deref() {
                        Some("AllPrincipals") => "admin",
                        _ => "user",
                    },
                    g.id,
                    g.scope.as_deref().unwrap_or("").trim(),
                    g.resource_id
                ),
                None,
            ),
            Step::DeleteServicePrincipal(sp) => (
                "delete",
                "deleted",
                format!("service principal {}", sp.label()),
                None,
            ),
            Step::DeleteApplication { app, restore } => (
                "delete",
                "deleted",
                format!(
                    "app registration \"{}\" (client id {}, object id {})",
                    app.display_name.as_deref().unwrap_or(""),
                    app.app_id,
                    app.id
                ),
                Some(format!(
                    "Entra keeps deleted apps restorable for 30 days: az rest --method POST --url {restore}"
                )),
            ),
            Step::DeleteSecretFile(p) => (
                "delete",
                "deleted",
                format!("the secret file {}", p.display()),
                None,
            ),
            Step::RemovePassword { key_id, hint, .. } => (
                "remove",
                "removed",
                format!("client secret {key_id} (hint {hint}…) that make-secret added to the adopted app"),
                None,
            ),
        }
    }

    fn line(&self, tense: Tense) -> String {
        let (verb, past, object, note) = self.words();
        let head = match tense {
            Tense::Plan => format!("will {verb} {object}"),
            Tense::DryRun => format!("dry run: would {verb} {object}"),
            Tense::Done => format!("{past} {object}"),
        };
        match note {
            Some(n) => format!("{head}; {n}"),
            None => head,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Tense {
    Plan,
    DryRun,
    Done,
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

    // ---- every read first, in the order the removals will run --------------------------
    let mut steps = Vec::new();
    let app = find_application(ctx, &g, &input).await?;
    // register-app creates every app by its unique name (the idempotency key), or adopts one
    // (app.adopted). An app with neither — made in the portal or by another tool, named by a
    // document that did not come from the setup — is not the setup's: nothing of it goes.
    if let Some(a) = &app {
        if !input.adopted && a.unique_name.as_deref().is_none_or(|u| u.trim().is_empty()) {
            ctx.say(&format!(
                "kept app registration \"{}\" (client id {}): it has no unique name, so the setup did not create it (register-app creates every app by its unique name); nothing of it is removed",
                a.display_name.as_deref().unwrap_or(""),
                a.app_id
            ));
            return Ok(());
        }
    }
    // The app found (and checked against every key of the document), else — its registration
    // already gone — the document's client id, which still names its application user.
    let client_id = app
        .as_ref()
        .map(|a| a.app_id.to_ascii_lowercase())
        .or_else(|| input.client_id.clone());
    if let Some(dv) = &dv {
        if cli.remove_sync_filter {
            plan_sync_filter(ctx, dv, &input, &mut steps).await?;
        } else {
            keep_sync_filter(ctx, &input);
        }
        plan_dataverse(ctx, dv, &input, client_id.as_deref(), &mut steps).await?;
    }
    let sp = match &app {
        Some(app) => find_service_principal(ctx, &g, &input, app).await?,
        None => {
            // A service principal is only ever removed with its app: Entra deletes it with the
            // app registration, and one without an app here (Dynamics CRM's, another
            // tenant's app) was never the setup's.
            if let Some(id) = &input.sp_id {
                ctx.say(&format!(
                    "service principal {id} is not touched: without its app registration in this tenant it is not the setup's (Entra removes an app's service principal with the app)"
                ));
            }
            None
        }
    };
    plan_hrd_policy(ctx, &g, &input, sp.as_ref(), &mut steps).await?;
    // Kept: an app register-app adopted; only what the setup added to it goes.
    let why_kept = app
        .as_ref()
        .filter(|_| input.adopted)
        .map(|_| "register-app adopted it (--client-id), the setup did not create it");
    let keep_app = why_kept.is_some();
    if let (Some(app), Some(why)) = (&app, why_kept) {
        ctx.say(&format!(
            "kept app registration \"{}\" (client id {}){}: {why}",
            app.display_name.as_deref().unwrap_or(""),
            app.app_id,
            sp.as_ref()
                .map(|sp| format!(", its service principal {} and its consent", sp.label()))
                .unwrap_or_default()
        ));
    }
    if let (Some(app), true) = (&app, keep_app) {
        for key_id in &input.key_ids {
            match app
                .password_credentials
                .iter()
                .find(|c| c.key_id.eq_ignore_ascii_case(key_id))
            {
                Some(c) => steps.push(Step::RemovePassword {
                    app_object_id: app.id.clone(),
                    key_id: c.key_id.to_ascii_lowercase(),
                    hint: c.hint.clone().unwrap_or_default(),
                }),
                None => ctx.say(&format!(
                    "client secret {key_id} is no longer on the app: already removed"
                )),
            }
        }
    }
    if let (Some(sp), false) = (&sp, keep_app) {
        // Filtered again here: only grants whose client is this service principal are removed.
        let grants: Vec<PermissionGrant> = g
            .grants_of_client(&sp.id)
            .await
            .map_err(explain_graph)?
            .into_iter()
            .filter(|gr| gr.client_id.eq_ignore_ascii_case(&sp.id))
            .filter(|gr| {
                let gone = input.was_removed("oauth2_permission_grant", &gr.id);
                if gone {
                    still_replicating(ctx, &format!("consent grant {}", gr.id));
                }
                !gone
            })
            .collect();
        if grants.is_empty() {
            ctx.say(&format!(
                "service principal {} holds no consent grant",
                sp.label()
            ));
        }
        steps.extend(grants.into_iter().map(Step::DeleteGrant));
        steps.push(Step::DeleteServicePrincipal(sp.clone()));
    }
    if let (Some(app), false) = (&app, keep_app) {
        let restore = g.restore_url(&app.id);
        steps.push(Step::DeleteApplication {
            app: app.clone(),
            restore,
        });
    }
    plan_secret_file(ctx, &input, client_id.as_deref(), app.as_ref(), &mut steps);

    // ---- the plan, confirmed -----------------------------------------------------------
    if steps.is_empty() {
        return Ok(());
    }
    if !cli.yes && !ctx.dry_run() {
        confirm(ctx, &steps)?;
    }

    // ---- the removals ------------------------------------------------------------------
    for step in &steps {
        let done = execute(ctx, &g, dv.as_ref(), step).await?;
        if ctx.dry_run() {
            ctx.say(&step.line(Tense::DryRun));
        } else {
            ctx.say(&step.line(Tense::Done));
            if done {
                record(&mut ctx.doc, step, client_id.as_deref());
            }
        }
    }
    if !ctx.dry_run() {
        ctx.doc.remove("verify");
    }
    Ok(())
}

/// The app registration: by object id, else client id, else unique name (design.md's keys) —
/// the next key is tried when one finds nothing (after a teardown and a new setup the old ids
/// name a deleted app, the unique name the new one). Every key the document holds must then
/// agree with the app found, except those whose own lookup found nothing: teardown never
/// deletes another app because a document mixes two.
async fn find_application(ctx: &Ctx, g: &Graph<'_>, input: &Input) -> Result<Option<Application>> {
    let what = "reading the app registration";
    let mut missed: Vec<String> = Vec::new();
    let mut found = None;
    if let Some(id) = &input.object_id {
        match input
            .read_named(ctx, what, || g.application(id))
            .await
            .map_err(explain_graph)?
        {
            Some(a) => found = Some((a, format!("object id {id}"))),
            None => missed.push(format!("object id {id}")),
        }
    }
    if let (None, Some(c)) = (&found, &input.client_id) {
        match input
            .read_named(ctx, what, || g.application_by_app_id(c))
            .await
            .map_err(explain_graph)?
        {
            Some(a) => found = Some((a, format!("client id {c}"))),
            None => missed.push(format!("client id {c}")),
        }
    }
    if let (None, Some(u)) = (&found, &input.unique_name) {
        // Read once: a unique name not seen yet is not waited for (the ids above were).
        match g
            .application_by_unique_name(u)
            .await
            .map_err(explain_graph)?
        {
            Some(a) => found = Some((a, format!("unique name {u:?}"))),
            None => missed.push(format!("unique name {u:?}")),
        }
    }
    let Some((app, key)) = found else {
        if !missed.is_empty() {
            ctx.say(&format!(
                "no app registration with {} in this tenant: already deleted",
                missed.join(" or ")
            ));
        }
        return Ok(None);
    };
    if input.was_removed("application", &app.id) {
        still_replicating(ctx, &format!("app registration {}", app.id));
        return Ok(None);
    }
    let looked_up = |k: &str| key.starts_with(k) || missed.iter().any(|m| m.starts_with(k));
    let mut disagree = Vec::new();
    if let Some(c) = &input.client_id {
        if !app.app_id.eq_ignore_ascii_case(c) && !looked_up("client id") {
            disagree.push(format!("client id {c} (the app's is {})", app.app_id));
        }
    }
    if let Some(o) = &input.object_id {
        if !app.id.eq_ignore_ascii_case(o) && !looked_up("object id") {
            disagree.push(format!("object id {o} (the app's is {})", app.id));
        }
    }
    if let Some(u) = &input.unique_name {
        let same = app
            .unique_name
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(u));
        if !same && !looked_up("unique name") {
            disagree.push(format!(
                "unique name {u:?} (the app's is {})",
                app.unique_name
                    .as_deref()
                    .map_or("none".to_string(), |a| format!("{a:?}"))
            ));
        }
    }
    if !disagree.is_empty() {
        return Err(Error::refused(format!(
            "the app registration found by {key} (\"{}\") does not match the document's {}",
            app.display_name.as_deref().unwrap_or(""),
            disagree.join(", ")
        ))
        .with_hint("the state document mixes two apps: fix app.object_id / app.client_id / app.unique_name (or pass --client-id) and re-run; nothing was removed"));
    }
    Ok(Some(app))
}

/// The app's service principal: by the document's id (checked to belong to the app), else by
/// `appId`. Only the found app's: its `appId` must be the app's client id.
async fn find_service_principal(
    ctx: &Ctx,
    g: &Graph<'_>,
    input: &Input,
    app: &Application,
) -> Result<Option<ServicePrincipal>> {
    let what = "reading the app's service principal";
    let client = app.app_id.to_ascii_lowercase();
    let sp = match &input.sp_id {
        Some(id) => {
            input
                .read_named(ctx, what, || g.service_principal(id))
                .await
        }
        None => {
            input
                .read_named(ctx, what, || g.service_principal_by_app_id(&client))
                .await
        }
    }
    .map_err(explain_graph)?;
    if let Some(s) = &sp {
        if input.was_removed("service_principal", &s.id) {
            still_replicating(ctx, &format!("service principal {}", s.id));
            return Ok(None);
        }
    }
    match &sp {
        None => {
            ctx.say(&match &input.sp_id {
                Some(id) => format!("no service principal {id} in this tenant: already deleted"),
                None => format!(
                    "no service principal for client id {client} in this tenant: already deleted"
                ),
            });
            Ok(None)
        }
        Some(s) if !s.app_id.eq_ignore_ascii_case(&client) => Err(Error::refused(format!(
            "service principal {} belongs to client id {}, not to the app's {client}",
            s.id, s.app_id
        ))
        .with_hint("the state document mixes two apps: fix app.service_principal_id and re-run; nothing was removed")),
        Some(_) => Ok(sp),
    }
}

/// Our HRD policy: exactly set-hrd-policy's definition, one of our names, not an organization
/// default. Assigned to our service principal, or (after an interrupted teardown) known by the
/// document's id. Unassigned from ours; deleted only when nobody else uses it.
async fn plan_hrd_policy(
    ctx: &Ctx,
    g: &Graph<'_>,
    input: &Input,
    sp: Option<&ServicePrincipal>,
    steps: &mut Vec<Step>,
) -> Result<()> {
    let mut candidates: Vec<(HrdPolicy, bool)> = Vec::new();
    if let Some(sp) = sp {
        for p in g.hrd_policies_of(&sp.id).await.map_err(explain_graph)? {
            candidates.push((p, true));
        }
    }
    if let Some(id) = &input.policy_id {
        if !candidates
            .iter()
            .any(|(p, _)| p.id.eq_ignore_ascii_case(id))
        {
            let found = input
                .read_named(ctx, "reading the Home Realm Discovery policy", || {
                    g.hrd_policy(id)
                })
                .await
                .map_err(explain_graph)?;
            match found {
                Some(p) => candidates.push((p, false)),
                None => ctx.say(&format!(
                    "Home Realm Discovery policy {id} no longer exists: already deleted"
                )),
            }
        }
    }
    for (policy, assigned_to_ours) in candidates {
        if input.was_removed("hrd_policy", &policy.id) {
            still_replicating(
                ctx,
                &format!("Home Realm Discovery policy {}", policy_label(&policy)),
            );
            continue;
        }
        if !is_ours(&policy, input) {
            ctx.say(&format!(
                "left Home Realm Discovery policy {} alone: its name or definition is not set-hrd-policy's (it goes from the service principal when that is deleted)",
                policy_label(&policy)
            ));
            continue;
        }
        let users = g
            .hrd_policy_applies_to(&policy.id)
            .await
            .map_err(explain_graph)?;
        let others = users
            .iter()
            .filter(|u| sp.is_none_or(|s| !u.eq_ignore_ascii_case(&s.id)))
            .count();
        match (assigned_to_ours, sp) {
            (true, Some(sp)) => steps.push(Step::UnassignPolicy {
                sp_id: sp.id.clone(),
                policy: policy.clone(),
                kept_for: others,
            }),
            _ if others > 0 => ctx.say(&format!(
                "kept Home Realm Discovery policy {}: {others} other service principal(s) use it",
                policy_label(&policy)
            )),
            _ => {}
        }
        if others == 0 {
            steps.push(Step::DeletePolicy(policy));
        }
    }
    Ok(())
}

fn is_ours(p: &HrdPolicy, input: &Input) -> bool {
    p.has_exactly_our_definition()
        && p.is_organization_default != Some(true)
        && p.display_name
            .as_deref()
            .is_some_and(|n| input.policy_names.iter().any(|o| o == n.trim()))
}

/// The application user(s) for the client id (or the document's user id), the Marketo User
/// lookup, the roles, the disable.
async fn plan_dataverse(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    input: &Input,
    client_id: Option<&str>,
    steps: &mut Vec<Step>,
) -> Result<()> {
    // Only the application user bound to this app's client id (`applicationid`): never a
    // person, never another app's user, whatever `dynamics.application_user_id` says.
    let users: Vec<SystemUser> = match client_id {
        Some(c) => dv.application_users(c).await?,
        None => Vec::new(),
    };
    match (client_id, &input.user_id) {
        (_, Some(id)) if !users.iter().any(|u| u.systemuserid.eq_ignore_ascii_case(id)) => {
            ctx.say(&format!(
                "user {id} (dynamics.application_user_id) is not touched: it is not the application user of {}",
                client_id.map_or("a known app".to_string(), |c| format!("client id {c}"))
            ))
        }
        (Some(c), _) if users.is_empty() => ctx.say(&format!(
            "no application user for client id {c} in {}",
            dv.org()
        )),
        _ => {}
    }
    let ours: Vec<String> = users
        .iter()
        .map(|u| u.systemuserid.to_ascii_lowercase())
        .collect();

    // configure-marketo ran after assign-role: its lookup is undone first.
    match &input.config {
        Some(config) => plan_marketo_user(ctx, dv, config, &ours, steps).await?,
        None if !ours.is_empty() => {
            if let Some(config) = discover_config(ctx, dv).await? {
                plan_marketo_user(ctx, dv, &config, &ours, steps).await?;
            }
        }
        None => {}
    }

    for user in &users {
        let label = user_label(user);
        let held = match &user.systemuserroles_association {
            Some(r) => r.clone(),
            None => dv.user_roles(&user.systemuserid).await?,
        };
        let mut removing = 0;
        for role in held {
            let by_id = input.role_ids.contains(&role.roleid.to_ascii_lowercase());
            let by_name = role
                .name
                .as_deref()
                .is_some_and(|n| input.role_names.iter().any(|w| w.eq_ignore_ascii_case(n)));
            if by_id || by_name {
                removing += 1;
                steps.push(Step::RemoveRole {
                    user_id: user.systemuserid.clone(),
                    name: role.name.clone().unwrap_or_default(),
                    role_id: role.roleid.clone(),
                });
            }
        }
        if removing == 0 {
            ctx.say(&format!(
                "application user {label} holds none of the roles {}",
                input.role_names.join(", ")
            ));
        }
        if user.is_disabled() {
            ctx.say(&format!(
                "application user {label} is already disabled (Dataverse keeps users for audit)"
            ));
        } else {
            steps.push(Step::DisableUser {
                user_id: user.systemuserid.clone(),
                label,
            });
        }
    }
    Ok(())
}

/// Where "Marketo User" is, when the document does not say (configure-marketo's output was lost,
/// e.g. a pipeline that failed after it): discovered as configure-marketo does, with the
/// default names (`s2s_dataverse::marketo_config`). Reads only. When it cannot be found — no
/// Marketo solution, other names — the user is told where to look, and the teardown goes on.
async fn discover_config(ctx: &Ctx, dv: &Dataverse<'_>) -> Result<Option<ConfigNames>> {
    let names = marketo_config::Names::default();
    let found = match marketo_config::discover(dv, &names).await {
        Ok(target) => marketo_config::find_record(dv, &target, &names.record_name)
            .await
            .map(|(record_id, _)| (target, record_id)),
        Err(e) => Err(e),
    };
    match found {
        Ok((target, record_id)) => {
            ctx.say(&format!(
                "the document has no marketo_config.* names; found the Marketo configuration record {record_id} \
                 (entity {}, lookup {})",
                target.entity, target.lookup
            ));
            Ok(Some(ConfigNames {
                entity_set: target.entity_set,
                record_id,
                lookup: target.lookup,
                nav_property: target.nav_property,
            }))
        }
        // Out of time or signed out: those end the run as everywhere else.
        Err(e) if matches!(e.kind, Kind::Timeout | Kind::Auth) => Err(e),
        Err(e) => {
            ctx.warn(&format!(
                "the document has no marketo_config.* names and the Marketo configuration was not found ({e}), so \
                 \"Marketo User\" is not checked: if it points at this application user, clear it in Dynamics \
                 (Settings > Marketo Config > Default)"
            ));
            Ok(None)
        }
    }
}

/// Empties "Marketo User" only when it points at one of our users.
async fn plan_marketo_user(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    config: &ConfigNames,
    ours: &[String],
    steps: &mut Vec<Step>,
) -> Result<()> {
    let column = format!("_{}_value", config.lookup);
    let row = dv
        .record_if_named(&config.entity_set, &config.record_id, &column)
        .await?;
    let Some(row) = row else {
        ctx.warn(&format!(
            "the Marketo configuration record {} ({}, column {column}) cannot be read: \"Marketo User\" is not checked; \
             if it points at this application user, clear it in Dynamics (Settings > Marketo Config > Default)",
            config.record_id, config.entity_set
        ));
        return Ok(());
    };
    match row.get(&column).and_then(Value::as_str) {
        None => ctx.say(&format!(
            "\"Marketo User\" of the Marketo configuration record ({}) is empty",
            config.record_id
        )),
        Some(current) if ours.contains(&current.to_ascii_lowercase()) => {
            steps.push(Step::ClearMarketoUser {
                config: config.clone(),
                user_id: current.to_ascii_lowercase(),
            })
        }
        Some(other) => ctx.say(&format!(
            "left \"Marketo User\" of the Marketo configuration record ({}) alone: it points at user {other}, not at this app's application user",
            config.record_id
        )),
    }
    Ok(())
}

/// With `--remove-sync-filter`: each entity's Boolean `new_synctomkto`, then one publish.
async fn plan_sync_filter(
    ctx: &Ctx,
    dv: &Dataverse<'_>,
    input: &Input,
    steps: &mut Vec<Step>,
) -> Result<()> {
    let mut doomed = Vec::new();
    for entity in &input.sync_entities {
        match dv.attribute(entity, SYNC_FILTER_FIELD).await? {
            None => ctx.say(&format!(
                "{entity} has no sync-filter column {SYNC_FILTER_FIELD}: already deleted"
            )),
            Some(a) if !a.is_boolean() => ctx.say(&format!(
                "left {SYNC_FILTER_FIELD} on {entity} alone: it is a {} column, not add-sync-filter's Two Options",
                a.type_name()
            )),
            Some(a) => match a.metadata_id {
                Some(id) => {
                    doomed.push(entity.clone());
                    steps.push(Step::DeleteColumn {
                        entity: entity.clone(),
                        metadata_id: id,
                    });
                }
                None => {
                    return Err(Error::internal(format!(
                        "Dataverse answered the column {SYNC_FILTER_FIELD} on {entity} without its MetadataId"
                    )));
                }
            },
        }
    }
    if !doomed.is_empty() {
        ctx.warn(&format!(
            "--remove-sync-filter deletes {SYNC_FILTER_FIELD} on {} with every record's value: which records Marketo skips is lost for good",
            doomed.join(", ")
        ));
        steps.push(Step::PublishEntities(doomed));
    }
    Ok(())
}

fn keep_sync_filter(ctx: &Ctx, input: &Input) {
    if !input.sync_filter_in_doc {
        return;
    }
    ctx.say(&format!(
        "kept the sync-filter column {SYNC_FILTER_FIELD} on {}: it holds each record's sync choice (--remove-sync-filter deletes it)",
        input.sync_entities.join(", ")
    ));
}

fn plan_secret_file(
    ctx: &Ctx,
    input: &Input,
    client_id: Option<&str>,
    app: Option<&Application>,
    steps: &mut Vec<Step>,
) {
    let default_name = client_id.map(|c| format!("marketo-s2s-{c}.secret"));
    let (path, named) = match (&input.secret_file, &default_name) {
        (Some(p), _) => (p.clone(), true),
        (None, Some(n)) => (ctx.default_dir().join(n), false),
        (None, None) => return,
    };
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(_) if named => {
            ctx.say(&format!(
                "the secret file {} is already gone",
                path.display()
            ));
            return;
        }
        Err(_) => return,
    };
    let keep = |why: &str| {
        ctx.warn(&format!(
            "{} is not deleted: {why}; delete it yourself if it holds this app's secret",
            path.display()
        ));
    };
    if !looks_like_a_secret_file(&path, &meta) {
        return keep(&format!(
            "it does not look like a file make-secret wrote (a regular file of mode 0600 and at most {MAX_SECRET_FILE_BYTES} bytes)"
        ));
    }
    let value = match s2s_core::fsutil::read_secret(&path) {
        Ok(Some(v)) if is_secret_shaped(v.expose_secret()) => v,
        Ok(_) => {
            return keep(
                "it does not hold a client secret (one line of 16 to 256 printable characters)",
            );
        }
        Err(e) => return keep(&format!("it cannot be read ({e})")),
    };
    // Ours: make-secret's name for this app, or the secret of a credential of this app (Graph
    // shows the first three characters of each as its hint, graph.md §4.1).
    let by_name = default_name.as_deref().is_some_and(|n| {
        path.file_name()
            .is_some_and(|f| f.to_string_lossy().eq_ignore_ascii_case(n))
    });
    let by_hint = app.is_some_and(|a| {
        a.password_credentials.iter().any(|c| {
            c.hint
                .as_deref()
                .is_some_and(|h| !h.is_empty() && value.expose_secret().starts_with(h))
        })
    });
    if by_name || by_hint {
        steps.push(Step::DeleteSecretFile(path));
    } else {
        keep("neither its name nor its content ties it to this app")
    }
}

/// One line of printable ASCII without spaces, as Entra's client secrets are (40 characters).
fn is_secret_shaped(v: &str) -> bool {
    (16..=256).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())
}

/// make-secret's files are a few dozen bytes.
const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// Only what make-secret writes is deleted — a regular file (not a link), mode 0600, small —
/// so a document naming another file (a typo, or a hostile document) cannot make teardown
/// delete it.
fn looks_like_a_secret_file(path: &Path, m: &std::fs::Metadata) -> bool {
    if !m.is_file() || m.len() > MAX_SECRET_FILE_BYTES {
        return false;
    }
    // Mode 0600 on Unix, the owner-only DACL on Windows.
    s2s_core::fsutil::check_private(path).is_ok()
}

/// Shows the plan and asks on the terminal; anything but "yes" stops with no write.
fn confirm(ctx: &Ctx, steps: &[Step]) -> Result<()> {
    for s in steps {
        ctx.say(&s.line(Tense::Plan));
    }
    let question = format!("remove these {} object(s)?", steps.len());
    if s2s_core::confirm::confirm(ctx.tool(), &question, false, false)? {
        Ok(())
    } else {
        Err(Error::usage("not confirmed: nothing was removed")
            .with_hint("re-run and answer yes, or pass --yes"))
    }
}

/// Sends one removal; `Ok(true)` when it was done (not planned), including "was already gone".
async fn execute(
    ctx: &Ctx,
    g: &Graph<'_>,
    dv: Option<&Dataverse<'_>>,
    step: &Step,
) -> Result<bool> {
    let resume = "re-run teardown: what is gone stays gone, and it continues from there";
    let need_dv =
        || dv.ok_or_else(|| Error::internal("a Dataverse step was planned without an org"));
    let r = match step {
        Step::DeleteColumn {
            entity,
            metadata_id,
        } => need_dv()?
            .delete_attribute(entity, metadata_id)
            .await
            .map(|w| !w.is_planned()),
        Step::PublishEntities(e) => need_dv()?
            .publish_entities(e)
            .await
            .map(|w| !w.is_planned()),
        Step::ClearMarketoUser { config, .. } => need_dv()?
            .clear_lookup(&config.entity_set, &config.record_id, &config.nav_property)
            .await
            .map(|w| !w.is_planned()),
        Step::RemoveRole {
            user_id, role_id, ..
        } => need_dv()?
            .disassociate_role(user_id, role_id)
            .await
            .map(|w| !w.is_planned()),
        Step::DisableUser { user_id, .. } => need_dv()?
            .disable_user(user_id)
            .await
            .map(|w| matches!(w, Written::Done(()))),
        Step::UnassignPolicy { sp_id, policy, .. } => g
            .unassign_hrd_policy(sp_id, &policy.id)
            .await
            .map_err(explain_graph),
        Step::DeletePolicy(p) => g.delete_hrd_policy(&p.id).await.map_err(explain_graph),
        Step::DeleteGrant(gr) => g.delete_grant(&gr.id).await.map_err(explain_graph),
        Step::DeleteServicePrincipal(sp) => g
            .delete_service_principal(&sp.id)
            .await
            .map_err(explain_graph),
        Step::DeleteApplication { app, .. } => {
            g.delete_application(&app.id).await.map_err(explain_graph)
        }
        Step::DeleteSecretFile(path) => delete_secret_file(ctx, path),
        Step::RemovePassword {
            app_object_id,
            key_id,
            ..
        } => g
            .remove_password(app_object_id, key_id)
            .await
            .map_err(explain_graph),
    };
    r.map_err(|e| {
        let (verb, _, object, _) = step.words();
        let e = e.context(format!("trying to {verb} {object}"));
        if e.hint.is_none() {
            e.with_hint(resume)
        } else {
            e
        }
    })
}

fn delete_secret_file(ctx: &Ctx, path: &Path) -> Result<bool> {
    if ctx.dry_run() {
        return Ok(false);
    }
    match std::fs::remove_file(path) {
        Ok(()) => {
            ctx.http.count_local_write();
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::internal(format!(
            "cannot delete {}: {e}",
            path.display()
        ))),
    }
}

/// The document after a removal: the keys of what is gone go, and `teardown.removed` says what.
fn record(doc: &mut StateDoc, step: &Step, client_id: Option<&str>) {
    let (kind, id, name): (&str, String, Option<String>) = match step {
        Step::DeleteColumn { entity, .. } => {
            let left: Vec<Value> = doc
                .get("sync_filter.entities")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter(|e| e["entity"].as_str() != Some(entity.as_str()))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if left.is_empty() {
                doc.remove("sync_filter");
            } else {
                doc.set("sync_filter.entities", Value::Array(left));
            }
            (
                "sync_filter_column",
                format!("{entity}.{SYNC_FILTER_FIELD}"),
                None,
            )
        }
        Step::PublishEntities(_) => return,
        Step::ClearMarketoUser { config, .. } => {
            doc.remove("marketo_config.sync_user_id");
            ("marketo_user_lookup", config.record_id.clone(), None)
        }
        Step::RemoveRole { role_id, name, .. } => {
            let left: Vec<Value> = doc
                .get("dynamics.roles")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter(|r| {
                            !r["id"]
                                .as_str()
                                .is_some_and(|i| i.eq_ignore_ascii_case(role_id))
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if left.is_empty() {
                doc.remove("dynamics.roles");
            } else {
                doc.set("dynamics.roles", Value::Array(left));
            }
            ("role_assignment", role_id.clone(), Some(name.clone()))
        }
        Step::DisableUser { user_id, .. } => {
            doc.set("dynamics.application_user_disabled", true);
            ("application_user_disabled", user_id.clone(), None)
        }
        Step::UnassignPolicy {
            policy, kept_for, ..
        } => {
            if *kept_for > 0 {
                doc.set("hrd_policy.status", "unassigned");
                doc.set("hrd_policy.policy_id", policy.id.as_str());
            }
            (
                "hrd_policy_assignment",
                policy.id.clone(),
                policy.display_name.clone(),
            )
        }
        Step::DeletePolicy(p) => {
            doc.remove("hrd_policy");
            ("hrd_policy", p.id.clone(), p.display_name.clone())
        }
        Step::DeleteGrant(g) => {
            doc.remove("consent");
            ("oauth2_permission_grant", g.id.clone(), g.scope.clone())
        }
        Step::DeleteServicePrincipal(sp) => {
            doc.remove("app.service_principal_id");
            ("service_principal", sp.id.clone(), sp.display_name.clone())
        }
        Step::DeleteApplication { app, restore } => {
            doc.remove("app.object_id");
            doc.remove("app.client_id");
            // The credential went with the app; only the local file may be left.
            for k in ["key_id", "hint", "expires_at", "value"] {
                doc.remove(&format!("secret.{k}"));
            }
            doc.set("teardown.client_id", app.app_id.as_str());
            doc.set("teardown.application_object_id", app.id.as_str());
            doc.set(
                "teardown.restore_command",
                format!("az rest --method POST --url {restore}"),
            );
            ("application", app.id.clone(), app.display_name.clone())
        }
        Step::DeleteSecretFile(p) => {
            doc.remove("secret");
            ("secret_file", p.display().to_string(), None)
        }
        Step::RemovePassword { key_id, .. } => {
            for k in ["key_id", "previous_key_id"] {
                if doc
                    .get_str(&format!("secret.{k}"))
                    .ok()
                    .flatten()
                    .is_some_and(|v| v.eq_ignore_ascii_case(key_id))
                {
                    doc.remove(&format!("secret.{k}"));
                }
            }
            ("password_credential", key_id.clone(), None)
        }
    };
    if let Some(c) = client_id {
        doc.set("teardown.client_id", c);
    }
    let mut removed = doc
        .get("teardown.removed")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    removed.push(json!({"kind": kind, "id": id, "name": name, "at": s2s_core::run::now_rfc3339()}));
    doc.set("teardown.removed", Value::Array(removed));
}

fn user_label(u: &SystemUser) -> String {
    let name = match (u.fullname.as_deref(), u.internalemailaddress.as_deref()) {
        (Some(f), Some(m)) if !m.is_empty() => format!("\"{f}\" <{m}>"),
        (Some(f), _) => format!("\"{f}\""),
        (None, Some(m)) => format!("<{m}>"),
        (None, None) => String::from("(unnamed)"),
    };
    format!("{name} (systemuserid {})", u.systemuserid)
}

fn policy_label(p: &HrdPolicy) -> String {
    format!("\"{}\" ({})", p.display_name.as_deref().unwrap_or(""), p.id)
}

/// A Graph 403 names the roles teardown needs (README, "Roles and permissions").
fn explain_graph(e: Error) -> Error {
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
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

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

    #[test]
    fn the_document_keys_of_removed_objects_go() {
        let mut doc = StateDoc::parse(
            r#"{"app":{"client_id":"c","object_id":"o","unique_name":"u","service_principal_id":"s"},
                "secret":{"key_id":"k","hint":"h","file":"f"},"consent":{"grant_id":"g"}}"#,
            "t",
        )
        .unwrap();
        let app = Application {
            id: "o".into(),
            app_id: "c".into(),
            display_name: Some("M".into()),
            ..Default::default()
        };
        record(
            &mut doc,
            &Step::DeleteApplication {
                app,
                restore: "https://graph/v1.0/directory/deletedItems/o/restore".into(),
            },
            Some("c"),
        );
        let v = doc.as_value();
        assert_eq!(
            v["app"],
            json!({"unique_name": "u", "service_principal_id": "s"})
        );
        assert_eq!(v["secret"], json!({"file": "f"}));
        assert_eq!(v["teardown"]["client_id"], "c");
        assert_eq!(
            v["teardown"]["restore_command"],
            "az rest --method POST --url https://graph/v1.0/directory/deletedItems/o/restore"
        );
        assert_eq!(v["teardown"]["removed"][0]["kind"], "application");
    }

    #[test]
    fn only_our_policy_is_ours() {
        let input = Input {
            policy_names: vec!["M - AllowCloudPasswordValidation".into()],
            ..Default::default()
        };
        let p = |name: &str, def: &str| HrdPolicy {
            id: "p".into(),
            display_name: Some(name.into()),
            definition: vec![def.into()],
            ..Default::default()
        };
        let ours = r#"{"HomeRealmDiscoveryPolicy":{"AllowCloudPasswordValidation":true}}"#;
        assert!(is_ours(
            &p("M - AllowCloudPasswordValidation", ours),
            &input
        ));
        assert!(!is_ours(&p("Contoso HRD", ours), &input));
        assert!(!is_ours(
            &p(
                "M - AllowCloudPasswordValidation",
                r#"{"HomeRealmDiscoveryPolicy":{"AllowCloudPasswordValidation":true,"AccelerateToFederatedDomain":true}}"#
            ),
            &input
        ));
    }
}
