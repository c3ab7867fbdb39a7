//! The secret file: make-secret writes only a file that does not exist or holds the secret the
//! document records, restores 0600 on its own file, repairs a damaged one; verify-sync fails a
//! file that is open to others or does not hold the recorded secret, with a fix that works when
//! pasted; a secret kept in a vault has a mode of its own; a file beside the state file is
//! recorded by name, so the folder can move — also from Windows (the Windows side is
//! `tests/windows`, run under Wine by `scripts/windows-check.sh`).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::*;
use crate::make_secret::assert_saved_secret_works;

/// A finished setup (the whole chain) in `<dir>/state.json`, with a setup id from the start and
/// the secret in `<dir>/marketo.secret`.
pub(crate) fn finished_in(sim: &Sim, dir: &Path) -> PathBuf {
    let state = dir.join("state.json");
    std::fs::write(&state, with_setup_id(json!({})).to_string()).unwrap();
    let secret = dir.join("marketo.secret");
    for (tool, args) in chain_steps(secret.to_str().unwrap()) {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend_from_slice(&["--state", state.to_str().unwrap()]);
        let r = sim.run(tool, &a, &Value::Null);
        assert_eq!(r.code, 0, "{tool} failed\nstderr:\n{}", r.stderr);
    }
    state
}

/// verify-sync on a state file, judged at once (no settle window); returns the run and the
/// check with `id`.
pub(crate) fn verify(sim: &Sim, state: &Path, id: &str) -> (Run, Value) {
    let r = sim.run(
        "verify-sync",
        &["--settle", "0", "--state", state.to_str().unwrap()],
        &Value::Null,
    );
    let doc = read_doc(state);
    let check = doc["verify"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or(Value::Null);
    (r, check)
}

/// Runs a fix line (`make-secret --state FILE …`) as pasted: its words after the tool's name.
pub(crate) fn paste(sim: &Sim, fix: &str) -> Run {
    let mut words = fix.split_whitespace();
    let tool = words.next().unwrap();
    let args: Vec<&str> = words.collect();
    sim.run(tool, &args, &Value::Null)
}

#[test]
fn make_secret_never_overwrites_a_file_that_is_not_this_connections_secret() {
    let sim = sim();
    let contoso = sim.path("contoso");
    let fabrikam = sim.path("fabrikam");
    std::fs::create_dir(&contoso).unwrap();
    std::fs::create_dir(&fabrikam).unwrap();
    let state = contoso.join("state.json");
    let s = state.to_str().unwrap();
    std::fs::write(
        &state,
        crate::make_secret::registered_setup(&sim).to_string(),
    )
    .unwrap();
    sim.run("make-secret", &["--state", s], &Value::Null).ok();
    let doc = read_doc(&state);
    // Recorded by name: it sits beside the state file.
    let ours = contoso.join(doc["secret"]["file"].as_str().unwrap());

    // Another customer's secret one folder up, and an admin's authorized_keys.
    let theirs = fabrikam.join("marketo.secret");
    std::fs::write(&theirs, "Zq8~FabrikamSecretValue.0123456789abcdefg").unwrap();
    let keys = sim.path("authorized_keys");
    std::fs::write(
        &keys,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9k admin@jumphost\n",
    )
    .unwrap();
    let keys_text = keys.to_str().unwrap().to_string();
    let cases: Vec<(String, &Path)> = vec![
        ("../fabrikam/marketo.secret".to_string(), theirs.as_path()),
        (keys_text.clone(), keys.as_path()),
    ];
    for (target, path) in &cases {
        let before = std::fs::read(path).unwrap();
        for extra in [vec![], vec!["--rotate"], vec!["--revoke-others", "--yes"]] {
            let mut d = doc.clone();
            d["secret"]["file"] = json!(target);
            std::fs::write(&state, d.to_string()).unwrap();
            let state_before = std::fs::read(&state).unwrap();
            sim.clear();
            let mut args = vec!["--state", s];
            args.extend(extra.iter().copied());
            let r = sim.run("make-secret", &args, &Value::Null).code_is(2);
            r.assert_stderr("is not this connection's secret file")
                .assert_stderr("nothing was changed")
                .assert_stderr("make-secret: hint:");
            sim.assert_no_requests();
            assert_eq!(std::fs::read(path).unwrap(), before, "{target} {extra:?}");
            assert_eq!(std::fs::read(&state).unwrap(), state_before);
        }
        // Named with --secret-file, in a pipeline: the same.
        sim.clear();
        sim.run(
            "make-secret",
            &["--secret-file", path.to_str().unwrap()],
            &doc,
        )
        .code_is(2)
        .assert_stderr("is not this connection's secret file");
        sim.assert_no_requests();
        assert_eq!(std::fs::read(path).unwrap(), before);
    }
    // Nothing was added on the tenant, and our own file still holds the working secret.
    assert_eq!(credentials(&sim, &doc).len(), 1);
    let value = std::fs::read_to_string(&ours).unwrap();
    let (status, _) = sim.token_for(&client_id(&doc), &value, &sim.url());
    assert_eq!(status, 200);
}

#[test]
fn a_secret_file_open_to_others_fails_verify_sync_and_make_secret_restores_0600() {
    use std::os::unix::fs::PermissionsExt;
    let sim = sim();
    let state = finished_in(&sim, sim.dir());
    let file = sim.path("marketo.secret");
    let value = std::fs::read_to_string(&file).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();

    let (r, check) = verify(&sim, &state, "secret");
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert_eq!(check["status"], "fail", "{check}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.contains("0644") && detail.contains("group and others"),
        "{detail}"
    );
    let fix = check["fix"].as_str().unwrap();
    assert_eq!(
        fix,
        format!("make-secret --state {}", state.display()),
        "the fix is a command to paste"
    );

    sim.clear();
    let r = paste(&sim, fix).ok();
    r.assert_stderr("restored mode 0600 on")
        .assert_stderr("it was mode 0644")
        .assert_stderr("--rotate");
    assert!(!r.stderr.contains("nothing to change"), "{}", r.stderr);
    assert_eq!(read_doc(&state)["steps"]["make-secret"]["changed"], true);
    sim.assert_no_writes();
    assert_eq!(s2s_core::fsutil::mode_of(&file).unwrap(), 0o600);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), value);
    let (r, check) = verify(&sim, &state, "secret");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(check["status"], "ok");
    assert!(!r.all_output().contains(value.trim()));
}

#[test]
fn a_garbled_secret_file_is_found_locally_and_repaired_so_verify_sync_passes() {
    let sim = sim();
    let state = finished_in(&sim, sim.dir());
    let s = state.to_str().unwrap();
    let before = read_doc(&state);
    let old_key = before["secret"]["key_id"].as_str().unwrap().to_string();
    let file = sim.path("marketo.secret");
    let old_value = std::fs::read_to_string(&file).unwrap();
    // Garbled, keeping the 3-character hint: the fix must make a new secret, not loop between
    // "nothing to change" and "fix: make-secret".
    std::fs::write(&file, format!("{}-garbled-by-an-editor", &old_value[..3])).unwrap();

    let (r, check) = verify(&sim, &state, "secret");
    assert_eq!(r.code, 6);
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("does not hold the recorded secret"),
        "{check}"
    );
    let fix = check["fix"].as_str().unwrap().to_string();
    assert!(
        fix.starts_with(&format!("make-secret --state {s}")),
        "{fix}"
    );

    sim.clear();
    let r = paste(&sim, &fix).ok();
    r.assert_stderr("a new secret replaces it")
        .assert_stderr("update Marketo step 3 with the new secret")
        .assert_stderr(&format!("the old secret {old_key} keeps working"))
        .assert_stderr(&format!("make-secret --state {s} --retire-old --yes"));
    let doc = read_doc(&state);
    assert_ne!(doc["secret"]["key_id"], json!(old_key));
    assert_eq!(doc["secret"]["previous_key_id"], json!(old_key));
    let new_value = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        doc["secret"]["sha256"],
        json!(s2s_core::fsutil::secret_sha256(
            &secrecy::SecretString::from(new_value.clone())
        ))
    );
    // The old secret (still in Marketo) works, the new one too; exactly those two.
    for v in [&old_value, &new_value] {
        let (status, _) = sim.token_for(&client_id(&doc), v, &sim.url());
        assert_eq!(status, 200);
    }
    assert_eq!(credentials(&sim, &doc).len(), 2);

    let (r, check) = verify(&sim, &state, "live-login");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(check["status"], "ok");
    // Repaired for good: the next run changes nothing.
    sim.clear();
    sim.run("make-secret", &["--state", s], &Value::Null)
        .ok()
        .assert_stderr("nothing to change");
    sim.assert_no_writes();
    for out in [r.all_output(), std::fs::read_to_string(&state).unwrap()] {
        assert!(!out.contains(new_value.trim()) && !out.contains(old_value.trim()));
    }
}

/// A secret moved to a vault: `--forget-file` records it, verify-sync's live
/// sign-in test is `skip` (its fix could do nothing), and a renewal needs a file again.
#[test]
fn a_secret_kept_in_a_vault_skips_the_live_login_and_renews_into_a_named_file() {
    let sim = sim();
    let state = finished_in(&sim, sim.dir());
    let s = state.to_str().unwrap();
    let file = sim.path("marketo.secret");
    let value = std::fs::read_to_string(&file).unwrap();

    sim.clear();
    let r = sim
        .run(
            "make-secret",
            &["--state", s, "--forget-file"],
            &Value::Null,
        )
        .ok();
    r.assert_stderr("kept outside a file")
        .assert_stderr("still holds the secret: delete it once your vault has it");
    sim.assert_no_writes();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        value,
        "not touched"
    );
    let doc = read_doc(&state);
    assert_eq!(doc["secret"]["storage"], "external");
    assert!(doc["secret"]["file"].is_null());
    std::fs::remove_file(&file).unwrap();

    let (r, live) = verify(&sim, &state, "live-login");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(live["status"], "skip", "{live}");
    let (_, secret) = verify(&sim, &state, "secret");
    assert_eq!(secret["status"], "ok", "{secret}");
    assert!(
        secret["detail"]
            .as_str()
            .unwrap()
            .contains("outside a file"),
        "{secret}"
    );

    // A re-run keeps it, with no warning about a missing file.
    sim.clear();
    let r = sim.run("make-secret", &["--state", s], &Value::Null).ok();
    assert!(!r.stderr.contains("missing"), "{}", r.stderr);
    sim.assert_no_writes();

    // A new secret needs a file: refused without one (nothing sent), saved with one.
    sim.clear();
    sim.run("make-secret", &["--state", s, "--rotate"], &Value::Null)
        .code_is(2)
        .assert_stderr("--secret-file");
    sim.assert_no_writes();
    sim.run(
        "make-secret",
        &["--state", s, "--rotate", "--secret-file", "renewed.secret"],
        &Value::Null,
    )
    .ok();
    let doc = read_doc(&state);
    assert!(doc["secret"]["storage"].is_null());
    assert_eq!(doc["secret"]["file"], "renewed.secret");
    assert_saved_secret_works(&sim, &{
        let mut d = doc.clone();
        d["secret"]["file"] = json!(sim.path("renewed.secret"));
        d
    });
    let (r, live) = verify(&sim, &state, "live-login");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(live["status"], "ok");
}

/// A file deleted after it was pasted into Marketo: verify-sync's fix must be a command that
/// changes something (make-secret alone keeps a valid secret whose file is gone).
#[test]
fn a_missing_secret_file_is_fixed_by_commands_that_act() {
    let sim = sim();
    let state = finished_in(&sim, sim.dir());
    let s = state.to_str().unwrap();
    std::fs::remove_file(sim.path("marketo.secret")).unwrap();
    let (r, check) = verify(&sim, &state, "secret");
    assert_eq!(r.code, 6);
    let fix = check["fix"].as_str().unwrap();
    assert!(
        fix.contains(&format!("make-secret --state {s} --rotate"))
            && fix.contains(&format!("make-secret --state {s} --forget-file")),
        "{fix}"
    );
    let (_, live) = verify(&sim, &state, "live-login");
    assert!(
        live["fix"]
            .as_str()
            .unwrap()
            .contains(&format!("make-secret --state {s} --rotate")),
        "{live}"
    );
}

/// Every path of the secret's life at `-vv` — first secret, rotation, a damaged file repaired, a
/// file opened to others, retiring, a kill and its re-run, the vault — prints no secret, and
/// the state file holds none.
#[test]
fn no_secret_in_any_output_through_the_secrets_whole_life() {
    use std::os::unix::fs::PermissionsExt;
    let sim = sim();
    let state = finished_in(&sim, sim.dir());
    let s = state.to_str().unwrap();
    let file = sim.path("marketo.secret");
    let mut out = String::new();
    let mut seen = vec![std::fs::read_to_string(&file).unwrap()];
    let step = |args: &[&str], out: &mut String, seen: &mut Vec<String>| {
        let mut a = vec!["--state", s, "-vv"];
        a.extend_from_slice(args);
        let r = sim.run("make-secret", &a, &Value::Null).ok();
        out.push_str(&r.all_output());
        if let Ok(v) = std::fs::read_to_string(&file) {
            seen.push(v);
        }
    };
    step(&["--rotate"], &mut out, &mut seen);
    let v = seen.last().unwrap().clone();
    std::fs::write(&file, format!("{}-damaged", &v[..3])).unwrap();
    step(&[], &mut out, &mut seen);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    step(&[], &mut out, &mut seen);
    step(&["--retire-old", "--yes"], &mut out, &mut seen);
    step(&["--revoke-others", "--yes"], &mut out, &mut seen);
    let r = sim
        .run(
            "verify-sync",
            &["--state", s, "-vv", "--settle", "0"],
            &Value::Null,
        )
        .ok();
    out.push_str(&r.all_output());
    step(&["--forget-file"], &mut out, &mut seen);
    out.push_str(&std::fs::read_to_string(&state).unwrap());
    assert!(
        out.contains("Authorization: (redacted)"),
        "the -vv trace is missing"
    );
    assert!(seen.len() >= 6);
    for v in &seen {
        assert!(
            v.trim().len() >= 16 && !out.contains(v.trim()),
            "a secret leaked"
        );
    }
}

#[test]
fn the_secret_file_beside_the_state_file_is_recorded_by_name_and_the_folder_can_move() {
    let sim = sim();
    let folder = sim.path("contoso");
    std::fs::create_dir(&folder).unwrap();
    let state = folder.join("state.json");
    let s = state.to_str().unwrap();
    for tool in ["register-app", "grant-consent", "make-secret"] {
        sim.run(tool, &["--state", s], &Value::Null).ok();
    }
    let doc = read_doc(&state);
    let name = doc["secret"]["file"].as_str().unwrap();
    assert!(!name.contains('/'), "{name}");
    assert!(folder.join(name).is_file());
    let moved = sim.path("contoso-moved");
    std::fs::rename(&folder, &moved).unwrap();
    sim.clear();
    sim.run(
        "make-secret",
        &["--state", moved.join("state.json").to_str().unwrap()],
        &Value::Null,
    )
    .ok();
    sim.assert_no_writes();
}

#[test]
fn a_secret_file_recorded_on_windows_beside_the_state_file_is_found_here() {
    let sim = sim();
    let mut doc = sim.setup_chain(&[]);
    // The customer's folder was set up on Windows and copied here whole.
    doc["secret"]["file"] = r"C:\Users\admin\customers\contoso\marketo.secret".into();
    let state = sim.path("contoso.state.json");
    std::fs::write(&state, doc.to_string()).unwrap();
    sim.clear();
    let st = state.to_str().unwrap();
    sim.run("make-secret", &["--state", st], &Value::Null).ok();
    sim.assert_no_writes();
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["secret"]["file"], "marketo.secret");
    assert_eq!(saved["steps"]["make-secret"]["changed"], false);
    // A relative Windows path (a\b) is read with / here.
    std::fs::create_dir(sim.path("secrets")).unwrap();
    std::fs::rename(
        sim.path("marketo.secret"),
        sim.path("secrets/marketo.secret"),
    )
    .unwrap();
    let mut d = saved.clone();
    d["secret"]["file"] = r"secrets\marketo.secret".into();
    std::fs::write(&state, d.to_string()).unwrap();
    sim.run("verify-sync", &["--state", st], &Value::Null).ok();
}
