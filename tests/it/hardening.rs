//! Issue 12: what an adversarial review broke, one test (or more) per class. Every test here
//! failed on the code before the fix; each says which finding it covers.

use std::process::Stdio;
use std::time::{Duration, Instant};

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

fn domain_requests(sim: &Sim) -> Vec<Value> {
    sim.requests()
        .into_iter()
        .filter(|r| r["path"] == "/v1.0/domains")
        .collect()
}

// ---- finding 1: a bearer token goes only to the origin it was issued for --------------------

#[test]
fn a_graph_next_link_to_another_origin_is_refused_with_exit_4_and_gets_no_token() {
    let sim = federated();
    let doc = registered(&sim);
    let port = sim.url().rsplit(':').next().unwrap().to_string();
    for link in [
        // Another origin served by the same emulator: the Dynamics port.
        format!("{}/v1.0/domains?$skiptoken=x", sim.server.dynamics_url()),
        // The same server under another host name, and another scheme.
        format!("http://localhost:{port}/v1.0/domains?$skiptoken=x"),
        format!("https://127.0.0.1:{port}/v1.0/domains?$skiptoken=x"),
        "http://evil.example/v1.0/domains?$skiptoken=x".to_string(),
    ] {
        sim.clear();
        sim.server.add_fault(json!({
            "path_prefix": "/v1.0/domains", "method": "GET", "status": 200,
            "body": {"value": [], "@odata.nextLink": link},
        }));
        let r = sim.run("set-hrd-policy", &[], &doc).code_is(4);
        r.assert_stderr("next-page link for domains");
        r.assert_stderr("points outside");
        assert!(!r.stderr.contains("skiptoken"), "{}", r.stderr);
        // The first page only: the link was never followed, so no token went with it.
        assert_eq!(domain_requests(&sim).len(), 1, "{link}");
        assert!(
            sim.requests().iter().all(|q| q["service"] != "dataverse"),
            "{link}: a request reached the Dynamics origin"
        );
        sim.assert_no_writes();
    }
}

#[test]
fn a_graph_next_link_that_loops_ends_at_once_with_exit_4() {
    let sim = federated();
    let doc = registered(&sim);
    sim.clear();
    sim.server.add_fault(json!({
        "path_prefix": "/v1.0/domains", "method": "GET", "status": 200, "count": 50,
        "body": {"value": [], "@odata.nextLink": format!("{}/v1.0/domains?$skiptoken=loop", sim.url())},
    }));
    let t0 = Instant::now();
    let r = sim.run("set-hrd-policy", &[], &doc).code_is(4);
    r.assert_stderr("repeats a page already read");
    assert_eq!(domain_requests(&sim).len(), 2);
    assert!(t0.elapsed() < Duration::from_secs(30));
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
