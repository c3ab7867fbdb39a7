//! Every command a tool prints for people to paste (issue 21, item 10) — the step that writes a
//! missing key, "re-run with --yes", "re-run the same command", "run preflight again" — carries
//! the `--state` file (and the other flags) the tool was run with, so it acts on the same
//! customer when pasted.

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

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
        for tool in TOOLS.iter().chain(["teardown"].iter()) {
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
