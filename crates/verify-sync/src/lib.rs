//! `verify-sync` — the check before Marketo's step 3: the Dynamics side of Marketo's "Validate
//! Microsoft Dynamics Sync" plus the Entra ID side, and the live test Marketo itself will do.
//!
//! Checks (each with `id`, `name`, `ok`, `detail` and, when failing, `fix` — what to run):
//! `app` (exists, single-tenant), `service-principal`, `consent` (AllPrincipals
//! `user_impersonation`), `secret` (the document's key id exists on the app, its file is
//! readable, it outlives `--warn-days`), `hrd-policy` (assigned when a domain is federated),
//! `org-access` (the org answers WhoAmI for the admin), `marketo-solution` (installed, at least
//! 4.0.0.14), `application-user` (exists, enabled), `sync-role` (holds Marketo Sync User),
//! `marketo-config` (the Default record's Marketo User is that user), `live-login` (the app's own
//! secret obtains a token for the org and WhoAmI answers as the application user),
//! `sync-filter:<entity>` when the document asked for the filter field, and `published`
//! (customizations were published after the last Dataverse change the document's `steps`
//! record, and no publish is left `pending` — read from the document, the rule
//! `publish-customizations --if-changed` follows).
//!
//! - Reads: `tenant.id`, `app.client_id`, `app.object_id`, `app.service_principal_id`,
//!   `secret.key_id`, `secret.file`, `dynamics.url`, `dynamics.application_user_id`,
//!   `marketo_config.entity_set`, `marketo_config.record_id`, `marketo_config.user_lookup`,
//!   `sync_filter.entities`, `steps.*`, `publish.status`, `publish.last_published_at`.
//! - Writes: `verify.ok`, `verify.at`, `verify.checks`, `verify.marketo_step3` (`dynamics_url`,
//!   `tenant_id`, `client_id`, `username`, `secret_file`: what Marketo's step 3 asks for, never
//!   the secret), `steps.verify-sync`. The step-3 block is printed on stderr once every check
//!   passes, even with `-q`.
//! - Read-only: it never sends a write (the only POST is the token request of the live test).
//! - Exit codes: 0 all checks pass; 6 at least one failed (the document is still written);
//!   2 bad input; 3 the admin could not sign in; 5 no answer in time.
//!
//! Example: `verify-sync --state marketo-s2s.state.json`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use secrecy::SecretString;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use s2s_core::{CommonArgs, Ctx, Error, Key, Kind, Result, Tool};
use s2s_dataverse::{
    Dataverse, MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE, MARKETO_SOLUTION, compare_versions,
};
use s2s_graph::{DYNAMICS_CRM_APP_ID, Graph, HrdPolicy, ServicePrincipal, USER_IMPERSONATION};

/// Check that the Marketo S2S setup works end to end, read-only, before Marketo's step 3.
#[derive(Debug, Parser)]
#[command(
    name = "verify-sync",
    version,
    after_help = "\
Examples:
  verify-sync --state marketo-s2s.state.json
  register-app | grant-consent | make-secret | assign-role | configure-marketo \\
    | publish-customizations --if-changed | verify-sync

Prints a checklist on stderr; each failing check says what to run to fix it. When every check
passes it prints the values to enter in Marketo step 3 (never the secret itself). The
`published` check fails while a Dataverse change recorded in the document is not published yet.
Exit codes: 0 all checks pass, 6 a check failed, 2 bad input, 3 sign-in failed, 5 timed out."
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

    /// Check many connections: one state file per customer, each with its own tenant and org;
    /// prints a table on stderr and one JSON object per file on stdout, writes no file
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["state", "secret_file", "dry_run"])]
    pub fleet: Vec<PathBuf>,

    /// With --fleet: how many connections are checked at once
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl Tool for Cli {
    const NAME: &'static str = "verify-sync";
    const READ_ONLY: bool = true;
    const READS: &'static [(&'static str, Key)] = &[
        ("tenant.id", Key::Str),
        ("app.client_id", Key::Guid),
        ("app.object_id", Key::Guid),
        ("app.service_principal_id", Key::Guid),
        ("secret.key_id", Key::Guid),
        ("secret.file", Key::Str),
        ("dynamics.url", Key::Url),
        ("dynamics.username", Key::Str),
        ("dynamics.application_user_id", Key::Guid),
        ("marketo_config.entity_set", Key::Str),
        ("marketo_config.record_id", Key::Guid),
        ("marketo_config.user_lookup", Key::Str),
        ("sync_filter.entities", Key::Array),
    ];
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

pub fn main() -> std::process::ExitCode {
    match s2s_core::run::parse::<Cli>() {
        Ok(cli) if !cli.fleet.is_empty() => fleet::main(cli),
        Ok(cli) => s2s_core::run::main_parsed(cli, run),
        Err(code) => code,
    }
}

mod fleet;

#[derive(Debug, Clone)]
struct Check {
    id: String,
    name: String,
    ok: bool,
    detail: String,
    fix: Option<String>,
}

impl Check {
    fn pass(id: &str, name: &str, detail: impl Into<String>) -> Check {
        Check {
            id: id.into(),
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }
    fn fail(id: &str, name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            id: id.into(),
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    fn to_json(&self) -> Value {
        let mut v = json!({"id": self.id, "name": self.name, "ok": self.ok, "detail": self.detail});
        if let Some(f) = &self.fix {
            v["fix"] = json!(f);
        }
        v
    }
}

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
    let client_id = d.get_guid("app.client_id")?.ok_or_else(|| {
        s2s_core::config::missing("the app's client id", "register-app first", "app.client_id")
    })?;
    ctx.config().tenant()?;
    ctx.config().dynamics()?;
    // Printed in the step-3 block: a forged value is bad input, refused before any request.
    s2s_dataverse::names::username_from_doc(d)?;
    let mut filter_entities = Vec::new();
    if let Some(list) = d.get_array("sync_filter.entities")? {
        for e in list {
            match e
                .get("entity")
                .and_then(Value::as_str)
                .or_else(|| e.as_str())
            {
                Some(name) => filter_entities.push(name.to_string()),
                None => {
                    return Err(Error::usage(
                        "state document key sync_filter.entities must list entity names",
                    ));
                }
            }
        }
    }
    Ok(Inputs {
        client_id,
        object_id: d.get_guid("app.object_id")?,
        sp_id: d.get_guid("app.service_principal_id")?,
        key_id: d.get_guid("secret.key_id")?,
        secret_file: secret_file(ctx, cli)?,
        app_user_id: d.get_guid("dynamics.application_user_id")?,
        config_set: d.get_str("marketo_config.entity_set")?.map(str::to_string),
        config_record: d.get_guid("marketo_config.record_id")?,
        config_lookup: d.get_str("marketo_config.user_lookup")?.map(str::to_string),
        filter_entities,
    })
}

/// The secret file to test: `--secret-file`, or `secret.file` (relative to the `--state` file's
/// folder). Only a regular file is read: a FIFO would block the run past any deadline.
fn secret_file(ctx: &Ctx, cli: &Cli) -> Result<Option<PathBuf>> {
    let (path, what) = match (&cli.secret_file, ctx.doc.get_str("secret.file")?) {
        (Some(p), _) => (p.clone(), "--secret-file"),
        (None, Some(p)) => (
            ctx.resolve_doc_path(Path::new(p)),
            "state document key secret.file",
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

/// "Publish All Customizations" ran after the last Dataverse change the document records
/// (core's `owed` module, the rule publish-customizations --if-changed follows). Read from the
/// document alone: Dataverse keeps no "unpublished changes" flag to ask.
fn published_check(doc: &s2s_core::StateDoc) -> Check {
    let id = "published";
    let name = "customizations published after the last Dataverse change";
    if doc.get_str("publish.status").ok().flatten() == Some("pending") {
        return Check::fail(
            id,
            name,
            "an earlier publish did not finish",
            "publish-customizations --if-changed",
        );
    }
    match s2s_core::owed::changes_since_publish(doc, false) {
        Ok(changed) if changed.is_empty() => Check::pass(
            id,
            name,
            match doc.get_str("publish.last_published_at").ok().flatten() {
                Some(at) => format!("last published at {}", s2s_core::output::sanitize(at)),
                None => "no Dataverse change recorded in the document".to_string(),
            },
        ),
        Ok(changed) => Check::fail(
            id,
            name,
            format!(
                "{} changed Dataverse after the last publish",
                changed.join(", ")
            ),
            "publish-customizations --if-changed",
        ),
        Err(e) => Check::fail(id, name, e.to_string(), "publish-customizations"),
    }
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
        Err(e)
            if e.kind == Kind::Auth && e.service.as_ref().is_none_or(|s| s.service == "login") =>
        {
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

async fn run(ctx: &mut Ctx, cli: Cli) -> Result<()> {
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
    let checks = loop {
        let checks = all_checks(ctx, &input, &roles, cli.warn_days).await?;
        let failing = checks.iter().filter(|c| !c.ok).count();
        if failing == 0 || Instant::now() + delay > settle_until {
            ctx.reporter().clear_progress();
            break checks;
        }
        ctx.reporter().progress(
            &format!("{failing} check(s) not passing yet; waiting for replication"),
            start.elapsed(),
        );
        tokio::time::sleep(delay).await;
        delay = s2s_core::retry::poll_delay(Some(delay), start.elapsed());
    };

    let failed: Vec<&Check> = checks.iter().filter(|c| !c.ok).collect();
    for c in &checks {
        let mark = if c.ok { "ok  " } else { "FAIL" };
        ctx.say(&format!("[{mark}] {}: {}", c.name, c.detail));
        if let Some(f) = &c.fix {
            ctx.say(&format!("       fix: {f}"));
        }
    }
    ctx.doc.set("verify.ok", failed.is_empty());
    ctx.doc.set("verify.at", s2s_core::run::now_rfc3339());
    ctx.doc.set(
        "verify.checks",
        Value::Array(checks.iter().map(Check::to_json).collect()),
    );
    if !failed.is_empty() {
        // The values are recorded for a later look, but not offered for step 3 yet.
        handoff(ctx, &input, false)?;
        let names: Vec<&str> = failed.iter().map(|c| c.name.as_str()).collect();
        return Err(Error::verify_failed(format!(
            "{} of {} checks failed: {}",
            failed.len(),
            checks.len(),
            names.join("; ")
        ))
        .with_hint("run the fix shown for each failed check, then verify-sync again"));
    }
    ctx.say(&format!("all {} checks passed", checks.len()));
    handoff(ctx, &input, true)?;
    Ok(())
}

/// How long failing checks are re-run right after a setup step changed something.
const DEFAULT_SETTLE: Duration = Duration::from_secs(60);
/// "Right after": an earlier step recorded a change this recently.
const SETTLE_IF_CHANGED_WITHIN: Duration = Duration::from_secs(10 * 60);

/// True when a step in the document changed something within `window` (its `steps.<tool>.at`).
fn changed_recently(ctx: &Ctx, window: Duration) -> bool {
    let Ok(Some(steps)) = ctx.doc.get_object("steps") else {
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

async fn all_checks(
    ctx: &Ctx,
    input: &Inputs,
    roles: &[String],
    warn_days: u32,
) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    let graph = Graph::new(&ctx.http);
    entra_checks(&graph, input, warn_days, &mut checks).await?;
    let org = s2s_core::config::base(ctx.config().dynamics()?);
    let dv = Dataverse::new(&ctx.http, &org);
    let app_user = dynamics_checks(&dv, input, roles, &mut checks).await?;
    live_login(ctx, &org, input, app_user.as_deref(), &mut checks).await?;
    checks.push(published_check(&ctx.doc));
    Ok(checks)
}

/// The values Marketo's step 3 asks for (reference/dataverse.md §6.3) — never the secret. They
/// go to the document as `verify.marketo_step3` (for scripts and for a run whose stderr is
/// gone) and, once every check passes, to stderr even with `-q`: they are what the user came
/// for. The URL is shown parsed, never as the document's raw text.
fn handoff(ctx: &mut Ctx, input: &Inputs, print: bool) -> Result<()> {
    let dynamics_url = ctx
        .doc
        .get_str("dynamics.url")?
        .map(s2s_core::output::url_for_humans);
    let tenant = ctx.config().tenant.clone();
    let username = s2s_dataverse::names::username_from_doc(&ctx.doc)?;
    let secret_file = input.secret_file.as_ref().map(|p| ctx.doc_path_text(p));
    ctx.doc.set(
        "verify.marketo_step3",
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

async fn entra_checks(
    graph: &Graph<'_>,
    input: &Inputs,
    warn_days: u32,
    checks: &mut Vec<Check>,
) -> Result<()> {
    // app
    let app = soft(graph.application_by_app_id(&input.client_id).await)?;
    let app = match app {
        Ok(Some(a)) => {
            if a.sign_in_audience.as_deref() == Some("AzureADMyOrg") {
                checks.push(Check::pass(
                    "app",
                    "app exists and is single-tenant",
                    format!("client id {}", a.app_id),
                ));
            } else {
                checks.push(Check::fail(
                    "app",
                    "app exists and is single-tenant",
                    format!(
                        "signInAudience is {:?}",
                        a.sign_in_audience.as_deref().unwrap_or("unset")
                    ),
                    "register-app",
                ));
            }
            Some(a)
        }
        Ok(None) => {
            checks.push(Check::fail(
                "app",
                "app exists and is single-tenant",
                format!("no application with client id {}", input.client_id),
                "register-app",
            ));
            None
        }
        Err(e) => {
            checks.push(Check::fail(
                "app",
                "app exists and is single-tenant",
                e,
                "check the admin's Graph permissions, then verify-sync again",
            ));
            None
        }
    };
    if let (Some(a), Some(o)) = (&app, &input.object_id) {
        if !a.id.eq_ignore_ascii_case(o) {
            checks.push(Check::fail(
                "app",
                "app object id matches the document",
                format!("the document says {o}, Graph says {}", a.id),
                "register-app",
            ));
        }
    }

    // The app's service principal and Dynamics CRM's (the grant's resource), in one read.
    let sps = soft(
        graph
            .service_principals_by_app_ids(&[&input.client_id, DYNAMICS_CRM_APP_ID])
            .await,
    )?;
    let by_app_id = |app_id: &str| -> std::result::Result<Option<ServicePrincipal>, String> {
        match &sps {
            Ok(list) => Ok(list
                .iter()
                .find(|sp| sp.app_id.eq_ignore_ascii_case(app_id))
                .cloned()),
            Err(e) => Err(e.clone()),
        }
    };

    // service principal
    let sp = match by_app_id(&input.client_id) {
        Ok(Some(sp)) => {
            checks.push(Check::pass(
                "service-principal",
                "service principal exists",
                format!("object id {}", sp.id),
            ));
            Some(sp)
        }
        Ok(None) => {
            checks.push(Check::fail(
                "service-principal",
                "service principal exists",
                "the app has no service principal",
                "register-app",
            ));
            None
        }
        Err(e) => {
            checks.push(Check::fail(
                "service-principal",
                "service principal exists",
                e,
                "register-app",
            ));
            None
        }
    };

    // consent
    let consent_name = "admin consent for Dynamics CRM user_impersonation";
    let sp_id = sp
        .as_ref()
        .map(|s| s.id.clone())
        .or_else(|| input.sp_id.clone());
    match (&sp_id, by_app_id(DYNAMICS_CRM_APP_ID)) {
        (Some(sp_id), Ok(Some(crm))) => match soft(graph.grants_for(sp_id, &crm.id).await)? {
            Ok(grants)
                if grants
                    .iter()
                    .any(|g| g.scopes().contains(&USER_IMPERSONATION)) =>
            {
                checks.push(Check::pass(
                    "consent",
                    consent_name,
                    "tenant-wide (AllPrincipals) grant present",
                ));
            }
            Ok(_) => checks.push(Check::fail(
                "consent",
                consent_name,
                "no tenant-wide grant with user_impersonation",
                "grant-consent",
            )),
            Err(e) => checks.push(Check::fail("consent", consent_name, e, "grant-consent")),
        },
        (_, Ok(None)) => checks.push(Check::fail(
            "consent",
            consent_name,
            "the tenant has no Dynamics CRM service principal",
            "grant-consent",
        )),
        (None, _) => checks.push(Check::fail(
            "consent",
            consent_name,
            "no service principal to check",
            "register-app, then grant-consent",
        )),
        (_, Err(e)) => checks.push(Check::fail("consent", consent_name, e, "grant-consent")),
    }

    // secret
    checks.push(secret_check(app.as_ref(), input, warn_days));

    // HRD policy, when federated
    let hrd_name = "Home Realm Discovery policy (federated tenants)";
    match soft(graph.federated_domains().await)? {
        Err(e) => checks.push(Check::fail("hrd-policy", hrd_name, e, "set-hrd-policy")),
        Ok(federated) => {
            if federated.is_empty() {
                checks.push(Check::pass(
                    "hrd-policy",
                    hrd_name,
                    "not needed: no federated domain",
                ));
            } else if let Some(sp_id) = &sp_id {
                match soft(graph.hrd_policies_of(sp_id).await)? {
                    Ok(ps) if ps.iter().any(HrdPolicy::allows_cloud_password_validation) => checks.push(Check::pass(
                        "hrd-policy",
                        hrd_name,
                        format!("AllowCloudPasswordValidation assigned (federated: {})", federated.join(", ")),
                    )),
                    Ok(_) => checks.push(Check::fail(
                        "hrd-policy",
                        hrd_name,
                        format!("federated domain(s) {} but no AllowCloudPasswordValidation policy on the service principal", federated.join(", ")),
                        "set-hrd-policy",
                    )),
                    Err(e) => checks.push(Check::fail("hrd-policy", hrd_name, e, "set-hrd-policy")),
                }
            } else {
                checks.push(Check::fail(
                    "hrd-policy",
                    hrd_name,
                    "no service principal to check",
                    "register-app, then set-hrd-policy",
                ));
            }
        }
    }
    Ok(())
}

fn secret_check(app: Option<&s2s_graph::Application>, input: &Inputs, warn_days: u32) -> Check {
    let name = "client secret exists, is saved and is not about to expire";
    let Some(key_id) = &input.key_id else {
        return Check::fail(
            "secret",
            name,
            "the document has no secret.key_id",
            "make-secret",
        );
    };
    let Some(app) = app else {
        return Check::fail(
            "secret",
            name,
            "the app could not be read",
            "register-app, then make-secret",
        );
    };
    let Some(cred) = app.password_credential(key_id) else {
        return Check::fail(
            "secret",
            name,
            format!("key {key_id} is no longer on the app"),
            "make-secret",
        );
    };
    let Some(file) = &input.secret_file else {
        return Check::fail(
            "secret",
            name,
            "the document has no secret.file",
            "make-secret",
        );
    };
    match std::fs::read(file) {
        Ok(b) if !b.iter().all(u8::is_ascii_whitespace) => {}
        Ok(_) => {
            return Check::fail(
                "secret",
                name,
                format!("{} is empty", file.display()),
                "make-secret",
            );
        }
        Err(e) => {
            return Check::fail(
                "secret",
                name,
                format!("cannot read {}: {e}", file.display()),
                "make-secret",
            );
        }
    }
    match cred.expires_at() {
        Some(end) => {
            let left = end - OffsetDateTime::now_utc();
            if left.whole_days() < i64::from(warn_days) {
                Check::fail(
                    "secret",
                    name,
                    format!(
                        "key {key_id} expires in {} day(s), within --warn-days {warn_days}",
                        left.whole_days().max(0)
                    ),
                    "make-secret (it adds a fresh secret; re-enter it in Marketo)",
                )
            } else {
                Check::pass(
                    "secret",
                    name,
                    format!(
                        "key {key_id} ({}…) in {}, expires in {} days",
                        cred.hint.as_deref().unwrap_or(""),
                        file.display(),
                        left.whole_days()
                    ),
                )
            }
        }
        None => Check::fail(
            "secret",
            name,
            format!("key {key_id} has no readable end date"),
            "make-secret",
        ),
    }
}

async fn dynamics_checks(
    dv: &Dataverse<'_>,
    input: &Inputs,
    roles: &[String],
    checks: &mut Vec<Check>,
) -> Result<Option<String>> {
    match soft(dv.who_am_i().await)? {
        Ok(w) => checks.push(Check::pass(
            "org-access",
            "the org answers WhoAmI for the admin",
            format!("{} as user {}", dv.org(), w.user_id),
        )),
        Err(e) => {
            checks.push(Check::fail(
                "org-access",
                "the org answers WhoAmI for the admin",
                e,
                "check --dynamics-url and that the admin is a System Administrator of the org",
            ));
            return Ok(None);
        }
    }

    let sol_name = "Marketo solution installed (4.0.0.14 or later)";
    match soft(dv.solutions_by_friendly_name(MARKETO_SOLUTION).await)? {
        Ok(list) => {
            match list.first() {
                None => checks.push(Check::fail(
                    "marketo-solution",
                    sol_name,
                    format!("{MARKETO_SOLUTION:?} is not installed"),
                    "import the Marketo solution (Marketo step 1), then verify-sync again",
                )),
                Some(s) => {
                    let v = s.version.clone().unwrap_or_default();
                    if compare_versions(&v, MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE)
                        .is_some_and(|o| o.is_ge())
                    {
                        checks.push(Check::pass(
                            "marketo-solution",
                            sol_name,
                            format!("{} {v}", s.uniquename),
                        ));
                    } else {
                        checks.push(Check::fail("marketo-solution", sol_name, format!("version {v:?} is older than {MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE}"), "import the current Marketo solution (Update, maintain customizations)"));
                    }
                }
            }
        }
        Err(e) => checks.push(Check::fail(
            "marketo-solution",
            sol_name,
            e,
            "import the Marketo solution",
        )),
    }

    let user_name = "application user exists and is enabled";
    let users = match soft(dv.application_users(&input.client_id).await)? {
        Ok(u) => u,
        Err(e) => {
            checks.push(Check::fail("application-user", user_name, e, "assign-role"));
            return Ok(None);
        }
    };
    let Some(user) = users.first() else {
        checks.push(Check::fail(
            "application-user",
            user_name,
            format!("no application user for client id {}", input.client_id),
            "assign-role",
        ));
        for r in roles {
            checks.push(Check::fail(
                "sync-role",
                &format!("application user holds {r}"),
                "no application user",
                "assign-role",
            ));
        }
        return Ok(None);
    };
    if user.is_disabled() {
        checks.push(Check::fail(
            "application-user",
            user_name,
            format!("user {} is disabled", user.systemuserid),
            "assign-role (it enables the user)",
        ));
    } else if input
        .app_user_id
        .as_deref()
        .is_some_and(|d| !d.eq_ignore_ascii_case(&user.systemuserid))
    {
        checks.push(Check::fail(
            "application-user",
            user_name,
            format!(
                "the document names {} but the org has {}",
                input.app_user_id.as_deref().unwrap_or(""),
                user.systemuserid
            ),
            "assign-role",
        ));
    } else {
        checks.push(Check::pass(
            "application-user",
            user_name,
            format!(
                "{} ({})",
                user.internalemailaddress.as_deref().unwrap_or("no e-mail"),
                user.systemuserid
            ),
        ));
    }
    let held: Vec<String> = match &user.systemuserroles_association {
        Some(r) => r.iter().filter_map(|r| r.name.clone()).collect(),
        None => match soft(dv.user_roles(&user.systemuserid).await)? {
            Ok(r) => r.into_iter().filter_map(|r| r.name).collect(),
            Err(e) => {
                checks.push(Check::fail(
                    "sync-role",
                    "application user roles",
                    e,
                    "assign-role",
                ));
                Vec::new()
            }
        },
    };
    for r in roles {
        let name = format!("application user holds {r}");
        if held.iter().any(|h| h == r) {
            checks.push(Check::pass("sync-role", &name, "role assigned"));
        } else {
            checks.push(Check::fail(
                "sync-role",
                &name,
                format!(
                    "the user holds: {}",
                    if held.is_empty() {
                        "no role".to_string()
                    } else {
                        held.join(", ")
                    }
                ),
                "assign-role",
            ));
        }
    }

    // Marketo config
    let cfg_name = "Marketo Config \"Default\" points Marketo User at the application user";
    match (
        &input.config_set,
        &input.config_record,
        &input.config_lookup,
    ) {
        (Some(set), Some(rec), Some(lookup)) => {
            let select = format!("_{lookup}_value");
            match soft(
                dv.get::<Value>(
                    &format!(
                        "{}({rec})?$select={}",
                        s2s_core::odata::encode(set),
                        s2s_core::odata::encode(&select)
                    ),
                    "Marketo config record",
                )
                .await,
            )? {
                Ok(row) => {
                    let current = row[&select].as_str().unwrap_or("");
                    if current.eq_ignore_ascii_case(&user.systemuserid) {
                        checks.push(Check::pass(
                            "marketo-config",
                            cfg_name,
                            format!("{set}({rec})"),
                        ));
                    } else if current.is_empty() {
                        checks.push(Check::fail(
                            "marketo-config",
                            cfg_name,
                            "Marketo User is empty",
                            "configure-marketo",
                        ));
                    } else {
                        checks.push(Check::fail(
                            "marketo-config",
                            cfg_name,
                            format!("Marketo User is {current}, not {}", user.systemuserid),
                            "configure-marketo",
                        ));
                    }
                }
                Err(e) => checks.push(Check::fail(
                    "marketo-config",
                    cfg_name,
                    e,
                    "configure-marketo",
                )),
            }
        }
        _ => checks.push(Check::fail(
            "marketo-config",
            cfg_name,
            "the document has no marketo_config (configure-marketo has not run)",
            "configure-marketo",
        )),
    }

    // Sync filter, when asked for
    for entity in &input.filter_entities {
        let name = format!("sync filter field new_synctomkto on {entity}");
        match soft(dv.attribute(entity, "new_synctomkto").await)? {
            Ok(Some(a)) if a.is_boolean() => checks.push(Check::pass(
                &format!("sync-filter:{entity}"),
                &name,
                "Two Options field present",
            )),
            Ok(Some(a)) => checks.push(Check::fail(
                &format!("sync-filter:{entity}"),
                &name,
                format!("exists but is {}", a.type_name()),
                "delete the field in Dynamics, then add-sync-filter",
            )),
            Ok(None) => checks.push(Check::fail(
                &format!("sync-filter:{entity}"),
                &name,
                "missing",
                "add-sync-filter",
            )),
            Err(e) => checks.push(Check::fail(
                &format!("sync-filter:{entity}"),
                &name,
                e,
                "add-sync-filter",
            )),
        }
    }
    Ok(Some(user.systemuserid.clone()))
}

/// Marketo's own test: the app's secret obtains a token for the org, and WhoAmI answers as the
/// application user (design.md, verify-sync).
async fn live_login(
    ctx: &Ctx,
    org: &str,
    input: &Inputs,
    app_user: Option<&str>,
    checks: &mut Vec<Check>,
) -> Result<()> {
    let name = "the app's own secret signs in to the org as the application user";
    let Some(file) = &input.secret_file else {
        checks.push(Check::fail(
            "live-login",
            name,
            "no secret file to test with",
            "make-secret",
        ));
        return Ok(());
    };
    let secret = match std::fs::read_to_string(file) {
        Ok(s) => SecretString::from(s.trim().to_string()),
        Err(e) => {
            checks.push(Check::fail(
                "live-login",
                name,
                format!("cannot read {}: {e}", file.display()),
                "make-secret",
            ));
            return Ok(());
        }
    };
    let who = format!(
        "the Marketo app {} and its secret in {}",
        input.client_id,
        file.display()
    );
    let token =
        match s2s_core::auth::client_credentials(&ctx.http, &input.client_id, &secret, org, &who)
            .await
        {
            Ok((t, _)) => t,
            Err(e) if e.kind == Kind::Timeout => return Err(e),
            Err(e) => {
                checks.push(Check::fail(
                    "live-login",
                    name,
                    e.to_string(),
                    "make-secret (the saved secret is not accepted)",
                ));
                return Ok(());
            }
        };
    let dv = Dataverse::new(&ctx.http, org).with_token(token);
    match dv.who_am_i().await {
        Ok(w) if app_user.is_some_and(|u| u.eq_ignore_ascii_case(&w.user_id)) => {
            checks.push(Check::pass(
                "live-login",
                name,
                format!("WhoAmI answered user {}", w.user_id),
            ));
        }
        Ok(w) => checks.push(Check::fail(
            "live-login",
            name,
            format!(
                "WhoAmI answered user {}, not the application user",
                w.user_id
            ),
            "assign-role",
        )),
        Err(e) if e.kind == Kind::Timeout => return Err(e),
        Err(e) => checks.push(Check::fail(
            "live-login",
            name,
            e.to_string(),
            "assign-role (an enabled application user is needed)",
        )),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
