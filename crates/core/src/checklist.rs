//! The read-only checklists of `preflight` and `verify-sync`: one [`Check`] per line, printed
//! the same way, recorded in the document the same way (`<section>.ok`, `.at`, `.checks`), and
//! failing with exit 6 the same way.
//!
//! A check has one of four outcomes ([`Status`]): `ok` (it holds), `warn` (it holds, but
//! something needs attention: an older solution, a secret that expires soon), `skip` (it does not
//! apply here, or this sign-in cannot read it — said so, never shown as `ok`), and `FAIL` (the
//! setup would not work; it carries its fix). Only `FAIL` fails the checklist.

use serde_json::{Value, json};

use crate::keys::ChecklistKeys;
use crate::run::{Ctx, Outcome};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Ok,
    Warn,
    Skip,
    Fail,
}

impl Status {
    /// The word scripts read (`status` in the document): `ok`, `warn`, `skip`, `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Skip => "skip",
            Status::Fail => "fail",
        }
    }
    /// The four-letter mark people read in the list: `ok  `, `warn`, `skip`, `FAIL`.
    pub fn mark(self) -> &'static str {
        match self {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Skip => "skip",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of a checklist: what was checked, what was found, and the fix when it failed.
#[derive(Debug, Clone)]
pub struct Check {
    /// A stable id for scripts (`app`, `consent`, …).
    pub id: String,
    /// The name people read.
    pub name: String,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to run or do when the check failed (or, for a warning, what would clear it).
    pub fix: Option<String>,
}

impl Check {
    fn new(id: &str, name: &str, status: Status, detail: String, fix: Option<String>) -> Check {
        Check {
            id: id.into(),
            name: name.into(),
            status,
            detail,
            fix,
        }
    }

    pub fn pass(id: &str, name: &str, detail: impl Into<String>) -> Check {
        Check::new(id, name, Status::Ok, detail.into(), None)
    }

    pub fn fail(id: &str, name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(id, name, Status::Fail, detail.into(), Some(fix.into()))
    }

    /// It holds, but needs attention; `fix` says what would clear the warning, if anything.
    pub fn warn(id: &str, name: &str, detail: impl Into<String>, fix: Option<String>) -> Check {
        Check::new(id, name, Status::Warn, detail.into(), fix)
    }

    /// It does not apply here, or cannot be read with this sign-in; `detail` says which.
    pub fn skip(id: &str, name: &str, detail: impl Into<String>) -> Check {
        Check::new(id, name, Status::Skip, detail.into(), None)
    }

    /// Whether the check does not fail the list (`ok`, `warn` or `skip`).
    pub fn ok(&self) -> bool {
        self.status != Status::Fail
    }

    /// `{id, name, ok, status, detail[, fix]}` as the document records it (`ok` is false only
    /// for `fail`, so older readers of `ok` keep working).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "name": self.name,
            "ok": self.ok(),
            "status": self.status.as_str(),
            "detail": self.detail,
        });
        if let Some(f) = &self.fix {
            v["fix"] = json!(f);
        }
        v
    }
}

/// Prints one line per check (and its fix) on stderr and records the checklist's `ok`, `at` and
/// `checks` keys in the document. When a check failed, returns what the run ends with (exit 6,
/// after the document is written): the summary naming the failed checks, and `hint`.
pub fn record(ctx: &mut Ctx, keys: ChecklistKeys, checks: &[Check], hint: &str) -> Outcome {
    print(ctx.reporter(), checks);
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.ok())
        .map(|c| c.name.as_str())
        .collect();
    ctx.doc.set(keys.ok, failed.is_empty());
    ctx.doc.set(keys.at, crate::state::now_rfc3339());
    ctx.doc.set(
        keys.checks,
        checks.iter().map(Check::to_json).collect::<Vec<_>>(),
    );
    if failed.is_empty() {
        return Outcome::Done;
    }
    Outcome::ChecksFailed {
        summary: format!(
            "{} of {} checks failed: {}",
            failed.len(),
            checks.len(),
            failed.join("; ")
        ),
        hint: hint.to_string(),
    }
}

/// One line per check on stderr: the mark in its colour (`[ok  ]` green, `[warn]` yellow,
/// `[skip]` dim, `[FAIL]` red), then the name and what was found; a fix on the next line. With
/// `-q` only the failed and warned checks are shown: they are what needs the user.
pub fn print(report: &crate::output::Reporter, checks: &[Check]) {
    use crate::output::Style;
    for (c, fix) in checks.iter().zip(fix_lines(checks)) {
        let style = match c.status {
            Status::Ok => Style::Ok,
            Status::Warn => Style::Warn,
            Status::Skip => Style::Skip,
            Status::Fail => Style::Fail,
        };
        let mark = format!("[{}]", c.status.mark());
        report.marked(style, &mark, &format!("{}: {}", c.name, c.detail));
        if let Some(f) = fix {
            report.marked(style, "      ", &format!("fix: {f}"));
        }
    }
}

/// The fix printed under each check: a fix that several checks share (one consent that adds
/// three permissions) only under the first of them, the later ones refer to it, so the list does
/// not repeat a paragraph. (The document keeps every check's own fix.)
pub fn fix_lines(checks: &[Check]) -> Vec<Option<String>> {
    let mut shown: Vec<(&str, &str)> = Vec::new();
    checks
        .iter()
        .map(|c| {
            let f = c.fix.as_deref()?;
            Some(match shown.iter().find(|(fix, _)| *fix == f) {
                Some((_, first)) => format!("as for \"{first}\" above"),
                None => {
                    shown.push((f, &c.name));
                    f.to_string()
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fail_fails_and_every_status_is_recorded_by_its_word() {
        let checks = [
            Check::pass("a", "A", "fine"),
            Check::warn("b", "B", "expires soon", None),
            Check::skip("c", "C", "not readable with this sign-in"),
            Check::fail("d", "D", "missing", "run x"),
        ];
        let oks: Vec<bool> = checks.iter().map(Check::ok).collect();
        assert_eq!(oks, [true, true, true, false]);
        let words: Vec<String> = checks
            .iter()
            .map(|c| c.to_json()["status"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(words, ["ok", "warn", "skip", "fail"]);
        assert_eq!(checks[3].to_json()["fix"], "run x");
    }

    #[test]
    fn a_shared_fix_is_printed_once_and_referred_to() {
        let checks = [
            Check::fail("a", "A", "missing P", "grant P and Q"),
            Check::fail("b", "B", "missing Q", "grant P and Q"),
            Check::fail("c", "C", "missing R", "grant R"),
        ];
        let fixes = fix_lines(&checks);
        assert_eq!(fixes[0].as_deref(), Some("grant P and Q"));
        assert_eq!(fixes[1].as_deref(), Some("as for \"A\" above"));
        assert_eq!(fixes[2].as_deref(), Some("grant R"));
        // The document keeps every check's own fix.
        assert_eq!(checks[1].to_json()["fix"], "grant P and Q");
    }
}
