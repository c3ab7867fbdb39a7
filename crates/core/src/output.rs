//! stderr for people: one line per action, progress on long waits (only on a terminal), traces
//! with `-v`. stdout belongs to [`crate::run`] alone, which writes the state document.
//!
//! Two rules hold for every byte written here:
//! - a failed write to stderr never fails the run: the state document on stdout is what
//!   matters, so human output is written with [`ewriteln`], which ignores errors instead of
//!   panicking like `eprintln!` (a panic is an abort with `panic = "abort"`, and the document
//!   is lost after real writes);
//! - text from outside (the state document, service answers, file names) never reaches the
//!   terminal raw: [`sanitize`] escapes every control character, so an ESC sequence or a forged
//!   line (`\n  Client ID : ...`) shows up as visible escapes.
//!
//! Colour: failures red, warnings yellow, passed checks green, skipped ones dim and the
//! Marketo step-3 block bold, only where a person reads it — stderr on a terminal, `NO_COLOR`
//! unset or empty (<https://no-color.org>), `TERM` not `dumb` — or with `--color always`.
//! `--color never` (and `NO_COLOR` under `auto`) writes no escape byte at all. Colour is added
//! after [`sanitize`], so text from outside can never bring its own.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::cli::ColorChoice;

/// Off a terminal (CI logs, a file), a wait is announced when it starts and then at least this
/// often, so a long publish or replication wait never looks like a hang.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Reporter {
    tool: &'static str,
    quiet: bool,
    verbosity: u8,
    tty: bool,
    /// The width of the spinner line on screen (0: none), so it can be erased without an
    /// escape sequence when colour is off.
    progress_shown: Mutex<usize>,
    /// Off a terminal: the elapsed time of the wait at its last heartbeat line.
    heartbeat: Mutex<Option<Duration>>,
    /// The run's deadline, for "gives up in" on heartbeat lines.
    deadline: Mutex<Option<Instant>>,
    /// A line that must come before any other this run prints (the target line of a tool that
    /// writes), held until the first line or the first request, so that an input error found
    /// before either is still the first thing the user reads.
    preamble: Mutex<Option<String>>,
}

impl Reporter {
    pub fn new(tool: &'static str, quiet: bool, verbosity: u8) -> Self {
        Reporter {
            tool,
            quiet,
            verbosity,
            tty: std::io::stderr().is_terminal(),
            progress_shown: Mutex::new(0),
            heartbeat: Mutex::new(None),
            deadline: Mutex::new(None),
            preamble: Mutex::new(None),
        }
    }

    /// Holds `line` to be said before any other line of this run (see [`Reporter::preamble`]).
    pub fn set_preamble(&self, line: String) {
        *self.preamble.lock().unwrap_or_else(|p| p.into_inner()) = Some(line);
    }

    /// Says the held preamble now, if there is one (core calls this before the first request).
    pub fn flush_preamble(&self) {
        let line = self
            .preamble
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let (Some(line), false) = (line, self.quiet) {
            ewriteln(&format!("{}: {}", self.tool, sanitize(&line)));
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
    /// with `-q`, like a warning, but without the warning label; bold on a colour terminal.
    pub fn result(&self, msg: &str) {
        self.clear_progress();
        ewriteln(&format!(
            "{}: {}",
            self.tool,
            paint(Style::Result, &sanitize(msg))
        ));
    }

    /// A line of the result in the colour of `style` (a failed step of `verify-sync --offline`
    /// in red, an owed publish in yellow); shown even with `-q`, like [`Reporter::result`].
    pub fn result_styled(&self, style: Style, msg: &str) {
        self.clear_progress();
        ewriteln(&format!("{}: {}", self.tool, paint(style, &sanitize(msg))));
    }

    /// A warning is shown even with `-q`: it is something the user must act on.
    pub fn warn(&self, msg: &str) {
        self.clear_progress();
        ewriteln(&format!(
            "{}: {} {}",
            self.tool,
            paint(Style::Warn, "warning:"),
            sanitize(msg)
        ));
    }

    /// A line that starts with a marked word (a checklist's `[FAIL]`, `[warn]`…): the mark in
    /// its colour, the rest sanitised. With `-q` only failures and warnings are shown.
    pub fn marked(&self, style: Style, mark: &str, msg: &str) {
        if self.quiet && !matches!(style, Style::Fail | Style::Warn) {
            return;
        }
        self.clear_progress();
        ewriteln(&format!(
            "{}: {} {}",
            self.tool,
            paint(style, mark),
            sanitize(msg)
        ));
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
        self.flush_preamble();
        if !self.tty {
            self.heartbeat(msg, elapsed);
            return;
        }
        const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
        let frame = FRAMES[(elapsed.as_millis() / 250) as usize % 4];
        let mut shown = self
            .progress_shown
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let line = format!(
            "{frame} {}: {} ({:.0} s)",
            self.tool,
            sanitize(msg),
            elapsed.as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{}{line}", erase(*shown));
        let _ = err.flush();
        *shown = line.chars().count();
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
        // "waiting: waiting for …" said the same word twice.
        let msg = sanitize(msg);
        let prefix = if msg.starts_with("waiting") {
            ""
        } else {
            "waiting: "
        };
        ewriteln(&format!("{}: {prefix}{msg} ({tail})", self.tool));
    }

    /// Erases the spinner line (if one is shown) and says the held preamble: every line this
    /// reporter prints starts here.
    pub fn clear_progress(&self) {
        self.erase_progress();
        self.flush_preamble();
    }

    fn erase_progress(&self) {
        let mut shown = self
            .progress_shown
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *shown > 0 {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "{}", erase(*shown));
            let _ = err.flush();
            *shown = 0;
        }
    }
}

/// Erases a spinner line of `width` characters: the terminal's "erase line" when colour is
/// on, else spaces over it (`NO_COLOR` means no escape byte at all).
fn erase(width: usize) -> String {
    if color() {
        "\r\x1b[2K".to_string()
    } else {
        format!("\r{:width$}\r", "")
    }
}

/// What a coloured piece of text means; [`paint`] picks the colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A failed check, an error: bold red.
    Fail,
    /// A warning: yellow.
    Warn,
    /// A passed check: green.
    Ok,
    /// A check that did not apply or could not be read: dim.
    Skip,
    /// What the user ran the tool for (the Marketo step-3 block): bold.
    Result,
}

static COLOR: OnceLock<bool> = OnceLock::new();

/// Sets, once per process, whether stderr gets colour (`--color`); the first call wins.
pub fn set_color(choice: ColorChoice) {
    let _ = COLOR.set(match choice {
        ColorChoice::Always => {
            let _ = stderr_takes_escapes();
            true
        }
        ColorChoice::Never => false,
        ColorChoice::Auto => auto_color(
            std::io::stderr().is_terminal() && stderr_takes_escapes(),
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
        ),
    });
}

/// A Windows console reads escape sequences (colour, the spinner's "erase line") only once
/// they are switched on (Windows 10 1511 and later); where that fails colour stays off, and the
/// spinner erases its line with spaces. Elsewhere a terminal reads them.
fn stderr_takes_escapes() -> bool {
    #[cfg(windows)]
    {
        crate::win::enable_vt_on_stderr()
    }
    #[cfg(not(windows))]
    {
        true
    }
}

/// `--color auto`: a terminal, `NO_COLOR` unset or empty (no-color.org: "when present and not
/// an empty string"), and a terminal that is not `dumb`.
fn auto_color(
    tty: bool,
    no_color: Option<&std::ffi::OsStr>,
    term: Option<&std::ffi::OsStr>,
) -> bool {
    tty && no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
}

/// Whether this process colours stderr (`--color auto` unless set).
pub fn color() -> bool {
    *COLOR.get_or_init(|| {
        auto_color(
            std::io::stderr().is_terminal() && stderr_takes_escapes(),
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
        )
    })
}

/// `text` in the colour of `style` when [`color`] is on, else unchanged. `text` must already
/// be safe to print ([`sanitize`]d, or our own words).
pub fn paint(style: Style, text: &str) -> Cow<'_, str> {
    if !color() || text.trim().is_empty() {
        return Cow::Borrowed(text);
    }
    let sgr = match style {
        Style::Fail => "1;31",
        Style::Warn => "33",
        Style::Ok => "32",
        Style::Skip => "2",
        Style::Result => "1",
    };
    Cow::Owned(format!("\x1b[{sgr}m{text}\x1b[0m"))
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

/// JSON text (as serde_json writes it) for a terminal: every character for which
/// [`needs_escape`] is true inside a string — DEL, C1 controls, line separators, bidi overrides, which serde_json
/// leaves raw (it escapes only U+0000–U+001F) — becomes a `\uXXXX` escape (a surrogate pair
/// past the BMP). Still valid JSON with the same value; the layout's own line breaks are kept.
///
/// Working on the text is sound because serde_json writes every C0 control inside a string
/// escaped, so a raw `\n` is the pretty layout's, and everything else that needs escaping can
/// only stand inside a string (the JSON grammar outside strings is printable ASCII).
pub fn json_for_terminal(json: &str) -> Cow<'_, str> {
    let escape = |c: char| c != '\n' && needs_escape(c);
    if !json.chars().any(escape) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if !escape(c) {
            out.push(c);
            continue;
        }
        let mut units = [0u16; 2];
        for u in c.encode_utf16(&mut units) {
            out.push_str(&format!("\\u{u:04x}"));
        }
    }
    Cow::Owned(out)
}

/// A URL for people: the parsed, normalised form (the parser drops CR, LF and TAB that the raw
/// text may hold, and percent-encodes the rest) without user info (a password), never the raw
/// text of a document value; `(not a valid URL)` when it does not parse.
pub fn url_for_humans(raw: &str) -> String {
    match url::Url::parse(raw.trim()) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            sanitize(u.as_str().trim_end_matches('/')).into_owned()
        }
        Err(_) => "(not a valid URL)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_for_a_terminal_escapes_what_a_terminal_obeys_and_keeps_the_value() {
        let hostile = "a\u{7f}b\u{85}c\u{9b}2J\u{202e}d\u{2028}e\u{2066}f\u{1b}[31m\n\u{1f600}é";
        let v = serde_json::json!({
            "app": {"display_name": hostile, "n": 1, "list": [hostile, null]},
            hostile: true,
        });
        for text in [
            serde_json::to_string(&v).unwrap(),
            serde_json::to_string_pretty(&v).unwrap(),
        ] {
            let shown = json_for_terminal(&text);
            assert!(
                !shown.chars().any(|c| c != '\n' && needs_escape(c)),
                "{shown:?}"
            );
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&shown).unwrap(),
                v,
                "{shown}"
            );
            assert!(
                shown.contains("\\u007f") && shown.contains("\\u202e"),
                "{shown}"
            );
            // The layout and ordinary non-ASCII text are untouched.
            assert_eq!(shown.lines().count(), text.lines().count());
            assert!(shown.contains("\u{1f600}é"), "{shown}");
        }
        // A surrogate pair past the BMP still reads back as the same character.
        let mut out = String::new();
        for u in '\u{e0001}'.encode_utf16(&mut [0u16; 2]) {
            out.push_str(&format!("\\u{u:04x}"));
        }
        assert_eq!(
            serde_json::from_str::<String>(&format!("\"{out}\"")).unwrap(),
            "\u{e0001}"
        );
        let plain = r#"{"a":"b"}"#;
        assert!(matches!(json_for_terminal(plain), Cow::Borrowed(_)));
    }

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
        assert_eq!(
            url_for_humans("https://u:S3cret@contoso.crm.dynamics.com/"),
            "https://contoso.crm.dynamics.com"
        );
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(auto_color(true, None, Some(OsStr::new("xterm"))));
        assert!(auto_color(true, Some(OsStr::new("")), None));
        assert!(!auto_color(true, Some(OsStr::new("1")), None));
        assert!(!auto_color(false, None, None));
        assert!(!auto_color(true, None, Some(OsStr::new("dumb"))));
    }

    #[test]
    fn ewriteln_never_panics() {
        // On a closed or full stderr the write fails; it must be ignored, not panic.
        ewriteln("s2s-core test line");
    }
}
