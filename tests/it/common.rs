//! What only this suite needs beside the shared `test-support` crate (re-exported here, so a
//! suite's `use crate::common::*;` has both): the tool table, help snapshots, a terminal, and
//! the starting points of the make-secret and state-file suites.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

pub use s2s_core::tools::{self, TOOLS};
pub use test_support::*;

/// What `tool` needs on its command line to act at all off a terminal: teardown asks before it
/// removes anything, and without `--yes` refuses before it reads its input (exit 2).
pub fn unattended(tool: &str) -> &'static [&'static str] {
    if tool == "teardown" { &["--yes"] } else { &[] }
}

/// Compares `text` with the snapshot file `tests/snapshots/<name>` through snapbox, which
/// shows a diff when they differ; `SNAPSHOTS=overwrite` rewrites the file (review the diff).
#[track_caller]
pub fn assert_snapshot(name: &str, text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    // `raw`: compared as it is, with none of snapbox's wildcards or path and `[EXE]` rewrites
    // (only line endings are normalised).
    snapbox::assert_data_eq!(text, snapbox::Data::read_from(&path, None).raw());
}

/// Runs `command` (a shell line) on a pseudo-terminal with `env` only, as an admin's shell
/// would (script(1)); returns the exit status and the screen.
pub fn on_terminal(dir: &Path, command: &str, env: &[(&str, String)]) -> (bool, String) {
    let out = Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .output()
        .expect("script(1)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A document with a setup id, as register-app writes it (`setup.id`); a document from before
/// setups had one gets one here, as a re-run of register-app would give it.
pub fn with_setup_id(mut doc: Value) -> Value {
    if doc["setup"]["id"].is_null() {
        doc["setup"] = json!({"id": uuid::Uuid::new_v4().to_string()});
    }
    doc
}

/// A finished setup kept in `<sim dir>/state.json` (every step run with `--state`), the secret
/// beside it, as [`finished_state`] makes it but with a setup id from the start: make-secret
/// marks its credentials with it, and removes only marked ones.
pub fn finished_state_with_setup_id(sim: &Sim) -> PathBuf {
    let state = sim.path("state.json");
    let doc = std::fs::read(&state)
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or_else(|_| json!({}));
    std::fs::write(&state, with_setup_id(doc).to_string()).unwrap();
    for (tool, args) in chain_steps("marketo.secret") {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend_from_slice(&["--state", state.to_str().unwrap()]);
        let r = sim.run(tool, &a, &Value::Null);
        assert_eq!(r.code, 0, "{tool} failed\nstderr:\n{}", r.stderr);
    }
    state
}

/// The app's password credentials as the emulator holds them.
pub fn credentials(sim: &Sim, doc: &Value) -> Vec<Value> {
    let object_id = &doc["app"]["object_id"];
    sim.state_objects("applications")
        .into_iter()
        .find(|a| a["id"] == *object_id)
        .and_then(|a| a["passwordCredentials"].as_array().cloned())
        .unwrap_or_default()
}
