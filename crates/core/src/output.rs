//! stderr for people: one line per action, progress on long waits (only on a terminal), traces
//! with `-v`. stdout belongs to [`crate::run`] alone, which writes the state document.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug)]
pub struct Reporter {
    tool: &'static str,
    quiet: bool,
    verbosity: u8,
    tty: bool,
    progress_shown: Mutex<bool>,
}

impl Reporter {
    pub fn new(tool: &'static str, quiet: bool, verbosity: u8) -> Self {
        Reporter {
            tool,
            quiet,
            verbosity,
            tty: std::io::stderr().is_terminal(),
            progress_shown: Mutex::new(false),
        }
    }

    pub fn tool(&self) -> &'static str {
        self.tool
    }

    pub fn verbosity(&self) -> u8 {
        self.verbosity
    }

    pub fn is_terminal(&self) -> bool {
        self.tty
    }

    /// The one-line summary of an action: `register-app: created application "X" (client id ...)`.
    pub fn say(&self, msg: &str) {
        if !self.quiet {
            self.clear_progress();
            eprintln!("{}: {msg}", self.tool);
        }
    }

    /// A warning is shown even with `-q`: it is something the user must act on.
    pub fn warn(&self, msg: &str) {
        self.clear_progress();
        eprintln!("{}: warning: {msg}", self.tool);
    }

    /// Request traces: `-v` (level 1) and `-vv` (level 2). Callers redact before calling.
    pub fn trace(&self, level: u8, msg: &str) {
        if self.verbosity >= level {
            self.clear_progress();
            eprintln!("{}: {msg}", self.tool);
        }
    }

    /// A spinner line with elapsed time, redrawn in place; only on a terminal, never with -q.
    pub fn progress(&self, msg: &str, elapsed: Duration) {
        if !self.tty || self.quiet {
            return;
        }
        const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
        let frame = FRAMES[(elapsed.as_millis() / 250) as usize % 4];
        let mut shown = self
            .progress_shown
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{frame} {}: {msg} ({:.0} s)",
            self.tool,
            elapsed.as_secs_f64()
        );
        let _ = err.flush();
        *shown = true;
    }

    pub fn clear_progress(&self) {
        let mut shown = self
            .progress_shown
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            *shown = false;
        }
    }
}

/// One line on stderr that can never fail or abort the run: a closed or full stderr
/// (`2>/dev/full`, `| head -n1`) loses the line, not the document on stdout.
pub fn ewriteln(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Text from outside (the document, a server's answer) made safe to print for a person:
/// control characters (ESC, BEL, CR, LF, TAB, DEL, C1) become visible `\u{..}` escapes, so a
/// value cannot move the cursor, recolour the terminal or forge a line of its own.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}
