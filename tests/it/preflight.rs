//! preflight: on a ready tenant it passes and writes nothing; as a signed-in admin meets it,
//! the Azure CLI's delegated token with `Directory.AccessAsUser.All` and a suitable role passes
//! the checks it can do, checks that do not apply in this tenant say `skip`, a fix several
//! checks share is printed once, the secret-lifetime policy is checked against the lifetime the
//! runbook would ask for, and every fix line can be pasted.

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

/// preflight signed in from a token cache seeded by a device-code sign-in with the Azure CLI's
/// client (a delegated token), with `args`.
fn delegated_preflight(sim: &Sim, args: &[&str]) -> Run {
    let cache = sim.path("tokens.json");
    seed_token_cache(sim, &cache);
    let mut c = bare_cmd("preflight", sim.dir());
    c.env("AZURE_TENANT_ID", sim.server.tenant_id())
        .env("AZURE_AUTHORITY_HOST", sim.url())
        .env("MKTO_S2S_GRAPH_URL", sim.url())
        .env("MKTO_S2S_DYNAMICS_URL", sim.server.dynamics_url())
        .env("MKTO_S2S_TOKEN_CACHE", &cache)
        .env("MKTO_S2S_TIMEOUT", "60s")
        .args(["--auth", "cache"])
        .args(args)
        .write_stdin("{}");
    Run::from_output(c.output().unwrap())
}

fn check<'a>(r: &'a Run, id: &str) -> &'a Value {
    r.doc["preflight"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}:\n{}", r.stderr))
}

#[test]
fn the_azure_cli_sign_in_passes_what_it_can_do_and_hrd_checks_skip_without_a_federated_domain() {
    let sim = sim();
    let r = delegated_preflight(&sim, &[]);
    // Directory.AccessAsUser.All with the admin's Global Administrator role covers reading the
    // domains and the apps; with no federated domain no policy is needed at all.
    for id in [
        "graph-register-app",
        "graph-make-secret",
        "graph-verify-sync",
        "graph-teardown",
    ] {
        assert_eq!(check(&r, id)["status"], "ok", "{id}:\n{}", r.stderr);
    }
    r.assert_stderr("acting with the signed-in admin's own directory roles");
    let hrd = r.doc["preflight"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["name"]
                .as_str()
                .unwrap()
                .starts_with("set-hrd-policy: managing")
        })
        .unwrap()
        .clone();
    assert_eq!(hrd["status"], "skip", "{}", r.stderr);
    r.assert_stderr("[skip] set-hrd-policy: managing Home Realm Discovery policies")
        .assert_stderr("no federated domain was found");
    assert!(!r.stderr.contains("[FAIL] set-hrd-policy"), "{}", r.stderr);
    // What this sign-in cannot read says skip, not ok.
    assert_eq!(check(&r, "secret-lifetime")["status"], "skip");
    sim.assert_no_writes();
}

#[test]
fn with_a_federated_domain_the_shared_fix_is_printed_once_and_referred_to() {
    let sim = sim_with(Options {
        federated: true,
        ..Default::default()
    });
    let r = delegated_preflight(&sim, &[]).code_is(6);
    for id in ["graph-verify-sync", "graph-teardown"] {
        assert_eq!(check(&r, id)["status"], "fail", "{id}:\n{}", r.stderr);
    }
    // Three checks need the same client registration: its paragraph is printed once.
    let paragraph = "Register your own public client once";
    assert_eq!(r.stderr.matches(paragraph).count(), 1, "{}", r.stderr);
    r.assert_stderr("fix: as for \"set-hrd-policy: managing Home Realm Discovery policies");
    // Each check keeps its own fix in the document.
    assert!(
        check(&r, "graph-teardown")["fix"]
            .as_str()
            .unwrap()
            .contains(paragraph)
    );
}

#[test]
fn a_secret_lifetime_policy_fails_for_the_lifetime_the_runbook_would_use() {
    let sim = sim_with(Options {
        max_secret_days: Some(180),
        ..Default::default()
    });
    let state = sim.path("state.json");
    let s = state.to_str().unwrap();
    // The default (24 months) is longer than the policy allows: preflight says so before any
    // write, with the command that passes the policy's maximum.
    let r = sim
        .run("preflight", &["--state", s], &Value::Null)
        .code_is(6);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let c = doc["preflight"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "secret-lifetime")
        .unwrap()
        .clone();
    assert_eq!(c["status"], "fail", "{}", r.stderr);
    let fix = c["fix"].as_str().unwrap();
    assert!(
        fix.contains(&format!("preflight --state {s} --expires-in 180d")),
        "{fix}"
    );
    // With the lifetime the runbook passes, it passes.
    let r = sim
        .run(
            "preflight",
            &["--state", s, "--expires-in", "90d"],
            &Value::Null,
        )
        .ok();
    r.assert_stderr("make-secret will ask for 90d, within it");
    sim.assert_no_writes();
}

#[test]
fn preflight_passes_on_a_ready_tenant_and_writes_nothing() {
    let sim = sim();
    let r = sim.run("preflight", &[], &Value::Null).ok();
    assert_eq!(r.doc["preflight"]["ok"], json!(true), "{}", r.stderr);
    let ids: Vec<&str> = r.doc["preflight"]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    for id in [
        "graph-token",
        "graph-set-hrd-policy",
        "federation",
        "secret-lifetime",
        "dataverse-user",
        "dataverse-role",
        "marketo-solution",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    r.assert_stderr("preflight: [ok  ] Marketo solution (step 1): \"Marketo Lead Management\"");
    r.assert_stderr("version 5.0.2.1");
    // password hash sync has no application permission: reported, not guessed
    r.assert_stderr("password hash sync is not readable with this sign-in");
    sim.assert_no_writes();
}
