//! `make-secret`: the runbook's "create a client secret" step (Marketo S2S step 2; graph.md §4).
//!
//! Ensures the app has a valid password credential whose value is saved in a file created with
//! mode 0600 (temporary file, fsync, rename) *before* the tool reports success. The value is never
//! printed, logged or put in the document unless `--reveal` asks for it.
//!
//! What "already done" means (design.md, "Idempotency keys"): the document's `secret.key_id`
//! still exists on the app, its file is present (and starts with the credential's hint), and the
//! credential lives longer than `--min-validity`. Without a recorded key id (a new pipeline run
//! from an empty document), a secret file that is already there is adopted when it matches a
//! live credential this tool made (its hint, and the run tag at the end of its name), so re-runs
//! do not pile up credentials. A recorded credential that is still valid but whose file is gone
//! (deleted after pasting it into Marketo) is *not* replaced: Marketo may be using it, so the
//! tool warns and leaves it; `--rotate` makes a new one on purpose. A `--secret-file` that does
//! not exist while the document's `secret.file` holds that live secret is refused (exit 2, no
//! write): recording it would leave verify-sync and teardown with a file that holds no secret.
//! Otherwise a new credential is added. Credentials are removed only with `--revoke-others`
//! (alias `--retire-old`), which asks on a terminal and needs `--yes` otherwise.
//! `passwordCredentials` is never PATCHed (peers lose credentials that way, peers.md §9.2): only
//! `addPassword` / `removePassword`.
//!
//! Rotation (`--rotate`): a new secret is added while the old one keeps working, saved to the
//! secret file, and the Marketo step-3 values to update are printed; the old key id is recorded
//! as `secret.previous_key_id`. Once Marketo uses the new secret, `--retire-old --yes` removes
//! the old one.
//!
//! Lost answers: core retries a POST whose answer was lost, so one `addPassword` can create two
//! credentials, the first with a secret nobody will ever see. Every credential this tool adds
//! carries a per-run tag (`[run 3fa9c2d1]`) in its display name, and after a successful add any
//! other credential with the same tag is removed.
//!
//! Reads:  `app.object_id` (or `app.client_id`), `secret.key_id`, `secret.file` (relative to the
//!         `--state` file's folder when relative), `tenant.id`, `dynamics.url`.
//! Writes: `secret.key_id`, `secret.hint`, `secret.expires_at`, `secret.file` (just the file name
//!         when it sits beside the `--state` file, so the folder can be moved; else absolute),
//!         `secret.display_name`, `secret.previous_key_id` after `--rotate`; `secret.value` only
//!         with `--reveal`.
//!
//! Exit codes: 0 done; 1 the secret file could not be written (the new credential is removed
//! again) or another local failure; 2 bad flags or input (also `--revoke-others` off a terminal
//! without `--yes`, or a `--secret-file` that does not exist while `secret.file` holds the live
//! secret), nothing written; 3 sign-in failed;
//! 4 Graph refused (e.g. the tenant's secret-lifetime policy, missing privilege); 5 not in time.
//!
//! Example:
//! ```text
//! register-app --name "Marketo Integration" | grant-consent \
//!   | make-secret --secret-file marketo.secret > state.json
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

use s2s_core::retry::{Poll, REPLICATION_WINDOW, until_ready};
use s2s_core::run::Key;
use s2s_core::{CommonArgs, Ctx, Error, Kind, Result};
use s2s_graph::{AppRef, Application, Graph, PasswordCredential, RunTag};
/// The help's closing part: examples and the keys, then the exit codes from core's one table.
fn after_help() -> String {
    format!(
        "{}\n{}",
        "\
Examples:
  register-app | grant-consent | make-secret --secret-file marketo.secret > state.json
  make-secret --state marketo-s2s.state.json --min-validity 60d      # renew when due
  make-secret --state marketo-s2s.state.json --rotate                # new secret, old one still works
  make-secret --state marketo-s2s.state.json --retire-old --yes      # after Marketo has the new one

The secret's value goes only to the 0600 --secret-file (and to the document with --reveal).
Reads app.object_id (or app.client_id), secret.*; writes secret.key_id, secret.hint,
secret.expires_at, secret.file (by name when beside the --state file), secret.previous_key_id.
A re-run sends no write while the saved secret is valid; a valid secret whose file was deleted is
kept (with a warning) until --rotate. A --secret-file that does not exist while secret.file holds
the secret in use is refused: move the file there first, or add --rotate for a new secret.",
        s2s_core::exit_codes::help(false, &[(1, "the secret file could not be written (the new credential is removed again)"), (2, "also --revoke-others without --yes off a terminal, or a --secret-file that does not exist while secret.file holds the secret in use"), (4, "e.g. the tenant's secret lifetime policy")])
    )
}

/// Ensure the app has a client secret saved in a 0600 file.
///
/// Adds a password credential to the app registration and writes its value to --secret-file
/// before reporting success. A re-run adds nothing while the recorded secret is still on the app,
/// its file exists and it is valid for longer than --min-validity; an existing secret file that
/// matches a credential this tool made is adopted. A valid recorded secret whose file was deleted
/// is left alone with a warning (Marketo may use it): --rotate makes a new one. Credentials are
/// only removed with --revoke-others (--retire-old), after confirmation. Reads app.object_id (or
/// app.client_id) from the state document on stdin; writes secret.key_id, secret.hint,
/// secret.expires_at and secret.file.
#[derive(Debug, Parser)]
#[command(
    name = "make-secret",
    version,
    after_help = after_help()
)]
pub struct Cli {
    /// Object id of the app registration [state: app.object_id]
    #[arg(long, value_name = "GUID", value_parser = s2s_core::guid::clap_parser)]
    pub object_id: Option<String>,

    /// Application (client) id of the app, used when the object id is not known [state: app.client_id]
    #[arg(long, value_name = "GUID", value_parser = s2s_core::guid::clap_parser)]
    pub client_id: Option<String>,

    /// Description of the secret in the portal; a run tag such as "[run 3fa9c2d1]" is appended
    /// [default: "marketo-s2s make-secret <today>"]
    #[arg(long, value_name = "NAME")]
    pub display_name: Option<String>,

    /// Lifetime of a new secret: days (90d), weeks (12w), months (24mo) or years (1y); the
    /// tenant's app management policy may allow less
    #[arg(long, value_name = "LIFETIME", default_value = "24mo", value_parser = parse_lifetime)]
    pub expires_in: Lifetime,

    /// Add a new secret when the recorded one expires sooner than this (same units as --expires-in)
    #[arg(long, value_name = "LIFETIME", default_value = "30d", value_parser = parse_lifetime)]
    pub min_validity: Lifetime,

    /// File that receives the secret value, created with mode 0600 [state: secret.file]
    /// [default: marketo-s2s-<client id>.secret beside the --state file, or in the current folder]
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,

    /// Also put the secret value in the document as secret.value (it is then in your pipeline's output)
    #[arg(long)]
    pub reveal: bool,

    /// Add a new secret now, even if the saved one is still valid; the old one keeps working
    /// until --retire-old removes it (update Marketo in between)
    #[arg(long)]
    pub rotate: bool,

    /// Remove every other password credential of the app (each is listed on stderr); use it once
    /// nothing depends on the old secrets. Asks on a terminal; needs --yes otherwise
    #[arg(long, visible_alias = "retire-old")]
    pub revoke_others: bool,

    /// Confirm --revoke-others / --retire-old without asking (needed off a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl s2s_core::Tool for Cli {
    const NAME: &'static str = "make-secret";
    const READS: &'static [(&'static str, Key)] = &[
        ("app.object_id", Key::Guid),
        ("app.client_id", Key::Guid),
        ("secret.key_id", Key::Guid),
        ("secret.file", Key::Str),
    ];
    fn common(&self) -> &CommonArgs {
        &self.common
    }
    fn validate(&self) -> Result<()> {
        if let Some(name) = &self.display_name {
            // The portal's description field holds short names; leave room for the run tag.
            s2s_graph::check_display_name(name, "--display-name", 80)?;
        }
        if let Some(f) = &self.secret_file {
            check_secret_path(f, "--secret-file")?;
        }
        // Off a terminal the question cannot be asked: refuse before anything is sent.
        if self.revoke_others
            && !self.yes
            && !self.common.dry_run
            && !s2s_core::confirm::can_prompt()
        {
            return Err(s2s_core::confirm::needs_yes(
                "make-secret",
                "removing the app's other credentials (--revoke-others / --retire-old)",
            ));
        }
        Ok(())
    }
}

pub fn main() -> std::process::ExitCode {
    s2s_core::run::main::<Cli, _>(run)
}

// ---- lifetimes ------------------------------------------------------------------------------

/// A secret lifetime. Months and years are calendar months (24mo from 26 Nov 2026 ends on
/// 26 Nov 2028), as the portal's "24 months" reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    Days(u32),
    Months(u32),
}

/// `90d`, `12w`, `24mo`, `1y` (also spelled out: `90days`, `2years`).
pub fn parse_lifetime(s: &str) -> std::result::Result<Lifetime, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("{s:?} is not a lifetime (try 90d, 12w, 24mo or 1y)");
    let n: u32 = num.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(format!(
            "{s:?} is zero; a lifetime must be at least one day"
        ));
    }
    let l = match unit.trim() {
        "d" | "day" | "days" => Lifetime::Days(n),
        "w" | "week" | "weeks" => Lifetime::Days(n.checked_mul(7).ok_or_else(bad)?),
        "mo" | "month" | "months" => Lifetime::Months(n),
        "y" | "year" | "years" => Lifetime::Months(n.checked_mul(12).ok_or_else(bad)?),
        "" => return Err(format!("{s:?} has no unit (use d, w, mo or y)")),
        _ => return Err(bad()),
    };
    // A century is far beyond any tenant policy; the bound keeps date arithmetic in range.
    let too_long = match l {
        Lifetime::Days(d) => d > 36_500,
        Lifetime::Months(m) => m > 1_200,
    };
    if too_long {
        return Err(format!("{s:?} is longer than 100 years"));
    }
    Ok(l)
}

impl Lifetime {
    /// The instant this long after `t`.
    pub fn after(self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Lifetime::Days(d) => t.checked_add(time::Duration::days(i64::from(d))),
            Lifetime::Months(m) => add_months(t, m),
        }
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lifetime::Days(d) => write!(f, "{d}d"),
            Lifetime::Months(m) => write!(f, "{m}mo"),
        }
    }
}

/// Calendar months; the day is clamped to the target month's length (31 Jan + 1mo = 28/29 Feb).
fn add_months(t: OffsetDateTime, months: u32) -> Option<OffsetDateTime> {
    let total = i64::from(t.year()) * 12 + i64::from(u8::from(t.month())) - 1 + i64::from(months);
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    let day = t.day().min(month.length(year));
    let date = Date::from_calendar_date(year, month, day).ok()?;
    Some(t.replace_date(date))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

// ---- input checks ---------------------------------------------------------------------------

fn check_secret_path(p: &Path, what: &str) -> Result<()> {
    if p.as_os_str().is_empty() {
        return Err(Error::usage(format!("{what} must not be empty")));
    }
    let bytes = p.as_os_str().as_encoded_bytes();
    if bytes.iter().any(|b| b.is_ascii_control()) {
        return Err(Error::usage(format!(
            "{what} {:?} contains a control character",
            p.to_string_lossy()
        )));
    }
    // Only a regular file is read or replaced: a FIFO would block the read forever and a device
    // (`/dev/stdout`) would be turned into a file by the rename.
    if let Ok(m) = std::fs::metadata(p) {
        if !m.is_file() && !m.is_dir() {
            return Err(Error::usage(format!(
                "{what} {} is not a regular file (a device, pipe or socket)",
                p.display()
            ))
            .with_hint("give the path of a regular file; it is created with mode 0600"));
        }
    }
    if p.is_dir() || p.file_name().is_none() {
        return Err(Error::usage(format!(
            "{what} {} is a directory; give the path of the file to create",
            p.display()
        )));
    }
    Ok(())
}

// ---- the step -------------------------------------------------------------------------------

/// What the document's secret is worth on this run.
#[derive(Debug, PartialEq)]
enum Recorded {
    /// Valid, saved and long-lived: nothing to do.
    Usable(PasswordCredential),
    /// Valid and long-lived, but its file is gone: kept (Marketo may use it), with a warning.
    FileMissing(PasswordCredential),
    /// A new credential is needed, for this reason.
    Replace(String),
}

async fn run(ctx: &mut Ctx, cli: Cli) -> Result<()> {
    // Everything that can be wrong with the input is found before the first request.
    // Where to find the app: flags first, then the document (design.md, "The state document").
    let target =
        AppRef::from_flags_or_doc(cli.object_id.as_deref(), cli.client_id.as_deref(), &ctx.doc)?;
    let doc_key = ctx.doc.get_guid("secret.key_id")?;
    let doc_file = ctx
        .doc
        .get_str("secret.file")?
        .map(|f| ctx.resolve_doc_path(Path::new(f)));
    if cli.secret_file.is_none() {
        if let Some(f) = &doc_file {
            check_secret_path(f, "state document key secret.file")?;
        }
    }
    let now = OffsetDateTime::now_utc();
    let end = cli
        .expires_in
        .after(now)
        .ok_or_else(|| Error::usage(format!("--expires-in {} is out of range", cli.expires_in)))?;
    let renew_before = cli.min_validity.after(now).ok_or_else(|| {
        Error::usage(format!(
            "--min-validity {} is out of range",
            cli.min_validity
        ))
    })?;
    if end <= renew_before {
        ctx.warn(&format!(
            "--expires-in {} is not longer than --min-validity {}: the next run will replace this secret",
            cli.expires_in, cli.min_validity
        ));
    }

    let g = Graph::new(&ctx.http);
    // Right after `register-app` a replica may not know the app yet (graph.md §7.4).
    let app = g.wait_for_application(&target).await?;
    if let Some(c) = &cli.client_id {
        if !app.app_id.eq_ignore_ascii_case(c) {
            // Found out only from Graph's answer, so not "bad input with no request sent".
            return Err(Error::refused(format!(
                "--client-id {c} does not match the app with object id {} (client id {})",
                app.id, app.app_id
            ))
            .with_hint(
                "pass only one of --object-id and --client-id, or fix the one that is wrong",
            ));
        }
    }
    let file = cli
        .secret_file
        .clone()
        .or(doc_file.clone())
        .unwrap_or_else(|| {
            ctx.default_dir()
                .join(format!("marketo-s2s-{}.secret", app.app_id))
        });
    check_secret_path(&file, "--secret-file")?;
    // Absolute for this run, so a re-run from another folder checks the same file; recorded by
    // name when it sits beside the --state file (see `record`).
    let file = std::path::absolute(&file).unwrap_or(file);
    let file_text = ctx.doc_path_text(&file);

    let mut recorded = judge_recorded(&app, doc_key.as_deref(), &file, renew_before);
    if let Recorded::Replace(_) = recorded {
        if doc_key.is_none() {
            // A new pipeline run from an empty document: the secret file of an earlier run is
            // right there, so the credential behind it is adopted rather than adding another.
            if let Some(cred) = adoptable(&app, &file, renew_before) {
                ctx.say(&format!(
                    "adopting client secret {} (hint {}): its value is already saved in {}",
                    cred.key_id,
                    cred.hint.as_deref().unwrap_or("?"),
                    file.display()
                ));
                recorded = Recorded::Usable(cred);
            }
        }
    }
    if let Recorded::FileMissing(cred) = &recorded {
        if !cli.rotate {
            if let (Some(typed), Some(live)) = (&cli.secret_file, &doc_file) {
                refuse_missing_secret_file(typed, &file, live, cred)?;
            }
            ctx.warn(&format!(
                "client secret {} (hint {}) is still on the app and valid until {}, but its file {} is missing; Marketo may be using it, so no new secret was added",
                cred.key_id,
                cred.hint.as_deref().unwrap_or("?"),
                cred.end_date_time.as_deref().unwrap_or("?"),
                file.display()
            ));
            ctx.warn("to replace it, run make-secret --rotate (then update Marketo's step 3 and run make-secret --retire-old --yes)");
        }
    }
    let previous = match &recorded {
        Recorded::Usable(c) | Recorded::FileMissing(c) => Some(c.key_id.clone()),
        Recorded::Replace(_) => None,
    };
    if cli.rotate {
        recorded = Recorded::Replace(match &previous {
            Some(k) => format!("--rotate: replacing client secret {k}"),
            None => "--rotate".to_string(),
        });
    }
    // The credential to keep, and the app's credentials as they are now.
    let (kept, app_now) = match recorded {
        Recorded::FileMissing(cred) => {
            record(&mut ctx.doc, &cred, &file_text, None);
            (cred.key_id, app)
        }
        Recorded::Usable(cred) => {
            ctx.say(&format!(
                "client secret {} (hint {}) is on the app, saved in {} and valid until {}",
                cred.key_id,
                cred.hint.as_deref().unwrap_or("?"),
                file.display(),
                cred.end_date_time.as_deref().unwrap_or("?")
            ));
            // --reveal on a re-run reveals the saved value, which judge_recorded found matching.
            let saved = if cli.reveal {
                read_secret_file(&file)
            } else {
                None
            };
            record(&mut ctx.doc, &cred, &file_text, saved.as_ref());
            (cred.key_id, app)
        }
        Recorded::Replace(why) => {
            let base = cli
                .display_name
                .as_deref()
                .map(|n| n.trim().to_string())
                .unwrap_or_else(|| format!("marketo-s2s make-secret {}", now.date()));
            let tag = RunTag::fresh();
            let name = format!("{base} {tag}");
            match add_secret(ctx, &g, &app, &name, &tag, end, &file, &why).await? {
                Some((new, app_now)) => {
                    record(
                        &mut ctx.doc,
                        &new.cred,
                        &file_text,
                        cli.reveal.then_some(&new.value),
                    );
                    if cli.rotate {
                        match &previous {
                            Some(old) => ctx.doc.set("secret.previous_key_id", json!(old)),
                            None => ctx.doc.remove("secret.previous_key_id"),
                        }
                        print_step3(ctx, &app_now, &file, previous.as_deref());
                    }
                    (new.cred.key_id, app_now)
                }
                // --dry-run: the plan holds the addPassword; every existing credential is "other".
                None => (String::new(), app),
            }
        }
    };

    if !cli.reveal {
        // The value is in the document only when this run was asked to reveal it (a value
        // revealed by an earlier run must not ride along in later documents).
        ctx.doc.remove("secret.value");
    }

    // Everything but the kept credential: reported, or removed with --revoke-others.
    let others: Vec<&PasswordCredential> = app_now
        .password_credentials
        .iter()
        .filter(|c| !c.key_id.eq_ignore_ascii_case(&kept))
        .collect();
    let go_ahead = cli.revoke_others
        && !others.is_empty()
        && s2s_core::confirm::confirm(
            ctx.tool(),
            &format!(
                "remove {} other credential(s) of the app ({}); Marketo stops working if it uses one of them",
                others.len(),
                others
                    .iter()
                    .map(|c| c.key_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            cli.yes,
            ctx.dry_run(),
        )?;
    if cli.revoke_others && !others.is_empty() && !go_ahead {
        ctx.say("not removing any credential (not confirmed)");
    } else if cli.revoke_others {
        for c in others {
            if remove_credential(ctx, &g, &app_now.id, &c.key_id).await? {
                ctx.say(&format!("revoked credential {}", describe(c)));
                if ctx.doc.get_str("secret.previous_key_id").ok().flatten()
                    == Some(c.key_id.as_str())
                {
                    ctx.doc.remove("secret.previous_key_id");
                }
            } else if ctx.dry_run() {
                ctx.say(&format!("would revoke credential {}", describe(c)));
            }
        }
    } else if !others.is_empty() {
        // A secret added but never saved (a killed run) shows up here, so it can be removed.
        ctx.say(&format!(
            "the app has {} other password credential(s), still valid for sign-in:",
            others.len()
        ));
        for c in &others {
            ctx.say(&format!("  {}", describe(c)));
        }
        ctx.say("once nothing uses them (Marketo has the saved secret), remove them: make-secret --retire-old --yes");
    }
    Ok(())
}

/// `--secret-file NEW` on a setup whose live secret is saved in the document's `secret.file`:
/// when NEW does not exist but the recorded file does and holds that secret, NEW is a typo or a
/// move that was not made. Recording NEW would point every later step (verify-sync, teardown)
/// at a file with no secret while the real one is left behind, so this stops (exit 2, before
/// any write) and says how to move the secret or make a new one there. `typed` is the flag as
/// given (for the message), `given` the same file made absolute.
fn refuse_missing_secret_file(
    typed: &Path,
    given: &Path,
    recorded: &Path,
    cred: &PasswordCredential,
) -> Result<()> {
    let recorded = std::path::absolute(recorded).unwrap_or_else(|_| recorded.to_path_buf());
    if recorded == given || file_matches(&recorded, cred.hint.as_deref()) != FileState::Matches {
        return Ok(());
    }
    let (old, new) = (shell_word(&recorded), shell_word(typed));
    Err(Error::usage(format!(
        "--secret-file {new} does not exist, but the client secret {} (hint {}) that is in use is saved in {old} (state document key secret.file); nothing was changed",
        cred.key_id,
        cred.hint.as_deref().unwrap_or("?"),
    ))
    .with_hint(format!(
        "to keep the secret in the new place: mv {old} {new}, then pass --secret-file {new}; to make a new secret in {new}: add --rotate; to keep {old}: leave out --secret-file"
    )))
}

/// A path as one word of a shell command line, for a hint meant to be pasted: single-quoted
/// unless it holds only characters no shell treats specially.
fn shell_word(p: &Path) -> String {
    let text = p.display().to_string();
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./-+:@,=%".contains(&b));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Is the document's credential still good enough to keep?
fn judge_recorded(
    app: &Application,
    doc_key: Option<&str>,
    file: &Path,
    renew_before: OffsetDateTime,
) -> Recorded {
    let Some(key) = doc_key else {
        return Recorded::Replace("no secret recorded in the document".into());
    };
    let Some(cred) = app.password_credential(key) else {
        return Recorded::Replace(format!("the recorded secret {key} is no longer on the app"));
    };
    let long_lived = cred.expires_at().is_some_and(|end| end > renew_before);
    match file_matches(file, cred.hint.as_deref()) {
        FileState::Missing if long_lived => return Recorded::FileMissing(cred.clone()),
        FileState::Missing => {
            return Recorded::Replace(format!(
                "the recorded secret's file {} is missing",
                file.display()
            ));
        }
        FileState::Other => {
            return Recorded::Replace(format!(
                "{} holds a different secret than credential {key}",
                file.display()
            ));
        }
        FileState::Matches => {}
    }
    match cred.expires_at() {
        Some(end) if end > renew_before => Recorded::Usable(cred.clone()),
        Some(_) => Recorded::Replace(format!(
            "the recorded secret {key} expires on {}, within --min-validity",
            cred.end_date_time.as_deref().unwrap_or("?")
        )),
        None => Recorded::Replace(format!(
            "the recorded secret {key} has no readable end date"
        )),
    }
}

/// The live credential behind an existing secret file, when no key id is recorded: one this
/// tool made (its name ends with a run tag), whose hint starts the saved value, valid past
/// `--min-validity`; the newest if several match.
fn adoptable(
    app: &Application,
    file: &Path,
    renew_before: OffsetDateTime,
) -> Option<PasswordCredential> {
    let value = read_secret_file(file)?;
    app.password_credentials
        .iter()
        .filter(|c| c.display_name.as_deref().is_some_and(made_by_this_tool))
        .filter(|c| {
            c.hint
                .as_deref()
                .is_some_and(|h| !h.is_empty() && value.expose_secret().starts_with(h))
        })
        .filter(|c| c.expires_at().is_some_and(|end| end > renew_before))
        .max_by(|a, b| a.start_date_time.cmp(&b.start_date_time))
        .cloned()
}

/// Whether a credential's display name ends with a run tag (`… [run 3fa9c2d1]`), as every
/// credential this tool adds does.
fn made_by_this_tool(name: &str) -> bool {
    let Some(rest) = name.strip_suffix(']') else {
        return false;
    };
    let Some(i) = rest.rfind("[run ") else {
        return false;
    };
    let hex = &rest[i + 5..];
    hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// After `--rotate`: what to change in Marketo, and what to run once it is changed.
fn print_step3(ctx: &Ctx, app: &Application, file: &Path, previous: Option<&str>) {
    let s = |k: &str| {
        ctx.doc
            .get_str(k)
            .ok()
            .flatten()
            .map(s2s_core::output::sanitize)
            .unwrap_or_else(|| "(unknown)".into())
    };
    let lines = [
        "update Marketo step 3 (Admin > CRM > Microsoft Dynamics > Enter Credentials) with the new secret:".to_string(),
        format!("  Dynamics URL : {}", s("dynamics.url")),
        format!("  Tenant ID    : {}", s("tenant.id")),
        format!("  Client ID    : {}", app.app_id),
        format!(
            "  Client secret: the content of {} (shown nowhere else)",
            s2s_core::output::sanitize(&file.display().to_string())
        ),
    ];
    for l in lines {
        ctx.say(&l);
    }
    if let Some(old) = previous {
        ctx.say(&format!(
            "the old secret {old} keeps working; once Marketo uses the new one, run: make-secret --retire-old --yes"
        ));
    }
}

#[derive(Debug, PartialEq)]
enum FileState {
    Missing,
    /// The file's value does not start with the credential's hint (graph.md §4.1: the hint is
    /// the first three characters of the secret), so it belongs to another credential.
    Other,
    Matches,
}

/// The value saved in a secret file, if it holds one.
fn read_secret_file(file: &Path) -> Option<SecretString> {
    s2s_core::fsutil::read_secret(file).ok().flatten()
}

fn file_matches(file: &Path, hint: Option<&str>) -> FileState {
    let Some(value) = read_secret_file(file) else {
        return FileState::Missing;
    };
    match hint {
        Some(h) if !h.is_empty() && !value.expose_secret().starts_with(h) => FileState::Other,
        _ => FileState::Matches,
    }
}

/// The one answer of `addPassword` that matters, with the value kept secret.
struct NewSecret {
    cred: PasswordCredential,
    value: SecretString,
}

/// Takes the fields out of the answer by hand: a serde error message could quote `secretText`.
fn new_secret_from(answer: &Value) -> Option<NewSecret> {
    let s = |k: &str| answer.get(k).and_then(Value::as_str).map(str::to_string);
    let value = s("secretText").filter(|v| !v.is_empty())?;
    Some(NewSecret {
        cred: PasswordCredential {
            key_id: s("keyId")?,
            display_name: s("displayName"),
            hint: s("hint"),
            start_date_time: s("startDateTime"),
            end_date_time: s("endDateTime"),
        },
        value: SecretString::from(value),
    })
}

/// Adds the credential, saves it, and converges after a lost answer. Returns the new credential
/// and the app's credentials after the clean-up, or `None` in `--dry-run`.
#[allow(clippy::too_many_arguments)]
async fn add_secret(
    ctx: &Ctx,
    g: &Graph<'_>,
    app: &Application,
    name: &str,
    tag: &RunTag,
    end: OffsetDateTime,
    file: &Path,
    why: &str,
) -> Result<Option<(NewSecret, Application)>> {
    let answer = match g.add_password(&app.id, name, &rfc3339(end)).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            ctx.say(&format!(
                "{why}: would add client secret \"{name}\" valid until {} and save it to {}",
                rfc3339(end),
                file.display()
            ));
            return Ok(None);
        }
        Err(e) => {
            if e.ambiguous {
                // The add may have been committed although no answer came: its secret is
                // unknown, so a credential with this run's tag is useless. Best effort only,
                // the original error is what the user must see.
                let _ = remove_tagged(ctx, g, &app.id, tag, None).await;
            }
            return Err(explain_add_error(e));
        }
    };
    let Some(new) = new_secret_from(&answer) else {
        drop(answer);
        let _ = remove_tagged(ctx, g, &app.id, tag, None).await;
        return Err(Error::internal(
            "addPassword answered without a keyId or secretText; the credential was removed again",
        ));
    };
    drop(answer);
    let key = new.cred.key_id.clone();

    // The value exists only in this process now: save it before anything else can fail.
    if let Err(io) =
        s2s_core::fsutil::write_atomic(file, new.value.expose_secret().as_bytes(), 0o600)
    {
        let rolled_back = remove_credential(ctx, g, &app.id, &key).await;
        let _ = remove_tagged(ctx, g, &app.id, tag, None).await;
        let e = Error::internal(format!(
            "cannot write the secret to {}: {io}",
            file.display()
        ));
        return Err(match rolled_back {
            Ok(_) => e.with_hint(format!(
                "the new credential {key} was removed again; choose a writable --secret-file and re-run"
            )),
            Err(r) => e.with_hint(format!(
                "removing the new credential {key} failed too ({r}); re-run with a writable --secret-file and --revoke-others"
            )),
        });
    }
    ctx.say(&format!(
        "{why}: added client secret {key} \"{name}\" (hint {}), valid until {}, saved to {} (mode 0600)",
        new.cred.hint.as_deref().unwrap_or("?"),
        new.cred.end_date_time.as_deref().unwrap_or("?"),
        file.display()
    ));
    // The secret is saved: from here on nothing may fail the run, or the next run would find no
    // key id in the document and add yet another credential.
    let app_now = match remove_tagged(ctx, g, &app.id, tag, Some(&key)).await {
        Ok(a) => a,
        Err(e) => {
            ctx.warn(&format!(
                "the new secret is saved, but looking for leftover credentials of this run failed ({e}); run make-secret --revoke-others later to clean up"
            ));
            app.clone()
        }
    };
    Ok(Some((new, app_now)))
}

/// Graph's refusals of `addPassword`, with what to do about them.
fn explain_add_error(e: Error) -> Error {
    let e = e.context("adding a client secret");
    if e.has_code("CredentialInvalidLifetimeAsPerAppPolicy") || e.has_code("InvalidKeyEndDate") {
        return e.with_kind(Kind::Refused).with_hint(
            "the tenant's app management policy limits client secret lifetimes: pass a shorter --expires-in (e.g. 180d)",
        );
    }
    s2s_graph::needs::explain_forbidden(e, &s2s_graph::needs::MAKE_SECRET)
}

/// Removes every credential carrying this run's tag except `keep`: they were created by a
/// request whose answer was lost (and then retried), so their secrets are unknown.
///
/// With `keep`, the read waits until it is visible, so the earlier, committed add is visible
/// too; without (a roll-back, or an add that may not have been committed), one read is taken.
/// Returns the app with the credentials that remain.
async fn remove_tagged(
    ctx: &Ctx,
    g: &Graph<'_>,
    object_id: &str,
    tag: &RunTag,
    keep: Option<&str>,
) -> Result<Application> {
    let window = ctx.http.deadline().min(Instant::now() + REPLICATION_WINDOW);
    let app = until_ready(
        window,
        "reading the app's credentials",
        ctx.reporter(),
        || async {
            let app = g.application(object_id).await?;
            Ok(match app {
                Some(a) if keep.is_none_or(|k| a.password_credential(k).is_some()) => {
                    Poll::Ready(a)
                }
                _ => Poll::Pending("the new credential is not visible yet".into()),
            })
        },
    )
    .await?;
    let mut app = app;
    let (lost, remaining): (Vec<_>, Vec<_>) = std::mem::take(&mut app.password_credentials)
        .into_iter()
        .partition(|c| {
            let tagged = c.display_name.as_deref().is_some_and(|n| tag.marks(n));
            tagged && !keep.is_some_and(|k| c.key_id.eq_ignore_ascii_case(k))
        });
    app.password_credentials = remaining;
    for c in &lost {
        remove_credential(ctx, g, object_id, &c.key_id).await?;
        ctx.say(&format!(
            "removed credential {} (hint {}): a retried request created it and its answer was lost, so its secret is unknown",
            c.key_id,
            c.hint.as_deref().unwrap_or("?")
        ));
    }
    Ok(app)
}

/// `removePassword`, waiting out `Directory_ConcurrencyViolation` (graph.md §4.2: it can follow
/// an `addPassword` on the same app) and replication. `false` in `--dry-run`.
async fn remove_credential(
    ctx: &Ctx,
    g: &Graph<'_>,
    object_id: &str,
    key_id: &str,
) -> Result<bool> {
    until_ready(
        ctx.http.deadline(),
        "removing a password credential",
        ctx.reporter(),
        || async {
            match g.remove_password(object_id, key_id).await {
                Ok(sent) => Ok(Poll::Ready(sent)),
                Err(e) if s2s_graph::is_replication_lag(&e) => Ok(Poll::Pending(e.to_string())),
                Err(e) => Err(e.context(format!("removing credential {key_id}"))),
            }
        },
    )
    .await
}

/// `file_text` is the file as the document records it (`Ctx::doc_path_text`).
fn record(
    doc: &mut s2s_core::StateDoc,
    cred: &PasswordCredential,
    file_text: &str,
    revealed: Option<&SecretString>,
) {
    doc.set("secret.key_id", json!(cred.key_id));
    doc.set("secret.hint", json!(cred.hint));
    doc.set("secret.expires_at", json!(cred.end_date_time));
    doc.set("secret.file", json!(file_text));
    if let Some(n) = &cred.display_name {
        doc.set("secret.display_name", json!(n));
    }
    if let Some(v) = revealed {
        // Asked for explicitly (--reveal): the one place the value leaves the file.
        doc.set("secret.value", json!(v.expose_secret()));
    }
}

fn describe(c: &PasswordCredential) -> String {
    format!(
        "{} \"{}\" (hint {}, expires {})",
        c.key_id,
        c.display_name.as_deref().unwrap_or(""),
        c.hint.as_deref().unwrap_or("?"),
        c.end_date_time.as_deref().unwrap_or("?")
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
    fn lifetimes() {
        assert_eq!(parse_lifetime("90d"), Ok(Lifetime::Days(90)));
        assert_eq!(parse_lifetime("12w"), Ok(Lifetime::Days(84)));
        assert_eq!(parse_lifetime("24mo"), Ok(Lifetime::Months(24)));
        assert_eq!(parse_lifetime("1y"), Ok(Lifetime::Months(12)));
        assert_eq!(parse_lifetime("2 years"), Ok(Lifetime::Months(24)));
        for bad in ["", "0d", "10", "-1d", "5x", "1.5y", "200y", "99999999999d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn calendar_months_clamp_the_day() {
        let t = time::macros::datetime!(2026-01-31 10:00 UTC);
        assert_eq!(
            add_months(t, 1),
            Some(time::macros::datetime!(2026-02-28 10:00 UTC))
        );
        assert_eq!(
            add_months(t, 25),
            Some(time::macros::datetime!(2028-02-29 10:00 UTC))
        );
        let t = time::macros::datetime!(2026-11-26 00:00 UTC);
        assert_eq!(
            Lifetime::Months(24).after(t),
            Some(time::macros::datetime!(2028-11-26 00:00 UTC))
        );
        assert_eq!(
            rfc3339(time::macros::datetime!(2028-11-26 00:00:00.5 UTC)),
            "2028-11-26T00:00:00Z"
        );
    }

    fn app_with(creds: Vec<PasswordCredential>) -> Application {
        Application {
            id: "o".into(),
            app_id: "a".into(),
            password_credentials: creds,
            ..Default::default()
        }
    }

    fn cred(key: &str, hint: &str, end: &str) -> PasswordCredential {
        PasswordCredential {
            key_id: key.into(),
            hint: Some(hint.into()),
            end_date_time: Some(end.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_recorded_secret_is_kept_only_when_present_saved_and_long_lived() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.secret");
        std::fs::write(&file, "abcdefgh").unwrap();
        let now = time::macros::datetime!(2026-11-26 00:00 UTC);
        let renew = Lifetime::Days(30).after(now).unwrap();
        let app = app_with(vec![
            cred("k1", "abc", "2028-11-26T00:00:00Z"),
            cred("k2", "xyz", "2026-12-01T00:00:00Z"),
        ]);

        assert!(
            matches!(judge_recorded(&app, Some("k1"), &file, renew), Recorded::Usable(c) if c.key_id == "k1")
        );
        assert!(matches!(
            judge_recorded(&app, None, &file, renew),
            Recorded::Replace(_)
        ));
        assert!(
            matches!(judge_recorded(&app, Some("gone"), &file, renew), Recorded::Replace(w) if w.contains("no longer"))
        );
        // k2 expires within 30 days; and its hint does not match the file either.
        assert!(matches!(
            judge_recorded(&app, Some("k2"), &file, renew),
            Recorded::Replace(_)
        ));
        let app = app_with(vec![cred("k2", "abc", "2026-12-01T00:00:00Z")]);
        assert!(
            matches!(judge_recorded(&app, Some("k2"), &file, renew), Recorded::Replace(w) if w.contains("min-validity"))
        );
        assert!(matches!(
            judge_recorded(&app, Some("k2"), &dir.path().join("missing"), renew),
            Recorded::Replace(w) if w.contains("missing")
        ));
    }

    #[test]
    fn the_answer_is_read_without_serde_messages() {
        let v = json!({"keyId": "k", "hint": "abc", "secretText": "abcdef", "endDateTime": "2028-11-26T00:00:00Z"});
        let s = new_secret_from(&v).unwrap();
        assert_eq!(s.cred.key_id, "k");
        assert_eq!(s.value.expose_secret(), "abcdef");
        assert!(new_secret_from(&json!({"keyId": "k"})).is_none());
        assert!(new_secret_from(&json!({"keyId": "k", "secretText": ""})).is_none());
    }
}
