//! `verify-sync --offline`: a connection's status from its state document alone,
//! with no network and no sign-in — on a train, or when the customer's tenant is down. It prints
//! the target, what each step did and when (or how it failed), the secret's key id, expiry and
//! file, the last verify result and its age, whether a publish is owed, and the Marketo step-3
//! block. Nothing is sent, nothing is written (stdout stays empty), and the result is shown even
//! with `-q`: it is what the command is for. Exit 0 once printed; 2 for a document that cannot
//! be read.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use s2s_core::keys;
use s2s_core::output::{Reporter, Style, url_for_humans};
use s2s_core::{Error, Result, StateDoc};

use crate::Cli;

pub fn main(cli: Cli) -> ExitCode {
    let report = Reporter::new("verify-sync", cli.common.quiet, 0);
    match status(&cli, &report) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            s2s_core::run::report_error("verify-sync", &e, cli.common.verbose);
            e.exit_code()
        }
    }
}

fn status(cli: &Cli, r: &Reporter) -> Result<()> {
    let file = cli.common.state.as_deref();
    let doc = match file {
        Some(p) => StateDoc::load_existing(p)?,
        None => StateDoc::load(None, true)?,
    };
    if doc.root().is_empty() {
        return Err(
            Error::usage("the state document is empty: there is nothing to show")
                .with_hint("pass --state FILE with the customer's state file"),
        );
    }
    let text = |k: &str| doc.text(k).map(str::to_string);
    let or = |v: Option<String>, none: &str| v.unwrap_or_else(|| none.to_string());
    let line = |label: &str, value: String| r.result(&format!("{label:<12}: {value}"));

    r.result(&format!(
        "status of {} (from the document alone: nothing was sent)",
        file.map_or("the document on stdin".to_string(), |p| p
            .display()
            .to_string())
    ));
    let tenant = match (
        text(keys::TENANT_DOMAIN.path()),
        text(keys::TENANT_ID.path()),
    ) {
        (Some(d), Some(i)) => format!("{d} ({i})"),
        (d, i) => or(d.or(i), "(none yet)"),
    };
    line(
        "tenant",
        format!(
            "{tenant}, cloud {}",
            or(text(keys::TENANT_CLOUD.path()), "public")
        ),
    );
    let org = text(keys::DYNAMICS_URL.path()).map(|u| url_for_humans(&u));
    line(
        "org",
        match (org.clone(), text(keys::DYNAMICS_ORG_NAME.path())) {
            (Some(u), Some(n)) => format!("{u} ({n})"),
            (u, _) => or(u, "(none yet)"),
        },
    );
    line("sign-in", sign_in(&doc));
    line(
        "app",
        match text(keys::APP_CLIENT_ID.path()) {
            Some(id) => format!(
                "{:?}, client id {id}, object id {}",
                or(text(keys::APP_DISPLAY_NAME.path()), "?"),
                or(text(keys::APP_OBJECT_ID.path()), "?")
            ),
            None => "(not registered yet: register-app)".to_string(),
        },
    );
    steps(&doc, r);
    secret(&doc, file, cli.warn_days, r);
    last_verify(&doc, r);
    publish(&doc, r, file);
    step3(&doc, file, r);
    Ok(())
}

/// The document's `sign_in`, or that the environment's credential chain is used.
fn sign_in(doc: &StateDoc) -> String {
    let Ok(Some(s)) = doc.get(keys::SIGN_IN) else {
        return "not named in the document: the environment's credential chain".to_string();
    };
    let mut parts = Vec::new();
    for k in s2s_core::config::SIGN_IN_KEYS {
        if let Some(v) = s.get(*k).and_then(Value::as_str) {
            parts.push(format!("{k} {v}"));
        }
    }
    parts.join(", ")
}

/// "3 h ago" for an RFC 3339 time; `None` when it does not parse.
fn age(at: &str) -> Option<String> {
    let t = OffsetDateTime::parse(at, &Rfc3339).ok()?;
    let secs = (OffsetDateTime::now_utc() - t).whole_seconds().max(0);
    Some(match secs {
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s if s < 2 * 86400 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86400),
    })
}

/// One line per step the document records, in runbook order (others after), with what it did.
fn steps(doc: &StateDoc, r: &Reporter) {
    const ORDER: &[&str] = &[
        "preflight",
        "register-app",
        "grant-consent",
        "make-secret",
        "set-hrd-policy",
        "assign-role",
        "configure-marketo",
        "publish-customizations",
        "add-sync-filter",
        "verify-sync",
        "teardown",
    ];
    let Ok(Some(steps)) = doc.get(keys::STEPS) else {
        r.result("steps       : none has run yet");
        return;
    };
    r.result("steps       :");
    let mut names: Vec<&String> = steps.keys().collect();
    names.sort_by_key(|n| ORDER.iter().position(|o| o == n).unwrap_or(ORDER.len()));
    for name in names {
        let s = &steps[name.as_str()];
        let at = s["at"].as_str().unwrap_or("");
        let when = age(at).map_or(String::new(), |a| format!(" ({a})"));
        let did = if s["dry_run"] == Value::Bool(true) {
            "dry run".to_string()
        } else if s["changed"] == Value::Bool(true) {
            "changed".to_string()
        } else {
            "no change".to_string()
        };
        let msg = format!("  {name:<24} {did:<10} {at}{when}");
        match &s["error"] {
            Value::Object(e) => r.result_styled(
                Style::Fail,
                &format!(
                    "{msg}; then FAILED (exit {}): {}",
                    e.get("exit_code").and_then(Value::as_u64).unwrap_or(1),
                    e.get("message").and_then(Value::as_str).unwrap_or("")
                ),
            ),
            _ => r.result(&msg),
        }
    }
}

/// The secret's key id, hint, file and expiry (a warning within `--warn-days`), and a previous
/// key still to retire.
fn secret(doc: &StateDoc, file: Option<&Path>, warn_days: u32, r: &Reporter) {
    let text = |k: &str| doc.text(k).map(str::to_string);
    let Some(key) = text(keys::SECRET_KEY_ID.path()) else {
        r.result("secret      : none yet (make-secret)");
        return;
    };
    let path = text(keys::SECRET_FILE.path()).map(|p| {
        s2s_core::statefile::resolve_doc_path(file, Path::new(&p))
            .display()
            .to_string()
    });
    let saved = match &path {
        Some(p) if Path::new(p).is_file() => format!("in {p}"),
        Some(p) => format!("file {p} is missing"),
        None => "no file recorded".to_string(),
    };
    let expires = text(keys::SECRET_EXPIRES_AT.path());
    let left = expires
        .as_deref()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .map(|t| (t - OffsetDateTime::now_utc()).whole_days());
    let hint = text(keys::SECRET_HINT.path()).map_or(String::new(), |h| format!(" ({h}…)"));
    let msg = format!(
        "secret      : key {key}{hint} {saved}, expires {} ({})",
        expires.as_deref().unwrap_or("?"),
        left.map_or("?".to_string(), |d| format!("in {d} days"))
    );
    if left.is_some_and(|d| d < i64::from(warn_days)) || path.is_none() {
        r.result_styled(Style::Warn, &msg);
    } else {
        r.result(&msg);
    }
    if let Some(prev) = text(keys::SECRET_PREVIOUS_KEY_ID.path()) {
        r.result(&format!(
            "              previous key {prev} still on the app: retire it once Marketo uses the new one"
        ));
    }
}

/// The last `verify-sync` result and its age.
fn last_verify(doc: &StateDoc, r: &Reporter) {
    let Some(ok) = doc
        .get_value(keys::VERIFY_OK.path())
        .and_then(Value::as_bool)
    else {
        r.result("last verify : never run (verify-sync)");
        return;
    };
    let at = doc.text(keys::VERIFY_AT).unwrap_or("");
    let when = age(at).map_or(at.to_string(), |a| format!("{a}, {at}"));
    let checks = doc
        .get_value(keys::VERIFY_CHECKS.path())
        .and_then(Value::as_array);
    let ids = |want: &str| -> Vec<String> {
        checks
            .into_iter()
            .flatten()
            .filter(|c| {
                c["status"].as_str() == Some(want)
                    || (want == "fail" && c["status"].is_null() && c["ok"] == Value::Bool(false))
            })
            .filter_map(|c| c["id"].as_str().map(str::to_string))
            .collect()
    };
    let (failed, warned) = (ids("fail"), ids("warn"));
    if ok {
        let note = if warned.is_empty() {
            String::new()
        } else {
            format!("; warnings: {}", warned.join(", "))
        };
        r.result(&format!("last verify : passed ({when}){note}"));
    } else {
        r.result_styled(
            Style::Fail,
            &format!("last verify : FAILED ({when}): {}", failed.join(", ")),
        );
    }
}

/// Whether "Publish All Customizations" is owed (core's rule, as publish-customizations
/// --if-changed and the `published` check apply it).
fn publish(doc: &StateDoc, r: &Reporter, file: Option<&Path>) {
    let run = s2s_core::hint::command("publish-customizations", file, &["--if-changed"]);
    if doc.text(keys::PUBLISH_STATUS) == Some("pending") {
        r.result_styled(
            Style::Warn,
            &format!("publish     : owed: an earlier publish did not finish; run {run}"),
        );
        return;
    }
    match s2s_core::owed::changes_since_publish(doc, false) {
        Ok(changed) if changed.is_empty() => r.result(&format!(
            "publish     : nothing owed{}",
            doc.text(keys::PUBLISH_LAST_PUBLISHED_AT)
                .map_or(String::new(), |at| format!(" (last published {at})"))
        )),
        Ok(changed) => r.result_styled(
            Style::Warn,
            &format!(
                "publish     : owed: {} changed Dataverse after the last publish; run {run}",
                changed.join(", ")
            ),
        ),
        Err(e) => r.result_styled(Style::Warn, &format!("publish     : cannot tell: {e}")),
    }
}

/// The values Marketo's step 3 asks for, from the document (never the secret).
fn step3(doc: &StateDoc, file: Option<&Path>, r: &Reporter) {
    let text = |k: &str| doc.text(k).map(str::to_string);
    let unknown = |v: Option<String>| v.unwrap_or_else(|| "(unknown)".to_string());
    let secret = text(keys::SECRET_FILE.path()).map(|p| {
        s2s_core::statefile::resolve_doc_path(file, Path::new(&p))
            .display()
            .to_string()
    });
    let lines = [
        "Marketo step 3 (Admin > CRM > Microsoft Dynamics > Enter Credentials):".to_string(),
        format!(
            "  Dynamics URL : {}",
            unknown(text(keys::DYNAMICS_URL.path()).map(|u| url_for_humans(&u)))
        ),
        format!("  Tenant ID    : {}", unknown(text(keys::TENANT_ID.path()))),
        format!(
            "  Client ID    : {}",
            unknown(text(keys::APP_CLIENT_ID.path()))
        ),
        format!(
            "  Username     : {}",
            unknown(text(keys::DYNAMICS_USERNAME.path()))
        ),
        format!(
            "  Client secret: the content of {} (shown nowhere else)",
            secret.unwrap_or_else(|| "the secret file".to_string())
        ),
    ];
    for l in lines {
        r.result(&l);
    }
}
