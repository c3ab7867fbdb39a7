//! Faults, crashes and concurrency: the chain must always end in the one correct state — one
//! app, one service principal, one grant, one usable secret, at most one HRD policy, one enabled
//! application user holding the role, the Marketo config set — with no duplicate object and no
//! leaked secret, under random faults with replication lag, a lost answer to every write, a
//! crash at every request boundary, and two chains started together.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

const APP_UNIQUE_NAME: &str = "marketo-integration";

/// Asserts the converged state through the emulator's own view (`/_sim/state`, which faults
/// never touch). Returns the number of password credentials on the app.
#[track_caller]
fn assert_converged(sim: &Sim, doc: &Value, federated: bool) -> usize {
    let st = sim.state();
    let data = |k: &str| -> Vec<Value> { st[k].as_array().cloned().unwrap_or_default() };
    let apps: Vec<Value> = data("applications")
        .into_iter()
        .filter(|a| a["data"]["uniqueName"] == APP_UNIQUE_NAME)
        .collect();
    assert_eq!(apps.len(), 1, "applications: {apps:#?}");
    let app = &apps[0];
    let client_id = app["data"]["appId"].as_str().unwrap();
    assert_eq!(doc["app"]["client_id"], json!(client_id));

    let sps: Vec<Value> = data("service_principals")
        .into_iter()
        .filter(|s| s["data"]["appId"] == client_id)
        .collect();
    assert_eq!(sps.len(), 1, "service principals: {sps:#?}");
    let sp_id = sps[0]["data"]["id"].as_str().unwrap().to_string();

    let grants: Vec<Value> = data("oauth2_permission_grants")
        .into_iter()
        .filter(|g| g["data"]["clientId"] == json!(sp_id))
        .collect();
    assert_eq!(grants.len(), 1, "grants: {grants:#?}");
    assert!(
        grants[0]["data"]["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "user_impersonation")
    );
    assert_eq!(grants[0]["data"]["consentType"], "AllPrincipals");

    let policies = data("home_realm_discovery_policies");
    let assigned: Vec<Value> = data("hrd_assignments")
        .into_iter()
        .filter(|a| a["sp_id"] == json!(sp_id))
        .collect();
    if federated {
        assert_eq!(policies.len(), 1, "HRD policies: {policies:#?}");
        assert_eq!(assigned.len(), 1, "assignments: {assigned:#?}");
    } else {
        assert!(policies.is_empty() && assigned.is_empty());
    }

    // The saved secret is a real, usable one.
    let file = doc["secret"]["file"].as_str().unwrap();
    let secret = std::fs::read_to_string(file).unwrap();
    // The test's own request meets the random faults too: retry those, as the tools do.
    let (mut status, mut body) = (0, Value::Null);
    for _ in 0..50 {
        (status, body) = sim.token_for(client_id, secret.trim(), &sim.server.dynamics_url());
        if ![0, 429, 503, 504].contains(&status) {
            break;
        }
    }
    assert_eq!(status, 200, "the saved secret does not sign in: {body}");

    let dv = &st["dataverse"];
    let users: Vec<Value> = dv["rows"]["systemuser"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| {
            u["applicationid"] == json!(client_id) && u["deletedstate"].as_i64().unwrap_or(0) == 0
        })
        .cloned()
        .collect();
    assert_eq!(users.len(), 1, "application users: {users:#?}");
    let user_id = users[0]["systemuserid"].as_str().unwrap();
    assert_eq!(users[0]["isdisabled"], false);
    let roles: Vec<String> = dv["user_roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p[0] == json!(user_id))
        .map(|p| p[1].as_str().unwrap().to_string())
        .collect();
    let sync_roles: Vec<&Value> = dv["rows"]["role"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["name"] == "Marketo Sync User"
                && roles.contains(&r["roleid"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(sync_roles.len(), 1, "roles of the app user: {roles:?}");
    let config = dv["rows"]["mkto_marketoconfig"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["mkto_name"] == "Default")
        .cloned()
        .unwrap();
    assert_eq!(config["_mkto_marketouser_value"], json!(user_id));
    app["secrets"].as_array().map(Vec::len).unwrap_or(0)
}

fn run_chain(sim: &Sim, args: &[&str]) -> Value {
    sim.setup_chain(args)
}

/// One chaos run per seed: 30 % of all requests fail (429 with Retry-After, 503, 504, dropped
/// connections, answers lost after the write was committed), with replication lag.
fn chaos_seeds(seeds: std::ops::RangeInclusive<u64>) -> usize {
    let mut faults = 0;
    for seed in seeds {
        let sim = sim_with(Options {
            federated: true,
            replication_lag_ms: 300,
            fault_rate: 0.3,
            fault_seed: seed,
            retry_after_secs: 0.02,
            ..Default::default()
        });
        let doc = run_chain(&sim, &[]);
        let creds = assert_converged(&sim, &doc, true);
        assert_eq!(creds, 1, "seed {seed}: more than one password credential");
        let f = sim
            .requests()
            .iter()
            .filter(|r| !r["fault"].is_null())
            .count();
        assert!(f > 3, "seed {seed} injected only {f} faults");
        let lost = sim
            .requests()
            .iter()
            .filter(|r| r["fault"] == "lost_response")
            .count();
        // Visible with --nocapture; docs/reliability.md quotes these figures.
        eprintln!(
            "chaos seed {seed}: {} requests, {f} faults ({lost} lost answers), converged",
            sim.requests().len()
        );
        faults += f;
    }
    faults
}

// Twenty seeds in CI, in four tests so they run side by side (they mostly wait).
#[test]
fn random_faults_with_replication_lag_converge_seeds_1_to_5() {
    chaos_seeds(1..=5);
}
#[test]
fn random_faults_with_replication_lag_converge_seeds_6_to_10() {
    chaos_seeds(6..=10);
}
#[test]
fn random_faults_with_replication_lag_converge_seeds_11_to_15() {
    chaos_seeds(11..=15);
}
#[test]
fn random_faults_with_replication_lag_converge_seeds_16_to_20() {
    chaos_seeds(16..=20);
}

#[test]
fn every_write_survives_a_lost_answer() {
    let writes: &[(&str, &str)] = &[
        ("/v1.0/applications(", "PATCH"),
        ("/v1.0/servicePrincipals(", "PATCH"),
        ("/v1.0/oauth2PermissionGrants", "POST"),
        ("/v1.0/applications/", "POST"),
        ("/v1.0/policies/homeRealmDiscoveryPolicies", "POST"),
        ("/v1.0/servicePrincipals/", "POST"),
        ("/api/data/v9.2/systemusers", "POST"),
        ("/api/data/v9.2/systemusers(", "POST"),
        ("/api/data/v9.2/mkto_marketoconfigs(", "PATCH"),
        ("/api/data/v9.2/PublishAllXml", "POST"),
    ];
    for (prefix, method) in writes {
        let sim = sim_with(Options {
            federated: true,
            replication_lag_ms: 200,
            ..Default::default()
        });
        sim.server.add_fault(
            json!({"path_prefix": prefix, "method": method, "kind": "lost_response", "count": 1}),
        );
        let doc = run_chain(&sim, &[]);
        let fired = sim.requests().iter().any(|r| r["fault"] == "lost_response");
        assert!(fired, "{method} {prefix}: the fault never fired");
        let creds = assert_converged(&sim, &doc, true);
        assert_eq!(creds, 1, "{method} {prefix}: duplicate credential");
    }
}

#[test]
fn add_sync_filter_writes_survive_a_lost_answer() {
    for (prefix, method) in [
        ("/api/data/v9.2/EntityDefinitions", "POST"),
        ("/api/data/v9.2/PublishXml", "POST"),
    ] {
        let sim = sim();
        sim.server.add_fault(
            json!({"path_prefix": prefix, "method": method, "kind": "lost_response", "count": 1}),
        );
        let r = sim
            .run("add-sync-filter", &["--entity", "lead"], &Value::Null)
            .ok();
        assert_eq!(r.doc["sync_filter"]["entities"][0]["entity"], "lead");
        let (s, attr) = sim.dataverse(
            "GET",
            "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='new_synctomkto')",
            None,
        );
        assert_eq!(s, 200, "{attr}");
        sim.clear();
        sim.run("add-sync-filter", &["--entity", "lead"], &r.doc)
            .ok();
        sim.assert_no_writes();
    }
}

/// Runs one tool and kills it (SIGKILL) as soon as the emulator holds its stalled request.
/// Returns its document if it finished before stalling.
fn run_or_kill(sim: &Sim, tool: &str, args: &[String], stdin: &Value) -> Option<Value> {
    let mut c = Command::new(bin(tool));
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", sim.dir())
        .envs(sim.env());
    c.current_dir(sim.dir())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin_pipe = child.stdin.take().unwrap();
        let text = if stdin.is_null() {
            String::new()
        } else {
            stdin.to_string()
        };
        stdin_pipe.write_all(text.as_bytes()).unwrap();
    }
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(status.success(), "{tool} failed before the stall");
            return Some(serde_json::from_slice(&out.stdout).unwrap());
        }
        if sim.requests().iter().any(|r| r["fault"] == "stall") {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{tool} neither finished nor stalled"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills the chain at request boundary `n`, then re-runs from the last saved document.
fn crash_at(n: u64) {
    let sim = sim_with(Options {
        federated: true,
        stall_at: Some(n),
        ..Default::default()
    });
    let secret = sim.path("marketo.secret");
    let steps = chain_steps(secret.to_str().unwrap());
    let mut doc = Value::Null;
    let mut killed = false;
    for (tool, args) in &steps {
        match run_or_kill(&sim, tool, args, &doc) {
            Some(d) => doc = d,
            None => {
                killed = true;
                // Resume: the same step with the same input, then the rest of the chain.
                let r = sim.run(
                    tool,
                    &args.iter().map(String::as_str).collect::<Vec<_>>(),
                    &doc,
                );
                assert_eq!(
                    r.code, 0,
                    "re-run of {tool} after a crash at request {n}:\n{}",
                    r.stderr
                );
                doc = r.doc;
            }
        }
    }
    assert!(killed || n > 60, "request {n} was never reached");
    let creds = assert_converged(&sim, &doc, true);
    if creds > 1 {
        // A secret added by the killed run was never saved: the re-run reports it and
        // --revoke-others removes it.
        let r = sim
            .run(
                "make-secret",
                &[
                    "--secret-file",
                    secret.to_str().unwrap(),
                    "--revoke-others",
                    "--yes",
                ],
                &doc,
            )
            .ok();
        assert_eq!(assert_converged(&sim, &r.doc, true), 1, "crash at {n}");
    }
}

fn chain_length() -> u64 {
    let sim = sim_with(Options {
        federated: true,
        ..Default::default()
    });
    run_chain(&sim, &[]);
    sim.requests().len() as u64
}

#[test]
fn a_crash_at_every_request_boundary_resumes_without_duplicates_first_half() {
    let n = chain_length();
    eprintln!(
        "crash test: the chain makes {n} requests; killing at 1..={}",
        n / 2
    );
    for i in 1..=n / 2 {
        crash_at(i);
    }
}

#[test]
fn a_crash_at_every_request_boundary_resumes_without_duplicates_second_half() {
    let n = chain_length();
    for i in n / 2 + 1..=n {
        crash_at(i);
    }
}

#[test]
fn two_chains_for_the_same_app_started_together_converge_on_one_app() {
    let sim = sim_with(Options {
        federated: true,
        replication_lag_ms: 200,
        ..Default::default()
    });
    // Two runs of one connection (the same setup id: e.g. a CI retry while the first still
    // runs); two *different* connections never share an app silently (tests/it/ownership.rs).
    let setup = json!({"setup": {"id": "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"}});
    let run = |name: &str| {
        let secret = sim.path(&format!("{name}.secret"));
        let mut doc = setup.clone();
        for (tool, args) in chain_steps(secret.to_str().unwrap()) {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = sim.run(tool, &a, &doc);
            assert_eq!(r.code, 0, "{name}: {tool} failed:\n{}", r.stderr);
            doc = r.doc;
        }
        doc
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| run("a"));
        let b = s.spawn(|| run("b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a["app"]["client_id"], b["app"]["client_id"]);
    assert_eq!(
        a["dynamics"]["application_user_id"],
        b["dynamics"]["application_user_id"]
    );
    // Each chain keeps its own secret (both work); everything else is one of each.
    let creds = assert_converged(&sim, &a, true);
    assert_converged(&sim, &b, true);
    assert_eq!(creds, 2);
}

#[test]
fn no_secret_or_token_in_any_output_at_vv_under_faults() {
    let sim = sim_with(Options {
        federated: true,
        fault_rate: 0.2,
        fault_seed: 7,
        retry_after_secs: 0.02,
        replication_lag_ms: 200,
        ..Default::default()
    });
    let secret_file = sim.path("marketo.secret");
    let state = sim.path("state.json");
    let mut all = String::new();
    for (tool, mut args) in chain_steps(secret_file.to_str().unwrap()) {
        args.extend([
            "-vv".to_string(),
            "--state".into(),
            state.to_str().unwrap().into(),
        ]);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = sim.run(tool, &a, &Value::Null);
        assert_eq!(r.code, 0, "{tool}:\n{}", r.stderr);
        all.push_str(&r.all_output());
    }
    let r = sim
        .run(
            "verify-sync",
            &["-vv", "--state", state.to_str().unwrap()],
            &Value::Null,
        )
        .ok();
    all.push_str(&r.all_output());
    all.push_str(&std::fs::read_to_string(&state).unwrap());
    let client_secret = std::fs::read_to_string(&secret_file).unwrap();
    assert!(
        all.contains("Authorization: (redacted)"),
        "the -vv trace is missing"
    );
    assert!(
        !all.contains(&sim.server.admin_client_secret()),
        "the admin secret leaked"
    );
    assert!(
        !all.contains(client_secret.trim()),
        "the client secret leaked"
    );
    assert!(!all.contains("eyJ"), "a token leaked");
    assert_eq!(s2s_core::fsutil::mode_of(&secret_file).unwrap(), 0o600);
    assert_eq!(s2s_core::fsutil::mode_of(&state).unwrap(), 0o600);
}
