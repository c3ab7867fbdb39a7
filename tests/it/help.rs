//! `--help` of every tool is the user-facing contract: snapshotted, reviewed in diffs
//! (regenerate with `SNAPSHOTS=overwrite cargo test --test it help`).

use crate::common::*;

#[test]
fn help_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    for tool in TOOLS.iter().chain(["teardown", "tenant-sim"].iter()) {
        let mut c = bare_cmd(tool, dir.path());
        c.arg("--help").env("COLUMNS", "100");
        let r = Run::from_output(c.output().unwrap()).ok();
        assert!(
            r.stdout.contains("Examples:") || r.stdout.contains("Example"),
            "{tool} --help has no example"
        );
        assert_snapshot(&format!("{tool}.help.txt"), &r.stdout);
    }
}

#[test]
fn every_tool_has_a_version_and_rejects_unknown_flags_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for tool in TOOLS.iter().chain(["teardown"].iter()) {
        let r = run_bare(tool, dir.path(), &["--version"], "", &[]).ok();
        assert!(r.stdout.starts_with(tool), "{tool}: {}", r.stdout);
        let r = run_bare(tool, dir.path(), &["--no-such-flag"], "", &[]).code_is(2);
        let first = r.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("{tool}: error: ")),
            "{tool}: {}",
            r.stderr
        );
        assert!(first.contains("--no-such-flag"), "{tool}: {first}");
    }
}
