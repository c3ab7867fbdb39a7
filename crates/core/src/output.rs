//! stderr for people: one line per action, progress on long waits (only on a terminal), traces
//! with `-v`. stdout belongs to [`crate::run`] alone, which writes the state document.
//!
//! Two rules hold for every byte written here (issue 12, findings 3 and 4):
//! - a failed write to stderr never fails the run: the state document on stdout is what
//!   matters, so human output is written with [`ewriteln`], which ignores errors instead of
//!   panicking like `eprintln!` (a panic is an abort with `panic = "abort"`, and the document
//!   is lost after real writes);
//! - text from outside (the state document, service answers, file names) never reaches the
//!   terminal raw: [`sanitize`] escapes every control character, so an ESC sequence or a forged
//!   line (`\n  Client ID : ...`) shows up as visible escapes.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Off a terminal (CI logs, a file), a wait is announced when it starts and then at least this
/// often, so a long publish or replication wait never looks like a hang.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Reporter {
    tool: &'static str,
    quiet: bool,
    verbosity: u8,
    tty: bool,
    /// The spinner can redraw its line: a terminal that reads escape sequences (on a Windows
    /// console once they are switched on; otherwise waits get heartbeat lines).
    spinner: bool,
    progress_shown: Mutex<bool>,
    /// Off a terminal: the elapsed time of the wait at its last heartbeat line.
    heartbeat: Mutex<Option<Duration>>,
    /// The run's deadline, for "gives up in" on heartbeat lines.
    deadline: Mutex<Option<Instant>>,
}

impl Reporter {
    pub fn new(tool: &'static str, quiet: bool, verbosity: u8) -> Self {
        let tty = std::io::stderr().is_terminal();
        #[cfg(windows)]
        let spinner = tty && crate::win::enable_vt_on_stderr();
        #[cfg(not(windows))]
        let spinner = tty;
        Reporter {
            tool,
            quiet,
            verbosity,
            tty,
            spinner,
            progress_shown: Mutex::new(false),
            heartbeat: Mutex::new(None),
            deadline: Mutex::new(None),
        }
    }

    /// The deadline heartbeat lines count down to (`--timeout`).
    pub fn set_deadline(&self, deadline: Instant) {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(deadline);
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
            ewriteln(&format!("{}: {}", self.tool, sanitize(msg)));
        }
    }

    /// The result the user ran the tool for (verify-sync's Marketo step-3 block): shown even
    /// with `-q`, like a warning, but without the warning label.
    pub fn result(&self, msg: &str) {
        self.clear_progress();
        ewriteln(&format!("{}: {}", self.tool, sanitize(msg)));
    }

    /// A warning is shown even with `-q`: it is something the user must act on.
    pub fn warn(&self, msg: &str) {
        self.clear_progress();
        ewriteln(&format!("{}: warning: {}", self.tool, sanitize(msg)));
    }

    /// Request traces: `-v` (level 1) and `-vv` (level 2). Callers redact before calling.
    pub fn trace(&self, level: u8, msg: &str) {
        if self.verbosity >= level {
            self.clear_progress();
            ewriteln(&format!("{}: {}", self.tool, sanitize(msg)));
        }
    }

    /// A wait's progress: on a terminal a spinner line with the elapsed time, redrawn in place;
    /// elsewhere a heartbeat line when the wait starts and at least every [`HEARTBEAT`] (what is
    /// awaited, the time so far, when the run gives up). Never with -q.
    pub fn progress(&self, msg: &str, elapsed: Duration) {
        if self.quiet {
            return;
        }
        if !self.spinner {
            self.heartbeat(msg, elapsed);
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
            "\r\x1b[2K{frame} {}: {} ({:.0} s)",
            self.tool,
            sanitize(msg),
            elapsed.as_secs_f64()
        );
        let _ = err.flush();
        *shown = true;
    }

    fn heartbeat(&self, msg: &str, elapsed: Duration) {
        let mut last = self.heartbeat.lock().unwrap_or_else(|p| p.into_inner());
        let due = match *last {
            None => true,
            // A smaller elapsed time than last printed: a new wait has started.
            Some(at) => elapsed < at || elapsed >= at + HEARTBEAT,
        };
        if !due {
            return;
        }
        *last = Some(elapsed);
        drop(last);
        let left = self
            .deadline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|d| d.saturating_duration_since(Instant::now()));
        let tail = match left {
            Some(l) => format!(
                "{:.0} s so far, gives up in {:.0} s",
                elapsed.as_secs_f64(),
                l.as_secs_f64()
            ),
            None => format!("{:.0} s so far", elapsed.as_secs_f64()),
        };
        ewriteln(&format!(
            "{}: waiting: {} ({tail})",
            self.tool,
            sanitize(msg)
        ));
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

/// Writes one line to stderr and ignores any failure (a full disk, a closed pipe, a closed
/// descriptor): human output must never be able to fail a run. The line is written with a
/// single `write_all` on the locked handle, so concurrent lines do not interleave.
///
/// The caller sanitizes text from outside first ([`sanitize`]); [`Reporter`] does it for every
/// message it is given.
pub fn ewriteln(line: &str) {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(buf.as_bytes());
    let _ = err.flush();
}

/// `text` with every character that can move the cursor, recolour, retitle or beep a terminal,
/// or start a fake line, replaced by a visible escape: C0 controls (`\n`, `\r`, `\t`, ESC, BEL,
/// ...), DEL, C1 controls (U+0080–U+009F, e.g. the 8-bit CSI U+009B), the Unicode line and
/// paragraph separators and the bidirectional overrides (which reorder what is shown). Other
/// text, including non-ASCII letters, is unchanged; borrowed when nothing needs escaping.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs_escape(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// True for a character [`sanitize`] escapes: one that must not reach a terminal raw. Validators
/// of printed values (e.g. a username) refuse these.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// A URL for people: the parsed, normalised form (the parser drops CR, LF and TAB that the raw
/// text may hold, and percent-encodes the rest), never the raw text of a document value;
/// `(not a valid URL)` when it does not parse.
pub fn url_for_humans(raw: &str) -> String {
    match url::Url::parse(raw.trim()) {
        Ok(u) => sanitize(u.as_str().trim_end_matches('/')).into_owned(),
        Err(_) => "(not a valid URL)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_every_control_character() {
        assert_eq!(sanitize("Marketo Integration"), "Marketo Integration");
        assert!(matches!(sanitize("Маркето 日本語"), Cow::Borrowed(_)));
        assert_eq!(
            sanitize("a\nb\rc\td\u{1b}[31me\u{7}f\u{7f}g\u{9b}h\u{202e}i"),
            "a\\nb\\rc\\td\\x1b[31me\\x07f\\x7fg\\x9bh\\u{202e}i"
        );
        for c in (0u32..0x20).chain(0x7f..0xa0) {
            let c = char::from_u32(c).unwrap_or_default();
            assert!(
                !sanitize(&format!("x{c}y")).chars().any(char::is_control),
                "{:?} passed through",
                c
            );
        }
    }

    #[test]
    fn a_forged_step3_line_stays_on_its_line() {
        let forged = "admin@contoso.com\nverify-sync:   Client ID    : 00000000-0000";
        let shown = sanitize(forged);
        assert_eq!(shown.lines().count(), 1);
    }

    #[test]
    fn urls_are_shown_parsed_never_raw() {
        assert_eq!(
            url_for_humans("https://contoso.crm.dynamics.com/"),
            "https://contoso.crm.dynamics.com"
        );
        // The URL parser drops CR, LF and TAB: what is shown is what is used.
        assert_eq!(
            url_for_humans("https://contoso.crm\r\n.dynamics.com"),
            "https://contoso.crm.dynamics.com"
        );
        assert_eq!(url_for_humans("\u{1b}]0;x"), "(not a valid URL)");
    }

    #[test]
    fn ewriteln_never_panics() {
        // On a closed or full stderr the write fails; it must be ignored, not panic.
        ewriteln("s2s-core test line");
    }
}
