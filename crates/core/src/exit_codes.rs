//! The exit codes, in one place: the design's table (design.md, "Output, errors, exit codes"),
//! what [`crate::error::Kind::code`] returns, what every tool's `--help` (and so its man page)
//! lists, and what the README's table says (a test compares them).

/// Every exit code and its meaning.
pub const TABLE: &[(u8, &str)] = &[
    (0, "done (whether or not anything changed)"),
    (1, "unexpected failure (I/O, a bug)"),
    (
        2,
        "usage or bad input (flags, document, empty pipe, another tenant or org); no write sent",
    ),
    (
        3,
        "sign-in failed (no credential, a rejected secret or certificate)",
    ),
    (
        4,
        "the service refused the request (a 4xx retrying cannot fix, e.g. a missing permission)",
    ),
    (
        5,
        "not in time (5xx or throttling past --timeout, replication, a locked --state file)",
    ),
    (6, "a check failed (verify-sync, preflight)"),
    (
        130,
        "interrupted by Ctrl-C (SIGINT); what the run did is kept and the resume command is printed",
    ),
    (143, "stopped by SIGTERM; as 130"),
];

/// The `Exit codes:` block of a tool's `--help`: every code the tool can return (6 only with
/// `checks`), each with the common meaning and, where the tool adds one, what it means there.
pub fn help(checks: bool, notes: &[(u8, &str)]) -> String {
    let mut out = String::from("Exit codes:");
    for (code, meaning) in TABLE {
        if *code == 6 && !checks {
            continue;
        }
        out.push_str(&format!("\n  {code}  {meaning}"));
        for (c, note) in notes {
            if c == code {
                out.push_str(&format!("; here: {note}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    #[test]
    fn the_table_is_what_the_error_kinds_return() {
        for (kind, code) in [
            (Kind::Internal, 1),
            (Kind::Usage, 2),
            (Kind::Auth, 3),
            (Kind::Refused, 4),
            (Kind::Timeout, 5),
            (Kind::VerifyFailed, 6),
            (Kind::Interrupted, 130),
        ] {
            assert_eq!(kind.code(), code);
            assert!(TABLE.iter().any(|(c, _)| *c == code));
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
