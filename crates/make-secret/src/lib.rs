//! `make-secret`: the runbook's "create a client secret" step (Marketo S2S step 2; graph.md §4).
//!
//! Ensures the app has a valid password credential whose value is saved in a file created with
//! mode 0600 (temporary file, fsync, rename) *before* the tool reports success. The value is never
//! printed, logged or put in the document unless `--reveal` asks for it; the document keeps its
//! SHA-256 (`secret.sha256`), which lets make-secret, verify-sync and teardown recognise the file
//! without signing in.
//!
//! The run goes by stage, one file each: `input` (flags and document, checked before any
//! request), `secret_file` (what the file holds, decided locally; the only writes to it),
//! `discovery` (the app, and which live credentials are this setup's), `plan` (keep, adopt or
//! add), `steps` (adding), `removal` (orphans of an interrupted run, `--revoke-others`,
//! `--retire-old`, `--forget-file`); this file holds the flags and runs the stages in order.
//!
//! What "already done" means (design.md, "Idempotency keys"): the document's `secret.key_id`
//! still exists on the app, its file holds the recorded secret, and the credential lives longer
//! than `--min-validity`. The secret file is written only when it does not exist or holds the
//! secret the document records (`secret.sha256`; for older documents, the recorded hint of the
//! recorded key); anything else is exit 2 before any request. A damaged file (it keeps the hint
//! but not the value, or is empty) is repaired with a new credential, and the old one, which
//! Marketo may still use, is recorded as `secret.previous_key_id`. Without a recorded key id (a
//! new pipeline run from an empty document), a secret file already there is adopted when it
//! holds the secret of one of this setup's live credentials. A recorded credential that is still
//! valid but whose file is gone (deleted after pasting it into Marketo) is *not* replaced: Marketo
//! may be using it, so the tool warns and leaves it; `--rotate` makes a new one on purpose, and
//! `--forget-file` records that the secret is kept outside a file (a vault:
//! `secret.storage: "external"`, verify-sync then skips its live sign-in test). A group- or
//! world-readable secret file gets mode 0600 back, and the tool says so.
//!
//! Rotation (`--rotate`): a new secret is added while the old one keeps working, saved to the
//! secret file, the Marketo step-3 values to update are printed, and the old key id is recorded
//! as `secret.previous_key_id`. `--retire-old` then removes that one (and `--retire KEYID` the
//! keys named): it never adds a credential, refuses while the secret in use is not saved in the
//! file or not valid for `--min-validity`, and prints the step-3 values first. `--revoke-others`
//! removes every other credential of this setup. Removal asks on a terminal and needs `--yes`
//! otherwise; a credential is removed only when its display name carries this setup's mark
//! (`[setup 1a2b3c4d]`, from `setup.id`) or it is named with `--retire`, never the one in use —
//! and only from an app whose tags carry this setup's full id (`marketo-s2s:setup:<setup.id>`),
//! or an untagged app the document records as adopted (`app.adopted`). The short mark alone
//! proves nothing (another setup's tags show its 8 hex digits): on any other app
//! `--revoke-others`, `--retire-old` and `--retire` are exit 4 before any write, and an
//! interrupted run's credentials are kept.
//!
//! Interruptions: every credential this tool adds carries a per-run tag (`[run 3fa9c2d1]`) after
//! the setup's mark. A lost answer retried by core leaves a second credential with the same tag,
//! removed after the add. Just before `addPassword` the run is journaled in `secret.pending`
//! (saved to the `--state` file), so a run killed between `addPassword`, the file write and the
//! state save is finished by the next run: it adopts the credential whose secret reached the
//! file, removes the tagged ones whose secret never did, and adds nothing more. Every check
//! that can refuse the run comes before that removal. A re-run given another file than the
//! journaled one (or none: `secret.storage: external`) stops with exit 2, before any write,
//! when the journaled file holds the secret of one of those credentials: it is no orphan.
//!
//! `secret.file` is recorded by name when the file sits beside the `--state` file (so the folder
//! can be moved), else absolute; a relative one is read relative to the `--state` file's folder.
//! `secret.pending` exists only while an add is under way; `secret.value` only with `--reveal`.
//!
//! The keys it reads and writes and its exit codes: `make-secret --help` (rendered from
//! `READS`, `WRITES` and core's exit-code table, with what a code means here).
//!
//! Example:
//! ```text
//! register-app --name "Marketo Integration" | grant-consent \
//!   | make-secret --secret-file marketo.secret > state.json
//! ```

use std::path::PathBuf;

use clap::Parser;
use time::OffsetDateTime;

use s2s_core::keys;
use s2s_core::{AnyKey, CommonArgs, Ctx, Error, Result};
use s2s_graph::{Graph, RunTag};

mod discovery;
mod input;
mod lifetime;
mod plan;
mod removal;
mod secret_file;
mod steps;

pub use lifetime::{Lifetime, parse_lifetime};

use plan::{Kept, Plan};
use secret_file::{Saved, shown};

/// Ensure the app has a client secret saved in a 0600 file.
///
/// Adds a password credential to the app registration and writes its value to --secret-file
/// before reporting success. A re-run adds nothing while the recorded secret is still on the app,
/// its file holds it and it is valid for longer than --min-validity. A valid recorded secret whose
/// file was deleted is left alone with a warning (Marketo may use it): --rotate makes a new one.
#[derive(Debug, Parser)]
#[command(
    name = "make-secret",
    version,
    after_help = s2s_core::help::after_help::<Cli>()
)]
pub struct Cli {
    /// Object id of the app registration [state: app.object_id]
    #[arg(long, value_name = "GUID", value_parser = s2s_core::guid::clap_parser)]
    pub object_id: Option<String>,

    /// Application (client) id of the app, used when the object id is not known [state: app.client_id]
    #[arg(long, value_name = "GUID", value_parser = s2s_core::guid::clap_parser)]
    pub client_id: Option<String>,

    /// Description of the secret in the portal; the setup's mark and a run tag such as
    /// "[setup 1a2b3c4d] [run 3fa9c2d1]" are appended [default: "marketo-s2s make-secret <today>"]
    #[arg(long, value_name = "NAME")]
    pub display_name: Option<String>,

    /// Lifetime of a new secret: days (90d), weeks (12w), months (24mo) or years (1y); the
    /// tenant's app management policy may allow less [default: secret.lifetime, else 24mo]
    #[arg(long, value_name = "LIFETIME", value_parser = parse_lifetime)]
    pub expires_in: Option<Lifetime>,

    /// Add a new secret when the recorded one expires sooner than this (same units as --expires-in)
    #[arg(long, value_name = "LIFETIME", default_value = "30d", value_parser = parse_lifetime)]
    pub min_validity: Lifetime,

    /// File that receives the secret value, created with mode 0600 in a folder that exists
    /// [state: secret.file] [default: marketo-s2s-<client id>.secret beside the --state file, or
    /// in the current folder]
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,

    /// Also put the secret value in the document as secret.value (it is then in your pipeline's output)
    #[arg(long)]
    pub reveal: bool,

    /// Add a new secret now, even if the saved one is still valid; the old one keeps working
    /// until --retire-old removes it (update Marketo in between)
    #[arg(long, conflicts_with_all = ["retire_old", "retire", "forget_file"])]
    pub rotate: bool,

    /// Remove every other credential of this setup (each is listed on stderr); credentials
    /// without this setup's mark are kept and named. Asks on a terminal; needs --yes otherwise
    #[arg(long, conflicts_with_all = ["retire_old", "retire", "forget_file"])]
    pub revoke_others: bool,

    /// Remove the previous secret (secret.previous_key_id) once Marketo uses the new one. Never
    /// adds a secret; refuses while the secret in use is not saved or not valid for
    /// --min-validity. Asks on a terminal; needs --yes otherwise
    #[arg(long, conflicts_with = "forget_file")]
    pub retire_old: bool,

    /// Remove this credential (repeatable), even one without this setup's mark; never the
    /// secret in use. Asks on a terminal; needs --yes otherwise
    #[arg(long, value_name = "KEYID", value_parser = s2s_core::guid::clap_parser, conflicts_with = "forget_file")]
    pub retire: Vec<String>,

    /// The secret now lives outside the file (e.g. in a vault): record secret.storage
    /// "external" and forget secret.file; verify-sync then skips its live sign-in test. A later
    /// renewal needs --secret-file
    #[arg(long, conflicts_with_all = ["secret_file", "reveal"])]
    pub forget_file: bool,

    /// Confirm --revoke-others / --retire-old / --retire without asking (needed off a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl Cli {
    /// Whether this run removes (`--retire-old` / `--retire`) rather than ensures.
    fn retiring(&self) -> bool {
        self.retire_old || !self.retire.is_empty()
    }

    /// The flags of this run a pasted retry must repeat (beside those `Ctx::command` carries).
    fn own_flags(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(f) = &self.secret_file {
            v.push("--secret-file".to_string());
            v.push(s2s_core::hint::shell_word(&f.to_string_lossy()));
        }
        if self.rotate {
            v.push("--rotate".into());
        }
        v
    }
}

impl s2s_core::Tool for Cli {
    const NAME: &'static str = "make-secret";
    const READS: &'static [AnyKey] = &[
        keys::APP_OBJECT_ID.any(),
        keys::APP_CLIENT_ID.any(),
        keys::APP_UNIQUE_NAME.any(),
        keys::APP_ADOPTED.any(),
        keys::SETUP_ID.any(),
        keys::SECRET_KEY_ID.any(),
        keys::SECRET_HINT.any(),
        keys::SECRET_SHA256.any(),
        keys::SECRET_FILE.any(),
        keys::SECRET_PREVIOUS_KEY_ID.any(),
        keys::SECRET_LIFETIME.any(),
        keys::SECRET_STORAGE.any(),
        keys::SECRET_PENDING.any(),
    ];
    const WRITES: &'static [AnyKey] = &[
        keys::SECRET_KEY_ID.any(),
        keys::SECRET_HINT.any(),
        keys::SECRET_EXPIRES_AT.any(),
        keys::SECRET_SHA256.any(),
        keys::SECRET_FILE.any(),
        keys::SECRET_DISPLAY_NAME.any(),
        keys::SECRET_LIFETIME.any(),
        keys::SECRET_PREVIOUS_KEY_ID.any(),
        keys::SECRET_STORAGE.any(),
        keys::SECRET_PENDING.any(),
        keys::SECRET_VALUE.any(),
    ];
    const EXAMPLES: &'static str = "\
register-app | grant-consent | make-secret --secret-file marketo.secret > state.json
make-secret --state marketo-s2s.state.json --min-validity 60d      # renew when due
make-secret --state marketo-s2s.state.json --rotate                # new secret, old one still works
make-secret --state marketo-s2s.state.json --retire-old --yes      # after Marketo has the new one
make-secret --state marketo-s2s.state.json --forget-file           # kept in a vault now";
    const HELP_NOTES: &'static str = "\
The secret's value goes only to the 0600 --secret-file (and to the document, as secret.value,
with --reveal); the document keeps its SHA-256 (secret.sha256). A file is written only when it
does not exist or holds the secret the document records; any other file is refused (exit 2) and
left as it is. secret.file is recorded by name when beside the --state file; secret.lifetime is
reused by the next new secret; secret.previous_key_id is the old secret after --rotate.
A re-run sends no write while the saved secret is valid; a valid secret whose file was deleted is
kept (with a warning) until --rotate. A --secret-file that does not exist while secret.file holds
the secret in use is refused: move the file there first, or add --rotate for a new secret.
Credentials are removed only when they carry this setup's mark ([setup 1a2b3c4d], from setup.id)
or are named with --retire, never the one in use, and only from an app tagged
marketo-s2s:setup:<setup.id> (or untagged and recorded as app.adopted).";
    const EXIT_NOTES: &'static [(u8, &'static str)] = &[
        (
            1,
            "the secret file could not be written (the new credential is removed again)",
        ),
        (
            2,
            "also a secret file that is not this connection's, a --secret-file in a folder that does not exist, removal without --yes off a terminal, --retire-old while the file does not hold the secret in use, or another file than the one an interrupted run saved its new secret to",
        ),
        (
            4,
            "e.g. the tenant's secret lifetime policy (its maximum is quoted), --retire-old while the secret in use is not on the app or expires within --min-validity, or --revoke-others / --retire-old / --retire on an app that does not carry this setup's tag (nor is an untagged adopted one)",
        ),
    ];
    fn common(&self) -> &CommonArgs {
        &self.common
    }
    fn validate(&self) -> Result<()> {
        if let Some(name) = &self.display_name {
            // The portal's description field holds short names; leave room for the marks.
            s2s_graph::check_display_name(name, "--display-name", 80)?;
        }
        if let Some(f) = &self.secret_file {
            input::check_secret_path(f, "--secret-file")?;
            // Its folder must exist: found here, before a credential is added that would need
            // rolling back.
            s2s_core::fsutil::check_write_target(f, "--secret-file")?;
        }
        // Off a terminal the question cannot be asked: refuse before anything is sent.
        if (self.revoke_others || self.retiring())
            && !self.yes
            && !self.common.dry_run
            && !s2s_core::confirm::can_prompt()
        {
            return Err(s2s_core::confirm::needs_yes(
                "make-secret",
                "removing credentials of the app (--revoke-others / --retire-old / --retire)",
            ));
        }
        Ok(())
    }
}

pub fn main() -> std::process::ExitCode {
    s2s_core::run::main::<Cli, _>(run)
}

/// The secret file of this run and what it holds.
struct Target {
    /// Absolute.
    path: PathBuf,
    /// For messages (control characters escaped).
    shown: String,
    /// As the document records it (by name beside the `--state` file).
    text: String,
    /// False for a secret kept outside a file (`secret.storage: external`, no `--secret-file`).
    use_file: bool,
    saved: Saved,
}

/// When a new secret would end, and before when the current one must be renewed.
struct Times {
    now: OffsetDateTime,
    end: OffsetDateTime,
    renew_before: OffsetDateTime,
}

async fn run(ctx: &mut Ctx, cli: Cli) -> Result<()> {
    // Everything that can be wrong with the input is found before the first request.
    let input = input::read(ctx, &cli)?;
    let what = input::what_names(&cli);
    // A secret kept outside a file (a vault) has no file to check, unless one is given.
    let kept_elsewhere = input.record.external && cli.secret_file.is_none();
    let use_file = !kept_elsewhere && !cli.forget_file;
    let mut saved = match (&input.file, use_file) {
        (Some(f), true) => Some(secret_file::classify(f, &input.record, what)?),
        _ => None,
    };
    let times = times(&cli, &input)?;
    // Retiring is checked before any request, unless the file can be named only by the app's
    // client id (then right after the app is read, still before any write).
    let retire_now = cli.retiring() && (saved.is_some() || !use_file);
    let mut retire_targets = Vec::new();
    if retire_now {
        let shown_file = input.file.as_deref().map(shown).unwrap_or_default();
        retire_targets = removal::retire_targets(
            ctx,
            &input,
            saved.as_ref(),
            &shown_file,
            cli.retire_old,
            &cli.retire,
        )?;
        if retire_targets.is_empty() {
            return Ok(());
        }
    }
    if cli.forget_file && input.record.key_id.is_none() {
        return Err(Error::usage(
            "no secret is recorded (secret.key_id): there is no file to forget",
        ));
    }
    if times.end <= times.renew_before && !cli.retiring() && !cli.forget_file {
        let from = if cli.expires_in.is_some() {
            "--expires-in"
        } else {
            "the lifetime of a new secret (secret.lifetime)"
        };
        ctx.warn(&format!(
            "{from} {} is not longer than --min-validity {}: the next run will replace this secret",
            input.lifetime, cli.min_validity
        ));
    }

    let app = {
        let g = Graph::new(&ctx.http);
        discovery::read_app(ctx, &g, &input, cli.client_id.as_deref()).await?
    };
    // Nothing is removed from an app the tenant does not show is this setup's: refused here,
    // before any write (an interrupted run's credentials are only kept, see remove_orphans).
    if cli.revoke_others || cli.retiring() {
        if let Err(why) = discovery::app_is_ours(&input, &app) {
            let flag = match (cli.revoke_others, cli.retire_old) {
                (true, _) => "--revoke-others",
                (_, true) => "--retire-old",
                _ => "--retire",
            };
            return Err(removal::refuse_unproven_app(ctx, &app, &input, flag, &why));
        }
    }
    let path = input.file.clone().unwrap_or_else(|| {
        ctx.default_dir()
            .join(format!("marketo-s2s-{}.secret", app.app_id))
    });
    let path = std::path::absolute(&path).unwrap_or(path);
    if saved.is_none() && use_file {
        // Named only now (by the client id): still before any write.
        input::check_secret_path(&path, what)?;
        saved = Some(secret_file::classify(&path, &input.record, what)?);
    }
    let target = Target {
        shown: shown(&path),
        text: ctx.doc_path_text(&path),
        path,
        use_file,
        saved: saved.unwrap_or(Saved::Absent),
    };

    if cli.forget_file {
        let saved_here = input
            .record
            .file
            .as_deref()
            .and_then(|f| secret_file::classify(f, &input.record, what).ok());
        return removal::forget_file(
            ctx,
            &app,
            &input,
            saved_here.as_ref(),
            input.record.file.as_deref().map(shown).as_deref(),
        );
    }
    if cli.retiring() {
        if !retire_now {
            retire_targets = removal::retire_targets(
                ctx,
                &input,
                Some(&target.saved),
                &target.shown,
                cli.retire_old,
                &cli.retire,
            )?;
            if retire_targets.is_empty() {
                return Ok(());
            }
        }
        if target.use_file {
            let rotate_hint = ctx.command("make-secret", &["--rotate"]);
            secret_file::ensure_private(ctx, &target.path, &rotate_hint);
        }
        let at = removal::secret_at(target.use_file.then_some(target.path.as_path()));
        let saved = target.use_file.then_some(&target.saved);
        return removal::retire(
            ctx,
            &app,
            &input,
            saved,
            &retire_targets,
            times.renew_before,
            &at,
            &cli.retire,
            cli.yes,
        )
        .await;
    }
    ensure(ctx, &cli, &input, app, &target, &times).await
}

/// The new secret's end, and the renewal threshold, from now.
fn times(cli: &Cli, input: &input::Input) -> Result<Times> {
    let now = OffsetDateTime::now_utc();
    let end = input
        .lifetime
        .after(now)
        .ok_or_else(|| Error::usage(format!("--expires-in {} is out of range", input.lifetime)))?;
    let renew_before = cli.min_validity.after(now).ok_or_else(|| {
        Error::usage(format!(
            "--min-validity {} is out of range",
            cli.min_validity
        ))
    })?;
    Ok(Times {
        now,
        end,
        renew_before,
    })
}

/// The default run: judge the live credentials against the document and the file, finish an
/// interrupted run, keep or add, then report (or with `--revoke-others` remove) the others.
async fn ensure(
    ctx: &mut Ctx,
    cli: &Cli,
    input: &input::Input,
    app: s2s_graph::Application,
    target: &Target,
    times: &Times,
) -> Result<()> {
    let judged = plan::judge(
        &app,
        input,
        &target.saved,
        &target.shown,
        target.use_file,
        times.renew_before,
    )?;
    // Every refusal comes before the first write (the orphans' removal below).
    refuse_pending_file_elsewhere(ctx, input, target, &judged.orphans)?;
    let mut plan = judged.plan;
    if let (Plan::Keep(cred, Kept::FileMissing), false) = (&plan, cli.rotate) {
        if let (Some(typed), Some(live)) = (&cli.secret_file, &input.record.file) {
            refuse_missing_secret_file(ctx, typed, &target.path, live, input, cred)?;
        }
        ctx.warn(&format!(
            "client secret {} (hint {}) is still on the app and valid until {}, but its file {} is missing; Marketo may be using it, so no new secret was added",
            cred.key_id,
            cred.hint.as_deref().unwrap_or("?"),
            cred.end_date_time.as_deref().unwrap_or("?"),
            target.shown,
        ));
        ctx.warn(&format!(
            "to replace it, run {} (then update Marketo's step 3 and retire the old one); if the secret now lives in a vault, run {}",
            ctx.command("make-secret", &["--rotate"]),
            ctx.command("make-secret", &["--forget-file"])
        ));
    }
    if cli.rotate {
        plan = match plan {
            // Finishing the interrupted run was the rotation: nothing more to add.
            Plan::Keep(cred, kept)
                if !matches!(
                    kept,
                    Kept::Adopted {
                        interrupted: true,
                        ..
                    }
                ) =>
            {
                Plan::Add {
                    why: format!("--rotate: replacing client secret {}", cred.key_id),
                    replaces: Some(cred),
                }
            }
            other => other,
        };
    }
    if let Plan::Add { why, .. } = &plan {
        refuse_unsavable(ctx, cli, target, why)?;
    }
    let app = if judged.orphans.is_empty() {
        app
    } else {
        let g = Graph::new(&ctx.http);
        removal::remove_orphans(ctx, &g, app, &judged.orphans, input).await?
    };
    if !ctx.dry_run() {
        // The interrupted run is accounted for: its secret adopted or its orphans removed.
        ctx.doc.remove(keys::SECRET_PENDING);
    }
    let (current, app, replaced) = match plan {
        Plan::Keep(cred, kept) => {
            let replaced = keep(ctx, cli, &cred, kept, target);
            (cred.key_id, app, replaced)
        }
        Plan::Add { why, replaces } => match add(ctx, cli, input, &app, target, times, &why).await?
        {
            // --dry-run: the plan holds the addPassword; every existing credential is "other".
            None => (String::new(), app, None),
            Some((key, app_now)) => (key, app_now, replaces),
        },
    };
    if !cli.reveal {
        // The value is in the document only when this run was asked to reveal it (a value
        // revealed by an earlier run must not ride along in later documents).
        ctx.doc.remove(keys::SECRET_VALUE);
    }
    if let Some(old) = replaced.filter(|o| !o.key_id.eq_ignore_ascii_case(&current)) {
        record_previous(ctx, input, &app, &old, &current, &target.shown);
    }
    removal::others(ctx, &app, input, &current, cli.revoke_others, cli.yes).await
}

/// Keeps a credential: says why, records it (with the fingerprint of the saved value), and
/// restores 0600 on its file. Returns the credential it replaces as the one in use, when an
/// adopted file took over from the recorded one.
fn keep(
    ctx: &mut Ctx,
    cli: &Cli,
    cred: &s2s_graph::PasswordCredential,
    kept: Kept,
    target: &Target,
) -> Option<s2s_graph::PasswordCredential> {
    let value = match &target.saved {
        Saved::Recorded(v) | Saved::RecordedHint(v) | Saved::Unrecorded(v) => Some(v),
        _ => None,
    };
    let (hint, until) = (
        cred.hint.as_deref().unwrap_or("?"),
        cred.end_date_time.as_deref().unwrap_or("?"),
    );
    let mut replaced = None;
    match &kept {
        Kept::Saved => ctx.say(&format!(
            "client secret {} (hint {hint}) is on the app, saved in {} and valid until {until}",
            cred.key_id, target.shown
        )),
        Kept::External => ctx.say(&format!(
            "client secret {} (hint {hint}) is on the app and valid until {until}; it is kept outside a file (secret.storage: external)",
            cred.key_id
        )),
        Kept::FileMissing => {}
        Kept::Adopted {
            replaced: r,
            interrupted,
        } => {
            ctx.say(&format!(
                "adopting client secret {} (hint {hint}): its value is already saved in {}{}",
                cred.key_id,
                target.shown,
                if *interrupted {
                    " by a make-secret run that was interrupted before it recorded it"
                } else {
                    ""
                }
            ));
            replaced = r.clone();
        }
    }
    let file_text = match kept {
        Kept::External => None,
        _ => Some(target.text.as_str()),
    };
    steps::record(
        &mut ctx.doc,
        &steps::Recording {
            cred,
            file_text,
            value,
            lifetime: None,
            reveal: cli.reveal,
        },
    );
    if value.is_some() {
        let rotate_hint = ctx.command("make-secret", &["--rotate"]);
        secret_file::ensure_private(ctx, &target.path, &rotate_hint);
    }
    replaced
}

/// Adds a credential and saves its value to the file: checks the file can be written, journals
/// the add (`secret.pending`), adds, saves, records. Returns the new key id and the app's
/// credentials after the add, or `None` in `--dry-run`.
async fn add(
    ctx: &mut Ctx,
    cli: &Cli,
    input: &input::Input,
    app: &s2s_graph::Application,
    target: &Target,
    times: &Times,
    why: &str,
) -> Result<Option<(String, s2s_graph::Application)>> {
    let base = cli
        .display_name
        .as_deref()
        .map(|n| n.trim().to_string())
        .unwrap_or_else(|| format!("marketo-s2s make-secret {}", times.now.date()));
    let tag = RunTag::fresh();
    let add = steps::Add {
        name: steps::credential_name(&base, input.setup.as_ref(), &tag),
        tag,
        end: times.end,
        file: &target.path,
        file_text: target.text.clone(),
        why,
    };
    if !ctx.dry_run() {
        let state = ctx.state_file().map(std::path::Path::to_path_buf);
        steps::journal(&mut ctx.doc, state.as_deref(), &add)?;
    }
    let added = {
        let g = Graph::new(&ctx.http);
        steps::add_secret(ctx, &g, app, &add, input.lifetime, &cli.own_flags()).await
    };
    let added = match added {
        Err(f) => {
            if f.clean {
                ctx.doc.remove(keys::SECRET_PENDING);
            }
            return Err(f.error);
        }
        Ok(None) => return Ok(None),
        Ok(Some(a)) => a,
    };
    if added.tidy {
        ctx.doc.remove(keys::SECRET_PENDING);
    }
    steps::record(
        &mut ctx.doc,
        &steps::Recording {
            cred: &added.new.cred,
            file_text: Some(&target.text),
            value: Some(&added.new.value),
            lifetime: Some(input.lifetime),
            reveal: cli.reveal,
        },
    );
    Ok(Some((added.new.cred.key_id, added.app)))
}

/// Before an add (and before any write of the run): a new secret needs a file it can be saved
/// to. The value will exist only in this process, so its file must be writable before it is
/// made; a secret kept outside a file (`secret.storage: external`) needs `--secret-file`.
fn refuse_unsavable(ctx: &Ctx, cli: &Cli, target: &Target, why: &str) -> Result<()> {
    if !target.use_file {
        return Err(Error::usage(format!(
            "{why}, and the secret is kept outside a file (secret.storage: external): a new one needs a file to be saved to; nothing was changed"
        ))
        .with_hint(format!(
            "run {}, then move the new secret to your vault and update Marketo",
            ctx.command("make-secret", &["--secret-file", "FILE"])
        )));
    }
    s2s_core::fsutil::check_write_target(&target.path, input::what_names(cli))
}

/// An interrupted run journaled the file it was saving to (`secret.pending.file`). `plan::judge`
/// looks only at this run's file; when that is another one (or none: the secret is kept
/// outside a file), a credential of the interrupted run whose secret the journaled file holds
/// is no orphan — someone has its secret. Removing it could break what was given that file,
/// and going on would leave the file behind, so this stops (exit 2, before any write) with the
/// command that finishes that run. A file that cannot be read cannot be cleared either.
fn refuse_pending_file_elsewhere(
    ctx: &Ctx,
    input: &input::Input,
    target: &Target,
    orphans: &[s2s_graph::PasswordCredential],
) -> Result<()> {
    let Some(file) = input
        .record
        .pending
        .as_ref()
        .and_then(|p| p.file.as_deref())
    else {
        return Ok(());
    };
    if orphans.is_empty() || (target.use_file && s2s_core::fsutil::same_file(file, &target.path)) {
        return Ok(());
    }
    let this_run = if target.use_file {
        format!("this run was given {}", target.shown)
    } else {
        "this run keeps the secret outside a file".to_string()
    };
    let finish = ctx.command(
        "make-secret",
        &[
            "--secret-file",
            &s2s_core::hint::shell_word(&file.to_string_lossy()),
        ],
    );
    let holder = match s2s_core::fsutil::read_secret(file) {
        Ok(Some(v)) => orphans
            .iter()
            .find(|c| discovery::hint_starts(c, secrecy::ExposeSecret::expose_secret(&v))),
        Ok(None) => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Error::usage(format!(
                "an interrupted make-secret run was saving a new secret to {} (secret.pending.file), which cannot be read \
                 ({e}), and {this_run}: whether it holds the secret of credential(s) {} cannot be told, so none is \
                 removed; nothing was changed",
                shown(file),
                orphans.iter().map(|c| c.key_id.as_str()).collect::<Vec<_>>().join(", ")
            ))
            .with_hint(format!("make the file readable, then finish that run: {finish}")));
        }
    };
    match holder {
        None => Ok(()),
        Some(c) => Err(Error::usage(format!(
            "an interrupted make-secret run saved the secret of credential {} (hint {}) in {} (secret.pending.file), \
             and {this_run}; that credential is kept, and nothing was changed",
            c.key_id,
            c.hint.as_deref().unwrap_or("?"),
            shown(file)
        ))
        .with_hint(format!(
            "finish that run first (it adopts the saved secret): {finish}; then move the file if you want it elsewhere"
        ))),
    }
}

/// A new current secret replaced `old`, which Marketo may still use: it becomes
/// `secret.previous_key_id`, the step-3 values to update are printed, and the command that
/// retires `old` once Marketo has the new one.
fn record_previous(
    ctx: &mut Ctx,
    input: &input::Input,
    app: &s2s_graph::Application,
    old: &s2s_graph::PasswordCredential,
    current: &str,
    file_shown: &str,
) {
    if let Some(p) = &input.record.previous_key_id {
        if !p.eq_ignore_ascii_case(&old.key_id) && app.password_credential(p).is_some() {
            ctx.warn(&format!(
                "secret.previous_key_id was {p}, not retired yet; it now records {} and {p} stays on the app (listed below)",
                old.key_id
            ));
        }
    }
    ctx.doc.set(keys::SECRET_PREVIOUS_KEY_ID, &old.key_id);
    steps::print_step3(
        ctx,
        &app.app_id,
        &format!("the content of {file_shown} (shown nowhere else)"),
        &format!("update Marketo step 3 with the new secret {current}"),
    );
    let retire = if discovery::owned(input.setup.as_ref(), old) {
        ctx.command("make-secret", &["--retire-old", "--yes"])
    } else {
        ctx.command("make-secret", &["--retire", &old.key_id, "--yes"])
    };
    ctx.say(&format!(
        "the old secret {} keeps working; once Marketo uses the new one, run: {retire}",
        old.key_id
    ));
}

/// `--secret-file NEW` on a setup whose live secret is saved in the document's `secret.file`:
/// when NEW does not exist but the recorded file does and holds that secret, NEW is a typo or a
/// move that was not made. Recording NEW would point every later step (verify-sync, teardown)
/// at a file with no secret while the real one is left behind, so this stops (exit 2, before
/// any write) and says how to move the secret or make a new one there. `typed` is the flag as
/// given (for the message), `given` the same file made absolute.
fn refuse_missing_secret_file(
    ctx: &Ctx,
    typed: &std::path::Path,
    given: &std::path::Path,
    recorded: &std::path::Path,
    input: &input::Input,
    cred: &s2s_graph::PasswordCredential,
) -> Result<()> {
    let recorded = std::path::absolute(recorded).unwrap_or_else(|_| recorded.to_path_buf());
    let holds_it = match secret_file::classify(&recorded, &input.record, keys::SECRET_FILE.path()) {
        Ok(Saved::Recorded(v) | Saved::RecordedHint(v)) => {
            discovery::hint_starts(cred, secrecy::ExposeSecret::expose_secret(&v))
        }
        _ => false,
    };
    if recorded == given || !holds_it {
        return Ok(());
    }
    let old = s2s_core::hint::shell_word(&recorded.to_string_lossy());
    let new = s2s_core::hint::shell_word(&typed.to_string_lossy());
    Err(Error::usage(format!(
        "--secret-file {new} does not exist, but the client secret {} (hint {}) that is in use is saved in {old} (state document key secret.file); nothing was changed",
        cred.key_id,
        cred.hint.as_deref().unwrap_or("?"),
    ))
    .with_hint(format!(
        "to keep the secret in the new place: mv {old} {new} && {}; to make a new secret in {new}: {}; to keep {old}: {}",
        ctx.command("make-secret", &["--secret-file", &new]),
        ctx.command("make-secret", &["--secret-file", &new, "--rotate"]),
        ctx.command("make-secret", &[])
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retiring_never_combines_with_adding() {
        for args in [
            vec!["make-secret", "--retire-old", "--rotate"],
            vec![
                "make-secret",
                "--retire",
                "11111111-1111-1111-1111-111111111111",
                "--revoke-others",
            ],
            vec!["make-secret", "--forget-file", "--retire-old"],
            vec!["make-secret", "--forget-file", "--secret-file", "x"],
        ] {
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
        assert!(Cli::try_parse_from(["make-secret", "--retire", "not-a-guid"]).is_err());
    }
}
