//! Rotating the secret Marketo uses: `--rotate` keeps the old secret working until it is
//! retired; `--retire-old` never adds a credential and never removes the one in use, only this
//! setup's previous secret (or keys named with `--retire`), after the step-3 block; a kill at any
//! point of `--rotate` and a re-run end with exactly the old and the new credential; no secret in
//! any output.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;
use crate::secret_files::paste;

/// A registered app and its first secret, in `state.json` and `marketo.secret` of the sim's
/// folder; `setup` gives the document a setup id first.
fn with_secret(sim: &Sim, setup: bool) -> PathBuf {
    let state = sim.path("state.json");
    let start = if setup {
        with_setup_id(json!({}))
    } else {
        json!({})
    };
    std::fs::write(&state, start.to_string()).unwrap();
    let s = state.to_str().unwrap();
    sim.run("register-app", &["--state", s], &Value::Null).ok();
    if !setup {
        // register-app mints a setup id when there is none: drop it again, and the tags it
        // wrote, so the document and the app are as an earlier version left them.
        let mut doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
        doc.as_object_mut().unwrap().remove("setup");
        std::fs::write(&state, doc.to_string()).unwrap();
        for path in [
            format!("applications/{}", doc["app"]["object_id"].as_str().unwrap()),
            format!("servicePrincipals/{}", service_principal_id(&doc)),
        ] {
            sim.graph_expect(204, "PATCH", &path, Some(json!({"tags": []})));
        }
    }
    sim.run(
        "make-secret",
        &["--state", s, "--secret-file", "marketo.secret"],
        &Value::Null,
    )
    .ok();
    state
}

fn secret_value(sim: &Sim) -> String {
    std::fs::read_to_string(sim.path("marketo.secret")).unwrap()
}

fn signs_in(sim: &Sim, doc: &Value, value: &str) -> bool {
    sim.token_for(&client_id(doc), value, &sim.url()).0 == 200
}

fn key_set(sim: &Sim, doc: &Value) -> Vec<String> {
    let mut k: Vec<String> = credentials(sim, doc)
        .iter()
        .map(|c| c["keyId"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k
}

/// Every byte a run printed, and the state file, must be free of every secret value seen.
#[track_caller]
fn assert_no_secret(outputs: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!outputs.contains(s.trim()), "a secret leaked");
    }
}

#[test]
fn retire_old_never_adds_a_credential_and_never_removes_the_one_in_use() {
    let sim = sim();
    let state = with_secret(&sim, true);
    let s = state.to_str().unwrap();
    let mut out = String::new();
    let first = read_doc(&state);
    let k0 = first["secret"]["key_id"].as_str().unwrap().to_string();
    let v0 = secret_value(&sim);

    // A fresh secret has nothing to retire: nothing is sent, nothing changes.
    sim.clear();
    let r = sim
        .run(
            "make-secret",
            &["--state", s, "--retire-old", "--yes"],
            &Value::Null,
        )
        .ok();
    r.assert_stderr("nothing to retire");
    out.push_str(&r.all_output());
    sim.assert_no_requests();
    assert_eq!(key_set(&sim, &first), vec![k0.clone()]);

    // The secret in use is never a --retire target.
    sim.clear();
    sim.run(
        "make-secret",
        &["--state", s, "--retire", &k0, "--yes"],
        &Value::Null,
    )
    .code_is(2)
    .assert_stderr("names the secret in use");
    sim.assert_no_requests();

    // Rotate: the old one keeps working, the hint names the state file.
    let r = sim
        .run("make-secret", &["--state", s, "--rotate"], &Value::Null)
        .ok();
    out.push_str(&r.all_output());
    let rotated = read_doc(&state);
    let k1 = rotated["secret"]["key_id"].as_str().unwrap().to_string();
    let v1 = secret_value(&sim);
    assert_eq!(rotated["secret"]["previous_key_id"], json!(k0));
    let hint = format!("make-secret --state {s} --retire-old --yes");
    r.assert_stderr(&format!("once Marketo uses the new one, run: {hint}"));
    assert_eq!(key_set(&sim, &rotated).len(), 2);

    // The file damaged: --retire-old refuses before any request (adding a secret and revoking
    // the one Marketo holds would break the connection).
    std::fs::write(
        sim.path("marketo.secret"),
        format!("{}-damaged-copy", &v1[..3]),
    )
    .unwrap();
    sim.clear();
    let r = sim
        .run(
            "make-secret",
            &["--state", s, "--retire-old", "--yes"],
            &Value::Null,
        )
        .code_is(2);
    r.assert_stderr("does not hold the recorded secret")
        .assert_stderr("no credential is retired");
    sim.assert_no_requests();
    std::fs::write(sim.path("marketo.secret"), &v1).unwrap();

    // The tool's own hint, pasted right after the rotation: the step-3 block first, then only
    // the previous secret goes.
    sim.clear();
    let r = paste(&sim, &hint).ok();
    out.push_str(&r.all_output());
    let block = r
        .stderr
        .find("Marketo step 3 must be using this secret")
        .expect("step-3 block");
    let retired = r
        .stderr
        .find(&format!("retired credential {k0}"))
        .expect("retired line");
    assert!(block < retired, "{}", r.stderr);
    assert_eq!(key_set(&sim, &rotated), vec![k1.clone()]);
    assert!(
        signs_in(&sim, &rotated, &v1),
        "the secret in use still works"
    );
    assert!(!signs_in(&sim, &rotated, &v0));
    assert!(read_doc(&state)["secret"]["previous_key_id"].is_null());
    // Pasted again: nothing to retire, nothing sent.
    sim.clear();
    paste(&sim, &hint).ok().assert_stderr("nothing to retire");
    sim.assert_no_requests();

    // A secret in use that expires within --min-validity: refused (exit 4), nothing removed or
    // added (a third secret, and the two Marketo could hold revoked, would break the connection).
    let r = sim
        .run(
            "make-secret",
            &["--state", s, "--rotate", "--expires-in", "10d"],
            &Value::Null,
        )
        .ok();
    out.push_str(&r.all_output());
    let short = read_doc(&state);
    let v2 = secret_value(&sim);
    let before = key_set(&sim, &short);
    assert_eq!(before.len(), 2);
    sim.clear();
    let r = sim
        .run(
            "make-secret",
            &["--state", s, "--retire-old", "--yes"],
            &Value::Null,
        )
        .code_is(4);
    r.assert_stderr("within --min-validity")
        .assert_stderr("no credential is retired");
    sim.assert_no_writes();
    assert_eq!(key_set(&sim, &short), before);
    assert!(signs_in(&sim, &short, &v1) && signs_in(&sim, &short, &v2));

    out.push_str(&std::fs::read_to_string(&state).unwrap());
    assert_no_secret(&out, &[v0, v1, v2]);
}

/// A previous secret made before setups were marked (a document without setup.id) is not
/// provably this setup's: nothing is removed until register-app has marked the app the document
/// names; then the secret is kept and named, and removed when named with --retire.
#[test]
fn an_unmarked_previous_secret_is_retired_only_when_named() {
    let sim = sim();
    let state = with_secret(&sim, false);
    let s = state.to_str().unwrap();
    sim.run("make-secret", &["--state", s, "--rotate"], &Value::Null)
        .ok()
        .assert_stderr("--retire ");
    let doc = read_doc(&state);
    let old = doc["secret"]["previous_key_id"]
        .as_str()
        .unwrap()
        .to_string();
    // No setup.id: not even a credential named on the command line goes.
    sim.clear();
    sim.run(
        "make-secret",
        &["--state", s, "--retire", &old, "--yes"],
        &Value::Null,
    )
    .code_is(4)
    .assert_stderr("the document names no setup")
    .assert_stderr(&format!("register-app --state {s}"));
    sim.assert_no_writes();
    sim.run("register-app", &["--state", s], &Value::Null)
        .ok()
        .assert_stderr("this document names it by object id and client id");
    sim.clear();
    let r = sim
        .run(
            "make-secret",
            &["--state", s, "--retire-old", "--yes"],
            &Value::Null,
        )
        .ok();
    r.assert_stderr(&format!("kept credential {old}"))
        .assert_stderr("its name lacks [setup ");
    sim.assert_no_writes();
    assert_eq!(key_set(&sim, &doc).len(), 2);
    let named = format!("make-secret --state {s} --retire {old} --yes");
    r.assert_stderr(&named);
    paste(&sim, &named)
        .ok()
        .assert_stderr(&format!("retired credential {old}"));
    assert_eq!(
        key_set(&sim, &doc),
        vec![doc["secret"]["key_id"].as_str().unwrap().to_string()]
    );
    assert!(read_doc(&state)["secret"]["previous_key_id"].is_null());
}

// ---- kill during --rotate ----

/// Runs `make-secret --state FILE --rotate` and kills it (SIGKILL) as soon as the emulator
/// holds its stalled request. Returns false if it finished before stalling.
fn rotate_or_kill(sim: &Sim, state: &Path) -> bool {
    let mut c = sim.null_stdin_cmd("make-secret");
    c.args(["--state", state.to_str().unwrap(), "--rotate"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if sim.requests().iter().any(|r| r["fault"] == "stall") {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "make-secret neither finished nor stalled"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One point of the matrix: a fresh emulator whose request `stall_at` never answers (and, with
/// `lost`, whose first addPassword commits and loses its answer, so the retry is the one that
/// stalls), a kill there, and a re-run of the same command.
fn kill_rotate_at(stall_at: u64, lost: bool) -> String {
    let sim = sim_with(Options {
        stall_at: Some(stall_at),
        ..Default::default()
    });
    let state = with_secret(&sim, true);
    let before = read_doc(&state);
    let old_key = before["secret"]["key_id"].as_str().unwrap().to_string();
    let old_value = secret_value(&sim);
    if lost {
        sim.server.add_fault(json!({"path_prefix": "/v1.0/applications/", "method": "POST", "kind": "lost_response", "count": 1}));
    }
    sim.clear();
    let killed = rotate_or_kill(&sim, &state);
    assert!(killed, "request {stall_at} was never reached");
    let stalled = sim
        .requests()
        .iter()
        .find(|r| r["fault"] == "stall")
        .map(|r| format!("{} {}", r["method"], r["path"]))
        .unwrap_or_default();

    let r = sim.run(
        "make-secret",
        &["--state", state.to_str().unwrap(), "--rotate"],
        &Value::Null,
    );
    assert_eq!(r.code, 0, "re-run after a kill at {stalled}:\n{}", r.stderr);
    let doc = read_doc(&state);
    let new_key = doc["secret"]["key_id"].as_str().unwrap().to_string();
    let new_value = secret_value(&sim);
    let mut want = vec![old_key.clone(), new_key.clone()];
    want.sort();
    assert_ne!(old_key, new_key, "kill at {stalled}: no rotation happened");
    assert_eq!(
        key_set(&sim, &doc),
        want,
        "kill at {stalled}: exactly the old and the new credential"
    );
    assert_eq!(
        doc["secret"]["previous_key_id"],
        json!(old_key),
        "kill at {stalled}"
    );
    assert!(doc["secret"]["pending"].is_null(), "kill at {stalled}");
    assert!(
        signs_in(&sim, &doc, &old_value),
        "kill at {stalled}: old secret"
    );
    assert!(
        signs_in(&sim, &doc, &new_value),
        "kill at {stalled}: new secret"
    );
    // Converged: a plain re-run sends no write.
    sim.clear();
    sim.run(
        "make-secret",
        &["--state", state.to_str().unwrap()],
        &Value::Null,
    )
    .ok();
    sim.assert_no_writes();
    assert_no_secret(&r.all_output(), &[old_value, new_value]);
    stalled
}

#[test]
fn a_kill_at_any_point_of_rotate_and_a_rerun_end_with_exactly_the_old_and_the_new_secret() {
    // The request numbers of a clean run: the set-up, then the rotation's own requests.
    let sim = sim();
    let state = with_secret(&sim, true);
    let base = sim.requests().len() as u64;
    sim.run(
        "make-secret",
        &["--state", state.to_str().unwrap(), "--rotate"],
        &Value::Null,
    )
    .ok();
    let rotation = sim.requests();
    let n = rotation.len() as u64 - base;
    // The rotation's own addPassword (the set-up has one too), as a request number.
    let add_at = base
        + rotation[base as usize..]
            .iter()
            .position(|r| {
                r["method"] == "POST" && r["path"].as_str().unwrap_or("").ends_with("/addPassword")
            })
            .unwrap() as u64
        + 1;
    let mut points = Vec::new();
    for k in 1..=n {
        points.push(kill_rotate_at(base + k, false));
    }
    // addPassword committed, its answer lost, and the retry killed: the credential exists and
    // nobody has its secret.
    let lost = kill_rotate_at(add_at + 1, true);
    assert!(lost.contains("addPassword"), "{lost}");
    points.push(lost);
    eprintln!("rotate killed at: {points:?}");
    assert!(
        points.iter().filter(|p| p.contains("addPassword")).count() == 2
            && points.iter().filter(|p| p.contains("token")).count() == 1,
        "{points:?}"
    );
}

#[test]
fn rotate_keeps_the_old_secret_working_until_it_is_retired() {
    let sim = sim();
    let state = finished_state_with_setup_id(&sim);
    let s = state.to_str().unwrap();
    let old = read_doc(&state);
    let old_value = std::fs::read_to_string(sim.path("marketo.secret")).unwrap();
    let r = sim
        .run("make-secret", &["--state", s, "--rotate"], &Value::Null)
        .ok();
    r.assert_stderr("update Marketo step 3")
        .assert_stderr(&client_id(&old))
        .assert_stderr("--retire-old");
    let doc = read_doc(&state);
    assert_eq!(doc["secret"]["previous_key_id"], old["secret"]["key_id"]);
    assert_ne!(doc["secret"]["key_id"], old["secret"]["key_id"]);
    let new_value = std::fs::read_to_string(sim.path("marketo.secret")).unwrap();
    assert_ne!(new_value, old_value);
    for v in [&old_value, &new_value] {
        let (status, _) = sim.token_for(&client_id(&doc), v, &sim.url());
        assert_eq!(status, 200, "both secrets sign in during the rotation");
    }
    assert!(!r.all_output().contains(new_value.trim()));
    // Off a terminal, removal needs --yes, and nothing is sent without it.
    sim.clear();
    sim.run("make-secret", &["--state", s, "--retire-old"], &Value::Null)
        .code_is(2)
        .assert_stderr("--yes");
    sim.assert_no_requests();
    sim.run(
        "make-secret",
        &["--state", s, "--revoke-others", "--yes"],
        &Value::Null,
    )
    .ok();
    assert_eq!(credentials(&sim, &doc).len(), 1);
    let (status, _) = sim.token_for(&client_id(&doc), &old_value, &sim.url());
    assert_ne!(status, 200, "the retired secret no longer signs in");
    assert!(read_doc(&state)["secret"]["previous_key_id"].is_null());
}

/// A `--rotate --secret-file P` killed after it saved the new secret in P, re-run with another
/// `--secret-file`: refused before any write, and the credential whose secret P holds stays
/// (it is no orphan); the re-run with P finishes the rotation.
#[test]
fn a_rerun_naming_another_file_keeps_the_credential_an_interrupted_rotate_saved() {
    use std::os::unix::fs::PermissionsExt;
    let sim = sim();
    let state = with_secret(&sim, true);
    let s = state.to_str().unwrap();
    let mut doc = read_doc(&state);
    let old_key = doc["secret"]["key_id"].as_str().unwrap().to_string();
    // What the killed run left: its credential (the setup's mark, its run tag), the secret
    // saved in P, and the journal naming P.
    let setup = s2s_core::setup::SetupId::parse(doc["setup"]["id"].as_str().unwrap()).unwrap();
    let made = sim.graph_expect(
        200,
        "POST",
        &format!("applications/{}/addPassword", doc["app"]["object_id"].as_str().unwrap()),
        Some(json!({"passwordCredential": {
            "displayName": format!("marketo-s2s make-secret 2026-12-03 {} [run 0badc0de]", setup.name_mark())
        }})),
    );
    let new_key = made["keyId"].as_str().unwrap().to_string();
    let p = sim.path("rotated.secret");
    std::fs::write(&p, made["secretText"].as_str().unwrap()).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    doc["secret"]["pending"] = json!({"run": "0badc0de", "file": p.to_str().unwrap()});
    std::fs::write(&state, doc.to_string()).unwrap();

    sim.clear();
    let r = sim
        .run(
            "make-secret",
            &["--state", s, "--secret-file", "elsewhere.secret"],
            &Value::Null,
        )
        .code_is(2);
    sim.assert_no_writes();
    r.assert_stderr(&new_key)
        .assert_stderr("nothing was changed");
    let mut want = vec![old_key.clone(), new_key.clone()];
    want.sort();
    assert_eq!(key_set(&sim, &doc), want);
    assert_eq!(
        read_doc(&state)["secret"]["pending"],
        doc["secret"]["pending"]
    );

    // The re-run with P adopts it: the rotation is finished.
    sim.run(
        "make-secret",
        &["--state", s, "--secret-file", p.to_str().unwrap()],
        &Value::Null,
    )
    .ok();
    let after = read_doc(&state);
    assert_eq!(after["secret"]["key_id"], json!(new_key));
    assert_eq!(after["secret"]["previous_key_id"], json!(old_key));
    assert_eq!(key_set(&sim, &doc), want);
}
