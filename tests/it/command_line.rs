//! The command line every tool offers: clap's own checks on each `Cli`; `--help` as the
//! user-facing contract, snapshotted through snapbox and reviewed in diffs (regenerate with
//! `SNAPSHOTS=overwrite cargo test --test it help_snapshots`); `--version`; usage errors in one
//! line with clap's suggestions; the one exit-code table; completions and man pages from the
//! binaries; and which binaries are installed.

use serde_json::Value;

use crate::common::*;

/// Each tool's clap definition, by its name in `s2s_core::tools::TOOLS` (`clis.rs`): a tool
/// added to the table fails [`cli_is_well_formed_for_every_tool`] until it is named there too.
fn command_of(tool: &str) -> clap::Command {
    crate::clis::command(tool)
        .unwrap_or_else(|| panic!("{tool} is in s2s_core::tools::TOOLS but has no Cli in clis.rs"))
}

/// clap's own consistency checks (conflicting or duplicate flags, bad defaults, …) on every
/// tool's `Cli`, which clap otherwise makes only when that flag is parsed.
#[test]
fn cli_is_well_formed_for_every_tool() {
    for tool in TOOLS {
        let cmd = command_of(tool.name);
        assert_eq!(cmd.get_name(), tool.name);
        cmd.debug_assert();
    }
}

#[test]
fn help_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    for tool in tools::names().chain(["tenant-sim"]) {
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
    for tool in tools::names() {
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
    for tool in tools::names() {
        let mut c = bare_cmd(tool, dir.path());
        c.arg("--help").env("COLUMNS", "200");
        let r = Run::from_output(c.output().unwrap()).ok();
        for (code, meaning) in s2s_core::exit_codes::all() {
            let line = format!("  {code}  {meaning}");
            let checks = matches!(tool, "verify-sync" | "preflight");
            if code == 6 && !checks {
                continue;
            }
            assert!(r.stdout.contains(&line), "{tool} --help lacks {line:?}");
        }
    }
}

#[test]
fn usage_errors_keep_clap_suggestions_and_allowed_values() {
    let sim = sim();
    let r = sim
        .run("register-app", &["--tenat", "x"], &Value::Null)
        .code_is(2);
    r.assert_stderr("register-app: error: unexpected argument '--tenat' found")
        .assert_stderr("did you mean `--tenant`?");
    let r = sim
        .run("set-hrd-policy", &["--mode", "Always"], &Value::Null)
        .code_is(2);
    r.assert_stderr("possible values: auto, always, remove");
    let r = sim
        .run("register-app", &["--cloud", "gcc"], &Value::Null)
        .code_is(2);
    r.assert_stderr("possible values: public, usgov, usgovhigh, usgovdod, china");
    assert_eq!(r.stderr.lines().count(), 2, "{}", r.stderr);
    sim.assert_no_requests();
}

#[test]
fn completions_and_man_pages_come_from_the_binaries() {
    let dir = tempfile::tempdir().unwrap();
    for tool in tools::names() {
        let r = run_bare(
            tool,
            dir.path(),
            &["--generate", "completions-bash"],
            "",
            &[],
        )
        .ok();
        assert!(
            r.stdout
                .contains(&format!("complete -F _{}", tool.replace('-', "__")))
                || r.stdout.contains("complete -F"),
            "{tool}: {}",
            r.stdout
        );
        assert!(r.stdout.contains("--state"), "{tool}");
        assert!(r.stderr.is_empty(), "{tool}: {}", r.stderr);
    }
    let r = run_bare("verify-sync", dir.path(), &["--generate", "man"], "", &[]).ok();
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH verify-sync"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("fleet"));
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let r = run_bare(
            "make-secret",
            dir.path(),
            &[&format!("--generate=completions-{shell}")],
            "",
            &[],
        )
        .ok();
        assert!(r.stdout.contains("rotate"), "{shell}: {}", r.stdout);
    }
    // Not a flag people need in --help; an unknown value is a usage error.
    let r = run_bare("make-secret", dir.path(), &["--help"], "", &[]).ok();
    assert!(!r.stdout.contains("--generate"));
    run_bare(
        "make-secret",
        dir.path(),
        &["--generate", "nonsense"],
        "",
        &[],
    )
    .code_is(2);
}

#[test]
fn the_bench_binary_is_not_installed_beside_the_tools() {
    // `cargo install --path .` installs the root package's binaries: bench is not one.
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let bins: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|b| b.lines().find(|l| l.starts_with("name")))
        .collect();
    assert!(!bins.is_empty());
    assert!(bins.iter().all(|l| !l.contains("bench")), "{bins:?}");
}
