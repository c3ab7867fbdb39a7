//! The pipeline contract when a step fails: the document is never lost on the way.
//!
//! `register-app | grant-consent | … | assign-role | configure-marketo | … > state.json` — when
//! assign-role fails, the app, its consent, secret and policy exist and their ids are in the
//! document assign-role read. So:
//!
//! 1. A tool whose document came on **stdin** and that fails after reading it (bad flags found
//!    later, a refused request, an interrupt) still writes the document on stdout, with what it
//!    did and `steps.<tool>.error` (`exit_code`, `kind`, `message`, `at`, and `handed_on: true`,
//!    which says the document was handed on by a failed step of a pipeline). A gate whose checks
//!    fail (preflight, exit 6) is such a failure: `preflight | register-app | …` writes nothing.
//!    verify-sync's failed checks are not: they are findings to fix with other tools, and its
//!    document is the pipeline's result.
//! 2. A tool that reads, on **stdin**, a document in which **another** tool's error is marked
//!    `handed_on` does nothing: it writes the document on stdout untouched and exits with that
//!    tool's exit code. So every later tool of the pipeline passes it on, `> state.json` keeps
//!    every id, and `set -o pipefail` reports the first failure's code.
//! 3. The failed tool itself, given that document again (`assign-role < state.json | …`),
//!    proceeds: a re-run is how one resumes, and its success clears its error.
//! 4. `--state FILE` is not a pipeline: a tool run on a state file always acts (the file keeps
//!    `steps.<tool>.error` of a failed run for people and for `--if-changed`, never as a stop).
//!
//! The rule needs no coordination between the processes of a pipeline: each one decides from the
//! document it reads.

use std::io::IsTerminal;

use serde_json::Value;

use crate::cli::CommonArgs;
use crate::error::{Error, Kind};
use crate::state::StateDoc;

/// A failed step that handed the document on: `(tool, exit code, message)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub tool: String,
    pub exit_code: u8,
    pub message: String,
}

/// The failed step of a pipeline recorded in `doc` (module rule 2), unless it is `me` (rule 3).
pub fn failed_upstream(doc: &StateDoc, me: &str) -> Option<Upstream> {
    let steps = doc.get(crate::keys::STEPS).ok()??;
    steps.iter().find_map(|(tool, entry)| {
        let err = entry.get("error")?;
        if tool == me || err.get("handed_on") != Some(&Value::Bool(true)) {
            return None;
        }
        Some(Upstream {
            tool: tool.clone(),
            exit_code: err
                .get("exit_code")
                .and_then(Value::as_u64)
                .and_then(|c| u8::try_from(c).ok())
                .filter(|c| *c != 0)
                .unwrap_or(1),
            message: err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
    })
}

/// The error a passing-through tool exits with: the failed step's exit code, one line.
pub fn passed_on(up: &Upstream) -> Error {
    Error::new(
        Kind::from_code(up.exit_code),
        format!(
            "not run: {} failed earlier in this pipeline (exit {}); the document is passed on untouched",
            up.tool, up.exit_code
        ),
    )
}

/// Whether a failing tool hands its document on (module rule 1): only a document that
/// came on stdin and goes to stdout (not `--state`, not a dry run's `--plan` file).
pub fn hands_on(common: &CommonArgs) -> bool {
    common.state.is_none() && common.plan.is_none()
}

static HANDED_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records that this failed run handed its document on (said after its error line).
pub(crate) fn handed_on() {
    HANDED_ON.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The line that tells where the document went, after the error of a failed tool that handed
/// it on (not when stdout is the terminal, where the document is in plain sight).
pub fn say_handed_on(tool: &str) {
    if !HANDED_ON.load(std::sync::atomic::Ordering::Relaxed) || std::io::stdout().is_terminal() {
        return;
    }
    crate::output::ewriteln(&format!(
        "{tool}: the document went on to stdout with steps.{tool}.error; the next tools of a pipeline pass it on untouched (save it, then resume from {tool} with it on stdin)"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_another_tools_handed_on_error_stops_a_tool() {
        let doc = StateDoc::parse(
            r#"{"steps":{
                "register-app":{"changed":true},
                "make-secret":{"error":{"exit_code":4,"message":"x"}},
                "assign-role":{"error":{"exit_code":4,"message":"refused","handed_on":true}}}}"#,
            "t",
        )
        .unwrap();
        let up = failed_upstream(&doc, "configure-marketo").unwrap();
        assert_eq!(up.tool, "assign-role");
        assert_eq!(up.exit_code, 4);
        assert_eq!(passed_on(&up).kind.code(), 4);
        // The failed tool itself resumes; an error recorded in a --state file is no stop.
        assert!(failed_upstream(&doc, "assign-role").is_none());
        let state_only = StateDoc::parse(
            r#"{"steps":{"make-secret":{"error":{"exit_code":4}}}}"#,
            "t",
        )
        .unwrap();
        assert!(failed_upstream(&state_only, "assign-role").is_none());
    }

    #[test]
    fn a_passed_on_exit_code_is_the_failed_steps_own() {
        for code in [1, 2, 3, 4, 5, 6, 130, 143] {
            let up = Upstream {
                tool: "assign-role".into(),
                exit_code: code,
                message: String::new(),
            };
            assert_eq!(passed_on(&up).kind.code(), code);
        }
        let odd = Upstream {
            tool: "assign-role".into(),
            exit_code: 77,
            message: String::new(),
        };
        assert_eq!(passed_on(&odd).kind.code(), 1);
    }
}
