//! `verify-sync --fleet FILE...`: the morning check of a consultant's customers. Every state
//! file is checked as `verify-sync --state FILE` would (with its own tenant, org and sign-in),
//! at most `--jobs` at once, without writing any file. stderr gets a table, stdout one JSON
//! object per file: `file`, `tenant`, `client_id`, `ok`, `failing` (`id`, `name`, `detail`,
//! `fix`), `secret_expires_at`, `secret_days_left` — or `error` when the file could not be
//! checked at all (core reads each file with `fsutil::read_regular`: a FIFO or pipe is an
//! error line at once, never a read that blocks the run). Exit 6 when any connection fails a
//! check (a secret expiring within `--warn-days` is a failed check), is unreadable, or cannot
//! be verified.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use s2s_core::output::{Reporter, sanitize};
use s2s_core::{Ctx, Result};

use crate::checks::all_checks;
use crate::{Cli, read_inputs, roles_of};

pub fn main(cli: Cli) -> ExitCode {
    // Each document's own progress lines would interleave: only warnings and the table show.
    let report = Arc::new(Reporter::new("verify-sync", true, cli.common.verbose));
    let table = Reporter::new("verify-sync", cli.common.quiet, 0);
    let results =
        match s2s_core::run::many(&cli, &cli.fleet, usize::from(cli.jobs), &report, check_one) {
            Ok(r) => r,
            Err(e) => {
                s2s_core::run::report_error("verify-sync", &e);
                return e.exit_code();
            }
        };
    let lines: Vec<Value> = results
        .into_iter()
        .map(|(file, outcome)| match outcome {
            Ok(v) => v,
            Err(e) => json!({
                "file": file.display().to_string(),
                "ok": false,
                "error": {"exit_code": e.kind.code(), "message": e.to_string(), "hint": e.hint},
            }),
        })
        .collect();
    print_table(&table, &lines);
    if let Err(e) = s2s_core::run::emit_lines(&lines) {
        s2s_core::run::report_error("verify-sync", &e);
        return e.exit_code();
    }
    let failing = lines.iter().filter(|l| l["ok"] != json!(true)).count();
    if failing > 0 {
        table.warn(&format!(
            "{failing} of {} connection(s) need attention",
            lines.len()
        ));
        ExitCode::from(6)
    } else {
        table.say(&format!("all {} connection(s) pass", lines.len()));
        ExitCode::SUCCESS
    }
}

/// The checks of one document, as one JSON object.
async fn check_one(ctx: &mut Ctx, cli: &Cli) -> Result<Value> {
    let input = read_inputs(ctx, cli)?;
    let checks = all_checks(ctx, &input, &roles_of(cli), cli.warn_days).await?;
    let failing: Vec<Value> = checks
        .iter()
        .filter(|c| !c.ok())
        .map(|c| json!({"id": c.id, "name": c.name, "detail": c.detail, "fix": c.fix}))
        .collect();
    let file = ctx
        .state_file()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let expires = ctx.doc.get_str("secret.expires_at")?.map(str::to_string);
    let days_left = expires
        .as_deref()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .map(|t| (t - OffsetDateTime::now_utc()).whole_days());
    Ok(json!({
        "file": file,
        "tenant": ctx.config().tenant.clone(),
        "client_id": input.client_id,
        "ok": failing.is_empty(),
        "failing": failing,
        "secret_expires_at": expires,
        "secret_days_left": days_left,
    }))
}

fn print_table(r: &Reporter, lines: &[Value]) {
    let cell = |v: &Value| sanitize(v.as_str().unwrap_or("-")).into_owned();
    let paths: Vec<&str> = lines
        .iter()
        .map(|l| l["file"].as_str().unwrap_or("?"))
        .collect();
    let names: Vec<String> = short_names(&paths)
        .iter()
        .map(|n| sanitize(n).into_owned())
        .collect();
    let width = names.iter().map(String::len).max().unwrap_or(4).max(4);
    r.say(&format!(
        "{:<width$}  {:<36}  {:<36}  {:<6}  {:<10}  FAILING",
        "FILE", "TENANT", "CLIENT ID", "STATUS", "SECRET"
    ));
    for (l, name) in lines.iter().zip(&names) {
        let status = if l["ok"] == json!(true) { "ok" } else { "FAIL" };
        let secret = match l["secret_days_left"].as_i64() {
            Some(d) => format!("{d} days"),
            None => "-".to_string(),
        };
        let failing = match &l["error"] {
            Value::Object(e) => format!(
                "cannot check: {}",
                sanitize(e.get("message").and_then(Value::as_str).unwrap_or("")).into_owned()
            ),
            _ => l["failing"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|c| format!("{} (fix: {})", cell(&c["id"]), cell(&c["fix"])))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
        };
        r.say(&format!(
            "{name:<width$}  {:<36}  {:<36}  {status:<6}  {secret:<10}  {failing}",
            cell(&l["tenant"]),
            cell(&l["client_id"]),
        ));
    }
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
    use super::short_names;

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
