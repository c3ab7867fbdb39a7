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

#[test]
fn one_exit_code_table_for_the_readme_and_every_help() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split("## Exit codes").nth(1).unwrap();
    let rows: Vec<(u8, String)> = section
        .lines()
        .skip_while(|l| !l.starts_with("| code"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0].parse().unwrap(), cells[1].to_string())
        })
        .collect();
    let table: Vec<(u8, String)> = s2s_core::exit_codes::all()
        .map(|(c, m)| (c, m.to_string()))
        .collect();
    assert_eq!(
        rows, table,
        "README's exit codes differ from s2s_core::exit_codes::all()"
    );
    // Every tool's help lists the table's codes (6 only where there are checks).
    let dir = tempfile::tempdir().unwrap();
    for tool in TOOLS.iter().chain(["teardown"].iter()) {
        let mut c = bare_cmd(tool, dir.path());
        c.arg("--help").env("COLUMNS", "200");
        let r = Run::from_output(c.output().unwrap()).ok();
        for (code, meaning) in s2s_core::exit_codes::all() {
            let line = format!("  {code}  {meaning}");
            let checks = matches!(*tool, "verify-sync" | "preflight");
            if code == 6 && !checks {
                continue;
            }
            assert!(r.stdout.contains(&line), "{tool} --help lacks {line:?}");
        }
    }
}
