//! Asking before a destructive write (removing a credential Marketo may be using, tearing a
//! connection down). stdin carries the state document, so the question is asked and answered on
//! the controlling terminal (`/dev/tty`); off a terminal the user must say `--yes` up front.
//! The question is escaped as every other line for people is (`output::sanitize`): it may carry
//! text a server sent.
//!
//! Every tool ends the same way when the answer is not yes: [`not_confirmed`], exit 2 (usage: the
//! same code as a missing `--yes`), with nothing sent — so a script can tell "declined" from
//! "done" whichever tool asked.

use std::io::{BufRead, IsTerminal, Write};

use crate::error::{Error, Result};

/// Whether a question can be asked: a person sees stderr and a terminal can answer.
pub fn can_prompt() -> bool {
    std::io::stderr().is_terminal() && std::fs::File::open("/dev/tty").is_ok()
}

/// `Ok(true)` to go ahead: `yes` was given (or it is a dry run, which sends nothing), or the
/// person at the terminal answered y/yes. Any other answer is [`not_confirmed`] (exit 2), so the
/// `bool` is always `true` when it is `Ok` (kept for callers written before; new code calls
/// [`require`]). Without `--yes` and without a terminal: exit 2, before anything is sent.
pub fn confirm(tool: &str, question: &str, yes: bool, dry_run: bool) -> Result<bool> {
    require(tool, question, yes, dry_run).map(|()| true)
}

/// Goes ahead only when `yes`, a dry run, or the person at the terminal answers y/yes; otherwise
/// the error that ends the run with nothing sent: [`needs_yes`] off a terminal, [`not_confirmed`]
/// after any other answer. Both are exit 2.
pub fn require(tool: &str, question: &str, yes: bool, dry_run: bool) -> Result<()> {
    if yes || dry_run || ask(tool, question)? {
        Ok(())
    } else {
        Err(not_confirmed(tool, "nothing was changed"))
    }
}

/// The answer at the terminal: y/yes is `true`.
fn ask(tool: &str, question: &str) -> Result<bool> {
    if !can_prompt() {
        return Err(needs_yes(tool, question));
    }
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| {
            Error::usage(format!("cannot ask for confirmation ({e})"))
                .with_hint(format!("re-run with --yes: {}", with_yes(tool)))
        })?;
    write_prompt(&mut &tty, tool, question);
    // The answer is read on a thread of its own, so Ctrl-C at the prompt ends the run at once
    // (as an interrupt, recording what was done) instead of waiting for Enter: the caught signal
    // does not stop a read of the terminal.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut answer = String::new();
        let read = std::io::BufReader::new(&tty)
            .read_line(&mut answer)
            .map(|_| answer);
        let _ = tx.send(read);
    });
    let interrupted = || {
        let _ = writeln!(std::io::stderr());
        crate::interrupt::error("waiting for the answer at the prompt")
    };
    let answer = loop {
        if crate::interrupt::signalled().is_some() {
            return Err(interrupted());
        }
        match rx.recv_timeout(std::time::Duration::from_millis(100)) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                break Err(std::io::Error::other("the terminal closed"));
            }
            Ok(read) => {
                // A read that ended without a whole line (the terminal's input flushed by
                // Ctrl-C) may be a moment ahead of the signal: give it that moment.
                let whole = matches!(&read, Ok(line) if line.ends_with('\n'));
                if !whole && waited_for_signal() {
                    return Err(interrupted());
                }
                break read;
            }
        }
    }
    .map_err(|e| Error::usage(format!("cannot read the answer from the terminal ({e})")))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// The prompt line, with the question escaped: it may hold text a server sent (a credential's
/// key id, a domain name), which must not drive the terminal. A failed write is ignored (the
/// read of the answer then fails and says so).
fn write_prompt(w: &mut impl Write, tool: &str, question: &str) {
    let question = crate::output::sanitize(question);
    let _ = write!(w, "{tool}: {question} Type yes to continue: ");
    let _ = w.flush();
}

/// "No" at the prompt, for every tool: exit 2, `not confirmed: <outcome>` (e.g. "nothing was
/// removed"), with the way on.
pub fn not_confirmed(tool: &str, outcome: &str) -> Error {
    Error::usage(format!("not confirmed: {outcome}")).with_hint(format!(
        "re-run and answer yes, or pass --yes: {}",
        with_yes(tool)
    ))
}

/// Waits up to a third of a second for a signal; whether one arrived.
fn waited_for_signal() -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_millis(300) {
        if crate::interrupt::signalled().is_some() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

/// The refusal off a terminal: nothing is sent (exit 2).
pub fn needs_yes(tool: &str, question: &str) -> Error {
    Error::usage(format!(
        "{question} needs confirmation, and there is no terminal to ask on"
    ))
    .with_hint(format!(
        "to confirm, re-run with --yes: {}; or add --dry-run to see what it would do",
        with_yes(tool)
    ))
}

/// This run's command with `--yes` added, to paste.
fn with_yes(tool: &str) -> String {
    let same = crate::hint::same_command();
    if same.is_empty() {
        format!("{tool} --yes")
    } else {
        format!("{same} --yes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declining_is_one_exit_code_everywhere() {
        let e = not_confirmed("make-secret", "nothing was removed");
        assert_eq!(e.kind.code(), 2);
        assert_eq!(e.message, "not confirmed: nothing was removed");
        assert!(e.hint.as_deref().unwrap_or("").contains("--yes"));
        assert_eq!(needs_yes("teardown", "q").kind.code(), 2);
        // --yes and --dry-run never ask.
        assert!(require("t", "q", true, false).is_ok());
        assert!(require("t", "q", false, true).is_ok());
        assert!(confirm("t", "q", true, false).unwrap());
    }

    #[test]
    fn the_prompt_escapes_control_and_bidi_characters_of_the_question() {
        let mut out = Vec::new();
        write_prompt(
            &mut out,
            "make-secret",
            "remove 1 credential (k\u{1b}]0;owned\u{7}\r\u{202e}x\u{9b}2J); Marketo stops?",
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.chars().any(crate::output::needs_escape),
            "raw control characters reached the terminal: {text:?}"
        );
        assert!(
            text.starts_with("make-secret: remove 1 credential (k\\x1b]0;owned"),
            "{text}"
        );
        assert!(
            text.ends_with("Marketo stops? Type yes to continue: "),
            "{text}"
        );
    }
}
