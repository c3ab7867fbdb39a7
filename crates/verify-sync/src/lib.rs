//! `verify-sync` — the check before Marketo's step 3: the Dynamics side of Marketo's "Validate
//! Microsoft Dynamics Sync" plus the Entra ID side, and the live test Marketo itself will do.
//!
//! Checks (each with `id`, `name`, `ok`, `detail` and, when failing, `fix` — what to run):
//! `app` (exists, single-tenant), `service-principal`, `consent` (AllPrincipals
//! `user_impersonation`), `secret` (the document's key id exists on the app, its file holds the
//! recorded secret (`secret.sha256`) and is private to its owner, it outlives `--warn-days`),
//! `hrd-policy` (assigned when a domain is federated; `skip` when none is, or when this sign-in
//! cannot read it), `org-access` (the org answers WhoAmI for the admin), `marketo-solution`
//! (installed; older than 4.0.0.14 is a warning: every syncing user then needs the role),
//! `application-user` (exists, enabled), `sync-role` (holds Marketo Sync User), `role-holders`
//! (from 4.0.0.14 on, a warning naming every other user who holds Marketo Sync User; `skip` for
//! older solutions),
//! `marketo-config` (the Default record's Marketo User is that user), `live-login` (the app's own
//! secret obtains a token for the org and WhoAmI answers as the application user; `skip` for a
//! secret recorded as kept outside a file, `secret.storage: "external"`),
//! `sync-filter:<entity>` when the document asked for the filter field, and `published`
//! (customizations were published after the last Dataverse change the document's `steps`
//! record, and no publish is left `pending` — read from the document, the rule
//! `publish-customizations --if-changed` follows).
//!
//! A check is `ok`, `warn` (it holds but needs attention), `skip` (it does not apply, or this
//! sign-in cannot read it) or `FAIL` (with its fix, a command that carries this run's `--state`
//! and target flags); only `FAIL` fails the run.
//!
//! Modes: `--fleet FILE...` checks many documents (`fleet.rs`: status rows, `--format
//! jsonl|table|nagios|prometheus`, `--jobs`, 60 s per connection unless `--timeout`);
//! `--offline` prints a document's status with no network (`status.rs`).
//!
//! Each check is one function in `checks.rs` (`checks/roles.rs` for the solution and its role); the reads several checks share (the app, the
//! service principals by appId, the admin's WhoAmI, the application user) are sent once, and the
//! checks run concurrently, printed in the order above. Right after a setup step, `--settle`
//! re-runs only the checks that fail (with the shared reads they need) until they pass or the
//! window ends.
//!
//! - Keys: besides the keys `verify-sync --help` lists (rendered from `READS`, `WRITES` and
//!   core's exit-code table), the `published` check reads `steps.*`, `publish.status` and
//!   `publish.last_published_at` leniently (a value it cannot read is a finding, not bad input).
//!   `dynamics.org_name` is written once, from `RetrieveCurrentOrganization`;
//!   `verify.marketo_step3` holds what Marketo's step 3 asks for (`dynamics_url`, `tenant_id`,
//!   `client_id`, `username`, `secret_file`), never the secret. The step-3 block is printed on
//!   stderr once every check passes, even with `-q`.
//! - Read-only: it never sends a write (the only POST is the token request of the live test).
//! - Exit codes beyond the single run's: `--fleet` 0 when every connection is ok or removed,
//!   else 6; `--format nagios` 0/1/2/3 (OK, WARNING, CRITICAL, UNKNOWN); `--format prometheus`
//!   0 once written. `--offline`: 0 once printed, 2 for a document that cannot be read.
//!
//! Example: `verify-sync --state marketo-s2s.state.json`,
//! `verify-sync --fleet */*.state.json --format nagios`, `verify-sync --offline --state s.json`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use s2s_core::checklist;
use s2s_core::keys;
use s2s_core::run::Outcome;
use s2s_core::{AnyKey, CommonArgs, Ctx, Error, Kind, Result, Tool};

use checks::Checklist;

/// Check that the Marketo S2S setup works end to end, read-only, before Marketo's step 3.
#[derive(Debug, Parser)]
#[command(
    name = "verify-sync",
    version,
    after_help = s2s_core::help::after_help::<Cli>()
)]
pub struct Cli {
    /// A secret that expires within this many days fails the check
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub warn_days: u32,

    /// File holding the app's client secret [state: secret.file]
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,

    /// Re-run failing checks for up to this long before they count, to wait out replication
    /// (e.g. 0s, 90s) [default: 60s when a step changed something in the last 10 minutes, else 0s]
    #[arg(long, value_name = "DURATION", value_parser = s2s_core::cli::parse_duration_or_zero)]
    pub settle: Option<Duration>,

    /// Security role the application user must hold (repeatable) [default: Marketo Sync User]
    #[arg(long = "role", value_name = "NAME")]
    pub roles: Vec<String>,

    /// Check many connections: one state file per customer, each with its own tenant, org and
    /// sign_in, each within its own --timeout (default 60s here); one row per file as it
    /// finishes (see --format), no file written (a FIFO, pipe or device is not read: its row
    /// says "not a regular file")
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["state", "secret_file", "dry_run"])]
    pub fleet: Vec<PathBuf>,

    /// With --fleet: how many connections are checked at once
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,

    /// With --fleet: jsonl (a row per connection on stdout, the table on stderr when something
    /// needs attention), table (on stdout), nagios (one line; exit 0 ok, 1 warning, 2
    /// critical, 3 unknown) or prometheus (a node-exporter textfile on stdout)
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = FleetFormat::Jsonl, requires = "fleet")]
    pub format: FleetFormat,

    /// Show the connection's status from the document alone, sending nothing: the target,
    /// what each step did and when, the secret, the last verify result and its age, whether a
    /// publish is owed, and the Marketo step-3 values
    #[arg(long, conflicts_with_all = ["fleet", "dry_run", "settle", "secret_file"])]
    pub offline: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// `--format` of `--fleet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FleetFormat {
    Jsonl,
    Table,
    Nagios,
    Prometheus,
}

impl Tool for Cli {
    const NAME: &'static str = "verify-sync";
    const READ_ONLY: bool = true;
    const READS: &'static [AnyKey] = &[
        keys::TENANT_ID.any(),
        keys::APP_CLIENT_ID.any(),
        keys::APP_OBJECT_ID.any(),
        keys::APP_SERVICE_PRINCIPAL_ID.any(),
        keys::SECRET_KEY_ID.any(),
        keys::SECRET_FILE.any(),
        keys::SECRET_SHA256.any(),
        keys::SECRET_STORAGE.any(),
        keys::DYNAMICS_URL.any(),
        keys::DYNAMICS_USERNAME.any(),
        keys::DYNAMICS_APPLICATION_USER_ID.any(),
        keys::MARKETO_CONFIG_ENTITY_SET.any(),
        keys::MARKETO_CONFIG_RECORD_ID.any(),
        keys::MARKETO_CONFIG_USER_LOOKUP.any(),
        keys::SYNC_FILTER_ENTITIES.any(),
    ];
    const WRITES: &'static [AnyKey] = &[
        keys::DYNAMICS_ORG_NAME.any(),
        keys::VERIFY_OK.any(),
        keys::VERIFY_AT.any(),
        keys::VERIFY_CHECKS.any(),
        keys::VERIFY_MARKETO_STEP3.any(),
    ];
    const EXAMPLES: &'static str = "\
verify-sync --state marketo-s2s.state.json
register-app | grant-consent | make-secret | assign-role | configure-marketo \\
  | publish-customizations --if-changed | verify-sync
verify-sync --fleet customers/*/*.state.json --format nagios
verify-sync --offline --state marketo-s2s.state.json      # no network: where it stands";
    const HELP_NOTES: &'static str = "\
Prints a checklist on stderr; each failing check says what to run to fix it. When every check
passes it prints the values to enter in Marketo step 3 (never the secret itself). The
`published` check fails while a Dataverse change recorded in the document (steps.*) is not
published yet (publish.status, publish.last_published_at).
--fleet rows have a status (ok, warn, crit, unknown, removed); --format nagios exits 0/1/2/3,
--format prometheus exits 0 once written, jsonl and table exit 6 unless all are ok.";
    const EXIT_NOTES: &'static [(u8, &'static str)] = &[
        (0, "every check passed"),
        (6, "the document is still written, with verify.checks"),
    ];
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

pub fn main() -> std::process::ExitCode {
    match s2s_core::run::parse::<Cli>() {
        Ok(cli) if !cli.fleet.is_empty() => fleet::main(cli),
        Ok(cli) if cli.offline => status::main(cli),
        Ok(cli) => s2s_core::run::main_parsed(cli, run),
        Err(code) => code,
    }
}

mod checks;
mod fleet;
mod status;

/// Inputs read from the document before any request (exit 2 on bad input).
struct Inputs {
    client_id: String,
    object_id: Option<String>,
    sp_id: Option<String>,
    key_id: Option<String>,
    secret_file: Option<PathBuf>,
    app_user_id: Option<String>,
    config_set: Option<String>,
    config_record: Option<String>,
    config_lookup: Option<String>,
    filter_entities: Vec<String>,
}

fn read_inputs(ctx: &Ctx, cli: &Cli) -> Result<Inputs> {
    let d = &ctx.doc;
    let client_id = d.get(keys::APP_CLIENT_ID)?.ok_or_else(|| {
        s2s_core::config::missing(
            "the app's client id",
            "register-app first",
            keys::APP_CLIENT_ID.path(),
        )
    })?;
    ctx.config().tenant()?;
    ctx.config().dynamics()?;
    // Printed in the step-3 block: a forged value is bad input, refused before any request.
    s2s_dataverse::names::username_from_doc(d)?;
    let mut filter_entities = Vec::new();
    if let Some(list) = d.get(keys::SYNC_FILTER_ENTITIES)? {
        for e in list {
            match e
                .get("entity")
                .and_then(Value::as_str)
                .or_else(|| e.as_str())
            {
                Some(name) => filter_entities.push(name.to_string()),
                None => {
                    return Err(Error::usage(format!(
                        "state document key {} must list entity names",
                        keys::SYNC_FILTER_ENTITIES
                    )));
                }
            }
        }
    }
    Ok(Inputs {
        client_id,
        object_id: d.get(keys::APP_OBJECT_ID)?,
        sp_id: d.get(keys::APP_SERVICE_PRINCIPAL_ID)?,
        key_id: d.get(keys::SECRET_KEY_ID)?,
        secret_file: secret_file(ctx, cli)?,
        app_user_id: d.get(keys::DYNAMICS_APPLICATION_USER_ID)?,
        config_set: d.get(keys::MARKETO_CONFIG_ENTITY_SET)?.map(str::to_string),
        config_record: d.get(keys::MARKETO_CONFIG_RECORD_ID)?,
        config_lookup: d.get(keys::MARKETO_CONFIG_USER_LOOKUP)?.map(str::to_string),
        filter_entities,
    })
}

/// The secret file to test: `--secret-file`, or `secret.file` (relative to the `--state` file's
/// folder). Only a regular file is read: a FIFO would block the run past any deadline.
fn secret_file(ctx: &Ctx, cli: &Cli) -> Result<Option<PathBuf>> {
    let (path, what) = match (&cli.secret_file, ctx.doc.get(keys::SECRET_FILE)?) {
        (Some(p), _) => (p.clone(), "--secret-file".to_string()),
        (None, Some(p)) => (
            ctx.resolve_doc_path(Path::new(p)),
            format!("state document key {}", keys::SECRET_FILE),
        ),
        (None, None) => return Ok(None),
    };
    if path
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .any(u8::is_ascii_control)
    {
        return Err(Error::usage(format!(
            "{what} {:?} contains a control character",
            path.to_string_lossy()
        )));
    }
    if let Ok(m) = std::fs::metadata(&path) {
        if !m.is_file() {
            return Err(
                Error::usage(format!("{what} {} is not a regular file", path.display()))
                    .with_hint("point it at the file make-secret wrote"),
            );
        }
    }
    Ok(Some(path))
}

/// A failure to answer is a failed check, except a failed admin sign-in or running out of time:
/// then nothing can be verified and the tool exits 3 or 5.
fn soft<T>(r: Result<T>) -> Result<std::result::Result<T, String>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        // Out of time (5xx or throttling past --timeout, from any service): exit 5, as the
        // README promises, not a failed check.
        Err(e) if e.kind == Kind::Timeout => Err(e),
        // The admin's own sign-in failed: nothing can be verified (exit 3). A 401 from an API
        // is a check's finding.
        Err(e) if e.kind == Kind::Auth && e.service().is_none_or(|s| s.service == "login") => {
            Err(e)
        }
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// The roles the application user must hold: `--role`, or Marketo Sync User.
fn roles_of(cli: &Cli) -> Vec<String> {
    if cli.roles.is_empty() {
        vec!["Marketo Sync User".to_string()]
    } else {
        cli.roles.clone()
    }
}

async fn run(ctx: &mut Ctx, cli: Cli) -> Result<Outcome> {
    let input = read_inputs(ctx, &cli)?;
    let roles = roles_of(&cli);
    let settle = match cli.settle {
        Some(d) => d,
        None if changed_recently(ctx, SETTLE_IF_CHANGED_WITHIN) => DEFAULT_SETTLE,
        None => Duration::ZERO,
    };
    // Right after the setup steps, Entra ID and Dataverse may not show their writes to every
    // reader yet (graph.md §7.4): failing checks are run again, with backoff, for up to
    // --settle before they count. A setup that is really broken fails after the window.
    let start = Instant::now();
    let settle_until = ctx.http.deadline().min(start + settle);
    let mut delay = s2s_core::retry::poll_delay(None, Duration::ZERO);
    let mut list = Checklist::new(ctx, &input, &roles, cli.warn_days)?;
    let checks = loop {
        // Only the checks that have not passed yet run again, with the shared reads they need.
        list.run_unsettled().await?;
        let failing = list.failing();
        if failing == 0 || Instant::now() + delay > settle_until {
            ctx.reporter().clear_progress();
            break list.checks();
        }
        ctx.reporter().progress(
            &format!("{failing} check(s) not passing yet; waiting for replication"),
            start.elapsed(),
        );
        tokio::time::sleep(delay).await;
        delay = s2s_core::retry::poll_delay(Some(delay), start.elapsed());
    };

    remember_org_name(ctx, &checks).await;
    let outcome = checklist::record(
        ctx,
        keys::VERIFY_CHECKLIST,
        &checks,
        "run the fix shown for each failed check, then verify-sync again",
    );
    if outcome != Outcome::Done {
        // The values are recorded for a later look, but not offered for step 3 yet.
        handoff(ctx, &input, false)?;
        return Ok(outcome);
    }
    ctx.say(&format!("all {} checks passed", checks.len()));
    handoff(ctx, &input, true)?;
    Ok(outcome)
}

/// The org's friendly name, kept as `dynamics.org_name` once known (every target line and
/// status names the org in words). Asked once, when the org answered the admin and
/// the document does not have it yet; a failure to tell is not a finding.
async fn remember_org_name(ctx: &mut Ctx, checks: &[checklist::Check]) {
    let org_answered = checks.iter().any(|c| c.id == "org-access" && c.ok());
    if !org_answered || ctx.doc.get_value(keys::DYNAMICS_ORG_NAME.path()).is_some() {
        return;
    }
    let Ok(org) = ctx.config().dynamics().map(s2s_core::urls::base) else {
        return;
    };
    let dv = s2s_dataverse::Dataverse::new(&ctx.http, &org);
    match dv.current_organization().await {
        Ok(detail) => {
            if let Some(name) = detail.friendly_name.filter(|n| !n.trim().is_empty()) {
                ctx.doc.set(keys::DYNAMICS_ORG_NAME, name);
            }
        }
        Err(e) => ctx
            .reporter()
            .trace(1, &format!("the org's friendly name is not known: {e}")),
    }
}

/// How long failing checks are re-run right after a setup step changed something.
const DEFAULT_SETTLE: Duration = Duration::from_secs(60);
/// "Right after": an earlier step recorded a change this recently.
const SETTLE_IF_CHANGED_WITHIN: Duration = Duration::from_secs(10 * 60);

/// True when a step in the document changed something within `window` (its `steps.<tool>.at`).
fn changed_recently(ctx: &Ctx, window: Duration) -> bool {
    let Ok(Some(steps)) = ctx.doc.get(keys::STEPS) else {
        return false;
    };
    let now = OffsetDateTime::now_utc();
    steps.values().any(|s| {
        s["changed"] == Value::Bool(true)
            && s["at"]
                .as_str()
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                .is_some_and(|at| (now - at).whole_seconds() < window.as_secs() as i64)
    })
}

/// The values Marketo's step 3 asks for (reference/dataverse.md §6.3) — never the secret. They
/// go to the document as `verify.marketo_step3` (for scripts and for a run whose stderr is
/// gone) and, once every check passes, to stderr even with `-q`: they are what the user came
/// for. The URL is shown parsed, never as the document's raw text.
fn handoff(ctx: &mut Ctx, input: &Inputs, print: bool) -> Result<()> {
    let dynamics_url = ctx
        .doc
        .get(keys::DYNAMICS_URL)?
        .map(s2s_core::output::url_for_humans);
    // Marketo asks for the tenant *ID*: the document's GUID (register-app resolves a domain to
    // it), not a domain given with --tenant; the flag only when the document has none.
    let tenant = match ctx.doc.get(keys::TENANT_ID)? {
        Some(id) => Some(id.to_string()),
        None => ctx.config().tenant.clone(),
    };
    let username = s2s_dataverse::names::username_from_doc(&ctx.doc)?;
    let secret_file = input.secret_file.as_ref().map(|p| ctx.doc_path_text(p));
    ctx.doc.set(
        keys::VERIFY_MARKETO_STEP3,
        json!({
            "dynamics_url": dynamics_url,
            "tenant_id": tenant,
            "client_id": input.client_id,
            "username": username,
            "secret_file": secret_file,
        }),
    );
    if !print {
        return Ok(());
    }
    let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unknown)".into());
    let shown_file = input
        .secret_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the secret file".into());
    let lines = [
        "Marketo step 3 (Admin > CRM > Microsoft Dynamics > Enter Credentials):".to_string(),
        format!("  Dynamics URL : {}", or_unknown(&dynamics_url)),
        format!("  Tenant ID    : {}", or_unknown(&tenant)),
        format!("  Client ID    : {}", input.client_id),
        format!("  Username     : {}", or_unknown(&username)),
        format!("  Client secret: the content of {shown_file} (shown nowhere else)"),
    ];
    for l in lines {
        ctx.reporter().result(&l);
    }
    Ok(())
}
