//! The exit codes as people read them: every code with its meaning, from [`Kind`] (which owns
//! both), for every tool's `--help` (and so its man page) and the README's table (a test
//! compares them).

use crate::error::Kind;

/// What exit 0 means.
pub const DONE: &str = "done (whether or not anything changed)";

/// Every exit code and its meaning, 0 first.
pub fn all() -> impl Iterator<Item = (u8, &'static str)> {
    std::iter::once((0, DONE)).chain(Kind::ALL.into_iter().map(|k| (k.code(), k.meaning())))
}

/// The `Exit codes:` block of a tool's `--help`: every code the tool can return (6 only with
/// `checks`), each with the common meaning and, where the tool adds one, what it means there.
pub fn help(checks: bool, notes: &[(u8, &str)]) -> String {
    let mut out = String::from("Exit codes:");
    for (code, meaning) in all() {
        if code == Kind::ChecksFailed.code() && !checks {
            continue;
        }
        out.push_str(&format!("\n  {code}  {meaning}"));
        for (c, note) in notes {
            if *c == code {
                out.push_str(&format!("; here: {note}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once_in_order() {
        let codes: Vec<u8> = all().map(|(c, _)| c).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 130, 143]);
        for kind in Kind::ALL {
            assert_eq!(Kind::from_code(kind.code()), kind);
        }
    }

    #[test]
    fn help_lists_notes_and_hides_6_without_checks() {
        let h = help(false, &[(4, "e.g. no role")]);
        assert!(h.contains("  4  the service refused") && h.contains("; here: e.g. no role"));
        assert!(!h.contains("  6  "));
        assert!(help(true, &[]).contains("  6  a check failed"));
    }
}
