//! The Linux side of what differs between Linux and Windows (issue 23). The Windows side is
//! `tests/windows`, run as Windows processes under Wine by `scripts/windows-check.sh`.

use serde_json::Value;

use crate::common::*;

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
