//! Asking before a destructive write (removing a credential Marketo may be using, tearing a
//! connection down). stdin carries the state document, so the question is read from the
//! controlling terminal; off a terminal the user must say `--yes` up front.

use std::io::{BufRead, IsTerminal, Write};

use crate::error::{Error, Result};

/// `Ok(true)` to go ahead: `yes` was given, or the person at the terminal answered y/yes.
/// Without `--yes` and without a terminal: exit 2 naming `flag`, before anything is sent.
pub fn confirm(tool: &str, question: &str, yes: bool, dry_run: bool) -> Result<bool> {
    if yes || dry_run {
        return Ok(true);
    }
    if !std::io::stderr().is_terminal() {
        return Err(needs_yes(tool, question));
    }
    let Ok(tty) = std::fs::File::open("/dev/tty") else {
        return Err(needs_yes(tool, question));
    };
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{tool}: {question} [y/N] ");
    let _ = err.flush();
    drop(err);
    let mut answer = String::new();
    std::io::BufReader::new(tty)
        .read_line(&mut answer)
        .map_err(|e| Error::usage(format!("cannot read the answer from the terminal ({e})")))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// The refusal off a terminal: nothing is sent (exit 2).
pub fn needs_yes(tool: &str, question: &str) -> Error {
    Error::usage(format!(
        "{question} needs confirmation, and there is no terminal to ask on"
    ))
    .with_hint(format!(
        "re-run {tool} with --yes to confirm, or with --dry-run to see what it would do"
    ))
}
