//! How the tools meet what people type (issue 15): clap's suggestions and allowed values in the
//! one-line error style, a Dynamics URL without a scheme or pasted from the browser.

use serde_json::Value;

use crate::common::*;

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
fn a_dynamics_url_is_taken_as_people_type_it() {
    let sim = sim();
    let doc = registered(&sim);
    // The emulator serves plain http on loopback, so the scheme-less form is checked on its
    // own (it becomes https) and the pasted browser address against the emulator.
    let pasted = format!(
        "{}/main.aspx?appid=5c8a&pagetype=entitylist&etn=lead",
        sim.server.dynamics_url()
    );
    let r = sim
        .run("assign-role", &["--dynamics-url", &pasted], &doc)
        .ok();
    r.assert_stderr("looks like a browser address");
    assert_eq!(
        r.doc["dynamics"]["url"].as_str(),
        Some(sim.server.dynamics_url().as_str())
    );
    // No scheme: https. The document names no app, so the run stops before any request (and
    // never reaches for a host outside this machine).
    sim.clear();
    let r = sim
        .run(
            "assign-role",
            &["--dynamics-url", "127.0.0.1:9"],
            &serde_json::json!({}),
        )
        .code_is(2);
    r.assert_stderr("no scheme: using https://127.0.0.1:9");
    sim.assert_no_requests();
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
