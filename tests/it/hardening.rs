//! Issue 12: what an adversarial review broke, one test (or more) per class. Every test here
//! failed on the code before the fix; each says which finding it covers.

use std::process::Stdio;

use serde_json::{Value, json};

use crate::common::*;

/// The tool's document as a command would get it, with the emulator's admin signed in.
fn tool_command(sim: &Sim, tool: &str) -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin(tool));
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", sim.dir())
        .env("XDG_CACHE_HOME", sim.dir().join(".cache"))
        .current_dir(sim.dir())
        .envs(sim.env());
    c
}

// ---- finding 3: human output can never fail a run; no panic on outside numbers ---------------

#[test]
fn a_failed_write_to_stderr_never_loses_the_document() {
    let sim = sim();
    for args in [vec![], vec!["-v"]] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let out = tool_command(&sim, "register-app")
            .args(&args)
            .stdin(Stdio::null())
            .stderr(Stdio::from(full))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        let doc: Value = serde_json::from_slice(&out.stdout).expect("the document on stdout");
        assert!(doc["app"]["client_id"].is_string(), "{doc}");
    }
}

// ---- finding 4: nothing from outside reaches the terminal raw ---------------------------------

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
