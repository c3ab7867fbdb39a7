//! The Linux side of what differs between Linux and Windows (issue 23). The Windows side is
//! `tests/windows`, run as Windows processes under Wine by `scripts/windows-check.sh`.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::common::*;

fn failing(doc: &Value) -> Vec<String> {
    doc["verify"]["checks"]
        .as_array()
        .expect("verify.checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn verify_sync_fails_a_secret_file_others_can_read_and_says_how_to_fix_it() {
    let sim = sim();
    let doc = sim.setup_chain(&[]);
    let secret = sim.path("marketo.secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = sim.run("verify-sync", &["--settle", "0"], &doc).code_is(6);
    assert_eq!(failing(&r.doc), ["secret"], "{}", r.stderr);
    r.assert_stderr("is not private: mode 0644: group and others can read it");
    r.assert_stderr(&format!("chmod 600 '{}'", secret.display()));
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    sim.run("verify-sync", &[], &doc).ok();
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
