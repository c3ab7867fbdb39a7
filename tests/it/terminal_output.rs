//! What people read on stderr: it can never fail a run (a full disk keeps the document), carries
//! no control character from outside (the document, a service's error), is coloured only on a
//! terminal or when asked and never with `NO_COLOR`, says what a wait waits for, keeps messages
//! free of a broken string continuation's indentation, and every command it offers to paste
//! carries the `--state` file the tool was run with.

use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

#[test]
fn a_failed_write_to_stderr_never_loses_the_document() {
    for args in [vec![], vec!["-v"]] {
        // A tenant each: a second run from nothing would meet the first one's app.
        let sim = sim();
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let out = sim
            .null_stdin_cmd("register-app")
            .args(&args)
            .stderr(Stdio::from(full))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        let doc: Value = serde_json::from_slice(&out.stdout).expect("the document on stdout");
        assert!(doc["app"]["client_id"].is_string(), "{doc}");
    }
}

#[test]
fn control_characters_from_the_document_are_escaped_in_the_step3_block() {
    let sim = sim();
    let mut doc = sim.setup_chain(&[]);
    doc["dynamics"]["username"] =
        json!("admin@contoso.com\n  Client ID    : forged\u{1b}]0;owned\u{7}\u{1b}[2J\r");
    let r = sim.run("verify-sync", &[], &doc);
    assert!(
        !r.stderr
            .chars()
            .any(|c| c != '\n' && (c.is_control() || c == '\u{202e}')),
        "a control character reached stderr:\n{:?}",
        r.stderr
    );
    assert!(
        !r.stderr
            .lines()
            .any(|l| l.trim_start().starts_with("Client ID    : forged")),
        "a forged line:\n{}",
        r.stderr
    );
}

#[test]
fn control_characters_in_a_service_error_are_escaped() {
    let sim = sim();
    sim.server.add_fault(json!({
        "path_prefix": "/v1.0/applications", "status": 403,
        "body": {"error": {
            "code": "Authorization_RequestDenied\u{1b}[8m",
            "message": "Insufficient privileges\u{1b}]0;owned\u{7}\rregister-app: done, all fine",
        }},
    }));
    let r = sim.run("register-app", &[], &Value::Null).code_is(4);
    assert!(
        !r.stderr.chars().any(|c| c != '\n' && c.is_control()),
        "a control character reached stderr:\n{:?}",
        r.stderr
    );
    r.assert_stderr("Insufficient privileges\\x1b]0;owned\\x07\\rregister-app");
}

#[test]
fn colour_only_on_a_terminal_or_when_asked_and_never_with_no_color() {
    let sim = sim();
    let doc = registered(&sim);
    // Off a terminal: no escape byte by default.
    let r = sim.run("verify-sync", &["--settle", "0"], &doc).code_is(6);
    assert!(!r.stderr.contains('\u{1b}'), "{:?}", r.stderr);
    assert!(r.stderr.contains("[FAIL]"), "{}", r.stderr);
    // --color always: failures red, the error label too.
    let r = sim
        .run("verify-sync", &["--settle", "0", "--color", "always"], &doc)
        .code_is(6);
    assert!(
        r.stderr.contains("\u{1b}[1;31m[FAIL]\u{1b}[0m"),
        "{:?}",
        r.stderr
    );
    assert!(
        r.stderr.contains("\u{1b}[32m[ok  ]\u{1b}[0m"),
        "{:?}",
        r.stderr
    );
    // --color never beats a terminal.
    let verify = bin("verify-sync");
    let file = sim.path("doc.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let mut env: Vec<(&str, String)> = sim.env();
    env.extend([
        ("PATH", "/usr/bin:/bin".to_string()),
        ("HOME", sim.dir().display().to_string()),
        ("TERM", "xterm".to_string()),
    ]);
    let line = format!("{} --settle 0 --state {}", verify.display(), file.display());
    let (_, screen) = on_terminal(sim.dir(), &format!("{line} --color never"), &env);
    assert!(screen.contains("[FAIL]"), "{screen}");
    assert!(!screen.contains('\u{1b}'), "{screen:?}");
    // On a terminal by default: coloured.
    let (_, screen) = on_terminal(sim.dir(), &line, &env);
    assert!(screen.contains("\u{1b}[1;31m"), "{screen:?}");
}

#[test]
fn a_wait_off_a_terminal_says_what_it_waits_for() {
    let sim = sim_with(tenant_sim::Options {
        replication_lag_ms: 1500,
        ..Default::default()
    });
    let r = sim.run("register-app", &[], &Value::Null).ok();
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with("register-app: waiting"))
        .unwrap_or_else(|| panic!("no waiting line in\n{}", r.stderr));
    assert!(line.contains("s so far, gives up in "), "{line}");
    // Quiet means quiet.
    let sim = sim_with(tenant_sim::Options {
        replication_lag_ms: 1500,
        ..Default::default()
    });
    let r = sim.run("register-app", &["-q"], &Value::Null).ok();
    assert!(!r.stderr.contains("waiting"), "{}", r.stderr);
}

/// Replication waits say what they wait for, not a service's refusal with its URL: a normal
/// wait must not read like a failure (nor repeat "waiting").
#[test]
fn replication_wait_lines_read_as_waits_not_failures() {
    let sim = sim_with(tenant_sim::Options {
        federated: true,
        replication_lag_ms: 1500,
        ..Default::default()
    });
    let mut doc = Value::Null;
    let mut stderr = String::new();
    for (tool, args) in chain_steps("marketo.secret").into_iter().take(4) {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = sim.run(tool, &a, &doc).ok();
        stderr.push_str(&r.stderr);
        doc = r.doc;
    }
    let waits: Vec<&str> = stderr.lines().filter(|l| l.contains("waiting")).collect();
    assert!(!waits.is_empty(), "no wait with 1.5 s of lag:\n{stderr}");
    for w in &waits {
        assert!(!w.contains("answered"), "{w}");
        assert!(!w.contains("[request id"), "{w}");
        assert!(!w.contains("waiting: waiting"), "{w}");
        assert!(!w.contains("%20") && !w.contains("%27"), "{w}");
    }
}

/// A message split over source lines without a `\` kept the next line's indentation ("accepts
/// <18 spaces> app-only tokens"): no string literal of the tools may hold such a run of spaces.
#[test]
fn no_message_keeps_the_indentation_of_a_broken_string_continuation() {
    fn scan(dir: &Path, bad: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                scan(&p, bad);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for (n, line) in text.lines().enumerate() {
                    if line.trim_start().starts_with("//") {
                        continue;
                    }
                    // The odd-numbered pieces between quotes are inside string literals.
                    for lit in line.split('"').skip(1).step_by(2) {
                        // A letter or digit, five or more spaces, a letter.
                        let b = lit.as_bytes();
                        let run = (0..b.len()).any(|i| {
                            let spaces = b[i + 1..].iter().take_while(|c| **c == b' ').count();
                            b[i].is_ascii_alphanumeric()
                                && spaces >= 5
                                && b.get(i + 1 + spaces).is_some_and(u8::is_ascii_alphabetic)
                        });
                        if run {
                            bad.push(format!("{}:{}: {lit}", p.display(), n + 1));
                        }
                    }
                }
            }
        }
    }
    let mut bad = Vec::new();
    scan(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("crates"),
        &mut bad,
    );
    assert!(bad.is_empty(), "{bad:#?}");
}

/// Every `<tool> --…` in a hint or fix line of `r` is `<tool> --state s.json …`; returns how
/// many commands were checked.
#[track_caller]
fn every_command_carries_the_state_file(r: &Run) -> usize {
    let mut seen = 0;
    for line in r
        .stderr
        .lines()
        .filter(|l| l.contains("hint:") || l.contains("fix:"))
    {
        for tool in tools::names() {
            for (i, _) in line.match_indices(&format!("{tool} --")) {
                let rest = &line[i..];
                assert!(
                    rest.starts_with(&format!("{tool} --state s.json")),
                    "a command without --state:\n{line}"
                );
                seen += 1;
            }
        }
    }
    seen
}

#[test]
fn hints_carry_the_state_file() {
    let sim = sim_with(Options {
        admin_permissions: ["Application.ReadWrite.All", "Domain.Read.All"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    });
    let state = sim.path("s.json");
    let mut checked = 0;

    // A key an earlier step writes: the hint is that step's command.
    std::fs::write(
        &state,
        json!({"tenant": {"id": sim.server.tenant_id()}}).to_string(),
    )
    .unwrap();
    let r = sim
        .run("make-secret", &["--state", "s.json"], &Value::Null)
        .code_is(2);
    r.assert_stderr("written by register-app: run it first (`register-app --state s.json`)");
    checked += every_command_carries_the_state_file(&r);

    // A confirmation off a terminal: the same command with --yes.
    let doc = registered(&sim);
    std::fs::write(&state, doc.to_string()).unwrap();
    let r = sim
        .run(
            "make-secret",
            &["--state", "s.json", "--revoke-others"],
            &Value::Null,
        )
        .code_is(2);
    r.assert_stderr("make-secret --state s.json --revoke-others --yes");
    checked += every_command_carries_the_state_file(&r);

    // Publishing with no document: the same command with --yes.
    std::fs::write(&state, "{}").unwrap();
    let r = sim
        .run(
            "publish-customizations",
            &["--state", "s.json"],
            &Value::Null,
        )
        .code_is(2);
    r.assert_stderr("publish-customizations --state s.json --yes");
    checked += every_command_carries_the_state_file(&r);

    // Giving up at the deadline: the same command, to re-run later.
    std::fs::write(&state, doc.to_string()).unwrap();
    sim.server
        .add_fault(json!({"path_prefix": "/v1.0/", "status": 503, "count": 100000}));
    let r = sim
        .run(
            "grant-consent",
            &["--state", "s.json", "--timeout", "2s"],
            &Value::Null,
        )
        .code_is(5);
    r.assert_stderr("grant-consent --state s.json --timeout 2s");
    checked += every_command_carries_the_state_file(&r);

    // preflight's fix lines: run preflight again, as it was run.
    let sim = sim_with(Options {
        admin_permissions: vec!["Application.ReadWrite.All".into()],
        ..Default::default()
    });
    std::fs::write(sim.path("s.json"), "{}").unwrap();
    let r = sim
        .run("preflight", &["--state", "s.json"], &Value::Null)
        .code_is(6);
    r.assert_stderr("run preflight again: preflight --state s.json");
    checked += every_command_carries_the_state_file(&r);
    assert!(checked >= 6, "only {checked} commands seen");
}
