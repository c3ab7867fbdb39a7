//! `verify-sync --fleet FILE...`: the morning check of a consultant's customers, fit for a
//! monitoring system. Every state file is checked as `verify-sync --state FILE`
//! would (with its own tenant, org and `sign_in`), at most `--jobs` at once, each within its own
//! `--timeout` (60 s unless given), without writing any file.
//!
//! Each connection gets one row: `file`, `status` (`ok`, `warn` — a secret expiring within
//! `--warn-days` or a check that warns —, `crit` — a failing check —, `unknown` — it could not
//! be checked —, or `removed` for a document teardown emptied), `checked_at`, `tenant`,
//! `tenant_domain`, `org`, `client_id` (read from the document even when the check could not
//! run), `failing` and `warnings` (`id`, `name`, `detail`, `fix`), `secret_expires_at`,
//! `secret_days_left`, or `error` (`exit_code`, `message`, `hint`). `ok` is true for `ok` and
//! `removed`. core reads each file with `fsutil::read_regular`: a FIFO or pipe is an error row at
//! once, never a read that blocks the run.
//!
//! `--format`: `jsonl` (default: one row per line on stdout as each connection finishes; the
//! table on stderr when something needs attention or stderr is a terminal, so cron mails only on
//! trouble; with `-q` one warning line per connection that is not ok), `table` (the table on
//! stdout), `nagios` (one summary line; exit 0 ok, 1 warning, 2 critical, 3 unknown) and
//! `prometheus` (a node-exporter textfile: one gauge per connection for its status, failing
//! checks, secret expiry as a Unix timestamp and the time of the check; exit 0 once written).
//! Exit (jsonl, table): 0 when every connection is ok or removed, 6 otherwise.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use s2s_core::checklist::Status;
use s2s_core::keys;
use s2s_core::output::{Reporter, Style, paint, sanitize};
use s2s_core::{Ctx, Error, Result, StateDoc};

use crate::checks::all_checks;
use crate::{Cli, FleetFormat, read_inputs, roles_of};

/// `--timeout` of each connection in fleet mode when none is given: a monitoring run must end.
pub const FLEET_TIMEOUT: Duration = Duration::from_secs(60);

pub fn main(mut cli: Cli) -> ExitCode {
    cli.common.timeout.get_or_insert(FLEET_TIMEOUT);
    // Each document's own progress lines would interleave: only warnings and the table show.
    let report = Arc::new(Reporter::new("verify-sync", true, cli.common.verbose));
    let human = Reporter::new("verify-sync", cli.common.quiet, 0);
    let format = cli.format;
    let warn_days = cli.warn_days;
    let mut rows: Vec<(usize, Value)> = Vec::new();
    let mut write_error: Option<Error> = None;
    let outcome = s2s_core::run::many(
        &cli,
        &cli.fleet,
        usize::from(cli.jobs),
        &report,
        check_one,
        |i, file, outcome| {
            let row = match outcome {
                Ok(v) => v,
                Err(e) => error_row(file, &e),
            };
            // Rows go out as each connection finishes: a slow customer does not hold up the rest.
            if format == FleetFormat::Jsonl && write_error.is_none() {
                if let Err(e) = s2s_core::run::emit_lines(std::slice::from_ref(&row)) {
                    write_error = Some(e);
                }
            }
            rows.push((i, row));
        },
    );
    if let Some(e) = outcome.err().or(write_error) {
        s2s_core::run::report_error("verify-sync", &e, report.verbosity());
        return e.exit_code();
    }
    rows.sort_by_key(|(i, _)| *i);
    let rows: Vec<Value> = rows.into_iter().map(|(_, r)| r).collect();
    let text = match format {
        FleetFormat::Jsonl => return finish_jsonl(&human, &rows, cli.common.quiet),
        FleetFormat::Table => table(&rows).join("\n") + "\n",
        FleetFormat::Nagios => nagios(&rows, warn_days).0 + "\n",
        FleetFormat::Prometheus => prometheus(&rows),
    };
    if let Err(e) = s2s_core::run::emit_text(&text) {
        s2s_core::run::report_error("verify-sync", &e, report.verbosity());
        return e.exit_code();
    }
    match format {
        FleetFormat::Nagios => ExitCode::from(nagios(&rows, warn_days).1),
        FleetFormat::Prometheus => ExitCode::SUCCESS,
        _ if rows.iter().all(row_ok) => ExitCode::SUCCESS,
        _ => ExitCode::from(6),
    }
}

/// The end of a `jsonl` run: quiet when all pass off a terminal (cron mails only on trouble), the
/// table otherwise; with `-q` only a line per connection that needs attention.
fn finish_jsonl(human: &Reporter, rows: &[Value], quiet: bool) -> ExitCode {
    let bad: Vec<&Value> = rows.iter().filter(|r| !row_ok(r)).collect();
    let names = short_names(&rows.iter().map(file_of).collect::<Vec<_>>());
    if quiet {
        for (r, name) in rows.iter().zip(&names) {
            if !row_ok(r) {
                human.warn(&format!(
                    "{name}: {} {}",
                    r["status"].as_str().unwrap_or("?"),
                    problems(r)
                ));
            }
        }
    } else if !bad.is_empty() || std::io::stderr().is_terminal() {
        for line in table(rows) {
            human.say(&line);
        }
    }
    if bad.is_empty() {
        if std::io::stderr().is_terminal() {
            human.say(&format!("all {} connection(s) pass", rows.len()));
        }
        ExitCode::SUCCESS
    } else {
        if !quiet {
            human.warn(&format!(
                "{} of {} connection(s) need attention",
                bad.len(),
                rows.len()
            ));
        }
        ExitCode::from(6)
    }
}

fn row_ok(r: &Value) -> bool {
    r["ok"] == json!(true)
}

fn file_of(r: &Value) -> &str {
    r["file"].as_str().unwrap_or("?")
}

/// The checks of one document, as one row.
async fn check_one(ctx: &mut Ctx, cli: &Cli) -> Result<Value> {
    let mut row = doc_fields(&ctx.doc, ctx.state_file().unwrap_or(Path::new("")));
    if let Some(t) = &ctx.config().tenant {
        row["tenant"] = json!(t);
    }
    if removed(&ctx.doc) {
        row["status"] = json!("removed");
        row["ok"] = json!(true);
        row["checked_at"] = json!(s2s_core::state::now_rfc3339());
        return Ok(row);
    }
    let input = read_inputs(ctx, cli)?;
    let checks = all_checks(ctx, &input, &roles_of(cli), cli.warn_days).await?;
    let view = |c: &s2s_core::checklist::Check| json!({"id": c.id, "name": c.name, "detail": c.detail, "fix": c.fix});
    let failing: Vec<&s2s_core::checklist::Check> = checks.iter().filter(|c| !c.ok()).collect();
    let warnings: Vec<Value> = checks
        .iter()
        .filter(|c| c.status == Status::Warn)
        .map(view)
        .collect();
    let days_left = row["secret_days_left"].as_i64();
    // A secret that still works but expires within --warn-days is a warning for a monitor: the
    // connection works today.
    let only_expiring = failing.len() == 1
        && failing[0].id == "secret"
        && failing[0]
            .detail
            .contains(crate::checks::EXPIRES_WITHIN_WARN_DAYS)
        && days_left.is_some_and(|d| d < i64::from(cli.warn_days))
        && row["secret_expires_at"]
            .as_str()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .is_some_and(|t| t > OffsetDateTime::now_utc());
    let status = match (failing.is_empty(), only_expiring, warnings.is_empty()) {
        (true, _, true) => "ok",
        (true, _, false) | (false, true, _) => "warn",
        (false, false, _) => "crit",
    };
    row["status"] = json!(status);
    row["ok"] = json!(status == "ok");
    row["checked_at"] = json!(s2s_core::state::now_rfc3339());
    row["failing"] = Value::Array(failing.into_iter().map(view).collect());
    row["warnings"] = Value::Array(warnings);
    Ok(row)
}

/// A document teardown emptied: its removal record and no app left.
fn removed(doc: &StateDoc) -> bool {
    doc.get_value(keys::TEARDOWN_REMOVED.path()).is_some()
        && doc.get_value(keys::APP_CLIENT_ID.path()).is_none()
}

/// What a row shows from the document alone: the target and the secret's expiry.
fn doc_fields(doc: &StateDoc, file: &Path) -> Value {
    let text = |k: &str| doc.text(k).map(str::to_string);
    let expires = text(keys::SECRET_EXPIRES_AT.path());
    let days_left = expires
        .as_deref()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .map(|t| (t - OffsetDateTime::now_utc()).whole_days());
    json!({
        "file": file.display().to_string(),
        "status": "unknown",
        "ok": false,
        "checked_at": Value::Null,
        "tenant": text(keys::TENANT_ID.path()),
        "tenant_domain": text(keys::TENANT_DOMAIN.path()),
        "org": text(keys::DYNAMICS_URL.path()).map(|u| s2s_core::output::url_for_humans(&u)),
        "org_name": text(keys::DYNAMICS_ORG_NAME.path()),
        "client_id": text(keys::APP_CLIENT_ID.path()),
        "secret_expires_at": expires,
        "secret_days_left": days_left,
    })
}

/// The row of a connection that could not be checked: what the document says (read again, best
/// effort: it may be the file that failed) and the error.
fn error_row(file: &Path, e: &Error) -> Value {
    let mut row = match StateDoc::load_existing(file) {
        Ok(doc) => doc_fields(&doc, file),
        Err(_) => doc_fields(&StateDoc::default(), file),
    };
    row["status"] = json!("unknown");
    row["ok"] = json!(false);
    row["checked_at"] = json!(s2s_core::state::now_rfc3339());
    row["error"] = json!({"exit_code": e.kind.code(), "message": e.to_string(), "hint": e.hint});
    row
}

/// What needs attention in a row, for one line: the failing and warning check ids with their
/// fix, or why it could not be checked.
fn problems(r: &Value) -> String {
    let cell = |v: &Value| sanitize(v.as_str().unwrap_or("-")).into_owned();
    if let Value::Object(e) = &r["error"] {
        return format!(
            "cannot check: {}",
            sanitize(e.get("message").and_then(Value::as_str).unwrap_or(""))
        );
    }
    let list = |k: &str| {
        r[k].as_array()
            .map(|a| {
                a.iter()
                    .map(|c| match c["fix"].as_str() {
                        Some(_) => format!("{} (fix: {})", cell(&c["id"]), cell(&c["fix"])),
                        None => format!("{} ({})", cell(&c["id"]), cell(&c["detail"])),
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let mut all = list("failing");
    all.extend(list("warnings"));
    all.join(", ")
}

/// The word of a status in the table, coloured on a colour terminal.
fn status_word(status: &str) -> String {
    let (style, word) = match status {
        "ok" => (Style::Ok, "ok"),
        "warn" => (Style::Warn, "warn"),
        "crit" => (Style::Fail, "CRIT"),
        "removed" => (Style::Skip, "removed"),
        _ => (Style::Fail, "UNKNOWN"),
    };
    // Padded before painting, so the columns line up with or without colour.
    let padded = format!("{word:<7}");
    paint(style, &padded).into_owned()
}

/// The table: a header and one line per connection.
fn table(rows: &[Value]) -> Vec<String> {
    let cell = |v: &Value| sanitize(v.as_str().unwrap_or("-")).into_owned();
    let names: Vec<String> = short_names(&rows.iter().map(file_of).collect::<Vec<_>>())
        .iter()
        .map(|n| sanitize(n).into_owned())
        .collect();
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = vec![format!(
        "{:<width$}  {:<36}  {:<36}  {:<7}  {:<10}  PROBLEMS",
        "FILE", "TENANT", "CLIENT ID", "STATUS", "SECRET"
    )];
    for (r, name) in rows.iter().zip(&names) {
        let secret = match r["secret_days_left"].as_i64() {
            Some(d) => format!("{d} days"),
            None => "-".to_string(),
        };
        out.push(format!(
            "{name:<width$}  {:<36}  {:<36}  {}  {secret:<10}  {}",
            cell(&r["tenant"]),
            cell(&r["client_id"]),
            status_word(r["status"].as_str().unwrap_or("unknown")),
            problems(r)
        ));
    }
    out
}

/// Nagios plugin output: one line, `MARKETO-S2S <STATE> - …| perfdata`, and the exit code
/// (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; critical outranks unknown, which outranks warning).
fn nagios(rows: &[Value], warn_days: u32) -> (String, u8) {
    let count = |s: &str| rows.iter().filter(|r| r["status"] == s).count();
    let (ok, warn, crit, unknown, removed) = (
        count("ok"),
        count("warn"),
        count("crit"),
        count("unknown"),
        count("removed"),
    );
    let (state, code) = if crit > 0 {
        ("CRITICAL", 2)
    } else if unknown > 0 {
        ("UNKNOWN", 3)
    } else if warn > 0 {
        ("WARNING", 1)
    } else {
        ("OK", 0)
    };
    let names = short_names(&rows.iter().map(file_of).collect::<Vec<_>>());
    let mut worst: Vec<String> = Vec::new();
    for status in ["crit", "unknown", "warn"] {
        for (r, name) in rows.iter().zip(&names) {
            if r["status"] == status {
                let what = match status {
                    "warn" if r["failing"].as_array().is_some_and(|f| !f.is_empty()) => format!(
                        "secret expires in {} days (< {warn_days})",
                        r["secret_days_left"].as_i64().unwrap_or(0)
                    ),
                    _ => problems(r),
                };
                worst.push(format!("{} {status}: {what}", sanitize(name)));
            }
        }
    }
    let summary = if worst.is_empty() {
        format!("{ok} of {} connection(s) ok", rows.len())
    } else {
        worst.join("; ")
    };
    // One line: the plugin guidelines put the perfdata after a '|'; a '|' in the text would
    // start it early.
    let line = format!(
        "MARKETO-S2S {state} - {} | ok={ok} warning={warn} critical={crit} unknown={unknown} removed={removed}",
        summary.replace('|', "/")
    );
    (line, code)
}

/// A node-exporter textfile (Prometheus text exposition format 0.0.4): per connection its
/// status (0 ok, 1 warn, 2 crit, 3 unknown), failing checks, secret expiry (Unix seconds) and the
/// time of the check; a removed connection is one `removed` gauge.
fn prometheus(rows: &[Value]) -> String {
    let labels = |r: &Value| {
        let l = |k: &str| escape_label(r[k].as_str().unwrap_or(""));
        format!(
            "{{file=\"{}\",tenant=\"{}\",org=\"{}\",client_id=\"{}\"}}",
            l("file"),
            l("tenant"),
            l("org"),
            l("client_id")
        )
    };
    let epoch = |t: &Value| {
        t.as_str()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .map(|t| t.unix_timestamp())
    };
    let mut out = String::new();
    let mut family = |name: &str, help: &str, value: &dyn Fn(&Value) -> Option<i64>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for r in rows {
            if let Some(v) = value(r) {
                out.push_str(&format!("{name}{} {v}\n", labels(r)));
            }
        }
    };
    let live = |r: &Value| r["status"] != "removed";
    family(
        "marketo_s2s_connection_status",
        "Marketo S2S connection status: 0 ok, 1 warn, 2 crit, 3 unknown (could not be checked).",
        &|r| {
            live(r).then(|| match r["status"].as_str() {
                Some("ok") => 0,
                Some("warn") => 1,
                Some("crit") => 2,
                _ => 3,
            })
        },
    );
    family(
        "marketo_s2s_connection_failing_checks",
        "Checks of verify-sync that fail for the connection.",
        &|r| {
            (live(r) && r["error"].is_null())
                .then(|| r["failing"].as_array().map_or(0, |a| a.len() as i64))
        },
    );
    family(
        "marketo_s2s_secret_expiry_timestamp_seconds",
        "When the client secret Marketo uses expires, as a Unix timestamp.",
        &|r| live(r).then(|| epoch(&r["secret_expires_at"])).flatten(),
    );
    family(
        "marketo_s2s_connection_checked_timestamp_seconds",
        "When the connection was checked, as a Unix timestamp.",
        &|r| epoch(&r["checked_at"]),
    );
    family(
        "marketo_s2s_connection_removed",
        "1 for a state file whose connection teardown removed.",
        &|r| (!live(r)).then_some(1),
    );
    out
}

/// A label value in the exposition format: backslash, double quote and line feed escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Each path shortened to its fewest trailing components that no other path of the fleet ends
/// with, so the table stays narrow (`contoso.state.json`) yet `a/st.json` and `b/st.json` are
/// not both shown as `st.json`. A path that cannot be told apart by a suffix is shown whole,
/// as given. The JSON lines always carry the path as given.
fn short_names(paths: &[&str]) -> Vec<String> {
    let parts: Vec<Vec<String>> = paths
        .iter()
        .map(|p| {
            Path::new(p)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect()
        })
        .collect();
    let suffix = |i: usize, k: usize| -> Option<&[String]> {
        let n = parts[i].len();
        (k <= n).then(|| &parts[i][n - k..])
    };
    paths
        .iter()
        .enumerate()
        .map(|(i, whole)| {
            (1..parts[i].len())
                .find(|&k| {
                    let mine = suffix(i, k);
                    (0..paths.len()).all(|j| j == i || suffix(j, k) != mine)
                })
                .map(|k| {
                    suffix(i, k)
                        .unwrap_or_default()
                        .iter()
                        .collect::<std::path::PathBuf>()
                        .display()
                        .to_string()
                })
                .unwrap_or_else(|| whole.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("a\nb"), "a\\nb");
    }

    #[test]
    fn nagios_ranks_critical_over_unknown_over_warning() {
        let row = |s: &str| json!({"file": format!("{s}.json"), "status": s, "failing": []});
        assert_eq!(nagios(&[row("ok")], 30).1, 0);
        assert_eq!(nagios(&[row("ok"), row("warn")], 30).1, 1);
        assert_eq!(nagios(&[row("warn"), row("unknown")], 30).1, 3);
        assert_eq!(nagios(&[row("unknown"), row("crit")], 30).1, 2);
        let (line, _) = nagios(&[row("ok"), row("removed")], 30);
        assert!(line.starts_with("MARKETO-S2S OK - 1 of 2"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn short_names_are_the_shortest_suffix_no_other_path_ends_with() {
        assert_eq!(
            short_names(&["/c/contoso.json", "/c/fabrikam.json"]),
            ["contoso.json", "fabrikam.json"]
        );
        assert_eq!(
            short_names(&[
                "x/a/st.json",
                "y/a/st.json",
                "b/st.json",
                "c.json",
                "st.json"
            ]),
            [
                "x/a/st.json",
                "y/a/st.json",
                "b/st.json",
                "c.json",
                "st.json"
            ]
        );
        // A path that is a suffix of another is shown as given; so is a path given twice.
        assert_eq!(
            short_names(&["a/st.json", "x/a/st.json", "/dev/stdin", "/dev/stdin"]),
            ["a/st.json", "x/a/st.json", "/dev/stdin", "/dev/stdin"]
        );
        assert_eq!(short_names(&["/tmp/one.json"]), ["one.json"]);
    }
}
