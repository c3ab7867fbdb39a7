//! Where tests start from: the runbook's steps, a registered app, a finished setup in a state
//! file, a token cache a person's sign-in left; and the reads of a document and of the emulated
//! org that many suites share.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::sim::Sim;
use crate::token;

/// The Entra ID and Dynamics steps in runbook order, with the flags a test run needs.
pub fn chain_steps(secret_file: &str) -> Vec<(&'static str, Vec<String>)> {
    vec![
        ("register-app", vec![]),
        ("grant-consent", vec![]),
        (
            "make-secret",
            vec!["--secret-file".into(), secret_file.into()],
        ),
        ("set-hrd-policy", vec![]),
        ("assign-role", vec![]),
        ("configure-marketo", vec![]),
        ("publish-customizations", vec!["--if-changed".into()]),
    ]
}

impl Sim {
    /// Runs the whole setup chain, each tool fed the previous one's output; panics on failure.
    pub fn setup_chain(&self, extra: &[&str]) -> Value {
        let secret = self.path("marketo.secret");
        let mut doc = Value::Null;
        for (tool, args) in chain_steps(secret.to_str().expect("a UTF-8 path")) {
            let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
            a.extend_from_slice(extra);
            let r = self.run(tool, &a, &doc);
            assert_eq!(r.code, 0, "{tool} failed\nstderr:\n{}", r.stderr);
            doc = r.doc;
        }
        doc
    }
}

/// A finished setup kept in `<sim dir>/state.json`, every step run with `--state`, the secret
/// in `marketo.secret` beside it.
pub fn finished_state(sim: &Sim) -> PathBuf {
    let state = sim.path("state.json");
    for (tool, args) in chain_steps("marketo.secret") {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend_from_slice(&["--state", state.to_str().expect("a UTF-8 path")]);
        let r = sim.run(tool, &a, &Value::Null);
        assert_eq!(r.code, 0, "{tool} failed\nstderr:\n{}", r.stderr);
    }
    state
}

/// The JSON document in a file (a `--state` file, a plan).
#[track_caller]
pub fn read_doc(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("the file")).expect("a JSON document")
}

/// A document with a registered app (`register-app`), as the pipeline hands it on.
pub fn registered(sim: &Sim) -> Value {
    sim.run(
        "register-app",
        &["--name", "Marketo Integration"],
        &Value::Null,
    )
    .ok()
    .doc
}

/// A document after `register-app | assign-role`.
pub fn with_app_user(sim: &Sim) -> Value {
    let doc = registered(sim);
    sim.run("assign-role", &[], &doc).ok().doc
}

/// `app.client_id` of a document.
pub fn client_id(doc: &Value) -> String {
    doc["app"]["client_id"]
        .as_str()
        .expect("app.client_id")
        .to_string()
}

/// `app.service_principal_id` of a document.
pub fn service_principal_id(doc: &Value) -> String {
    doc["app"]["service_principal_id"]
        .as_str()
        .expect("app.service_principal_id")
        .to_string()
}

/// `dynamics.application_user_id` of a document.
pub fn app_user_id(doc: &Value) -> String {
    doc["dynamics"]["application_user_id"]
        .as_str()
        .expect("dynamics.application_user_id")
        .to_string()
}

/// `GET` through the emulator's Dataverse routes as the admin; asserts 200.
#[track_caller]
pub fn dv_get(sim: &Sim, path: &str) -> Value {
    sim.dataverse_expect(200, "GET", path, None)
}

/// The active application users for a client id, as Dataverse lists them.
pub fn app_users(sim: &Sim, client_id: &str) -> Vec<Value> {
    dv_get(
        sim,
        &format!("systemusers?$filter=applicationid%20eq%20{client_id}"),
    )["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|u| u["deletedstate"] != serde_json::json!(1))
        .collect()
}

/// `METHOD path` of each logged request, e.g. `PATCH /api/data/v9.2/systemusers(...)`.
pub fn method_paths(reqs: &[Value]) -> Vec<String> {
    reqs.iter()
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap_or(""),
                r["path"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Every publish the emulated org has run (`PublishAllXml`, `PublishXml`, async), oldest first.
pub fn publish_history(sim: &Sim) -> Vec<Value> {
    sim.state()["dataverse"]["publish_history"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A device-code sign-in with the Azure CLI's client done by the test as a person would (in a
/// browser), saved as the tools' token cache at `cache`. Returns the refresh token and its
/// cache key.
pub fn seed_token_cache(sim: &Sim, cache: &Path) -> (String, String) {
    seed_token_cache_for(sim, cache, token::AZURE_CLI)
}

/// The same with another public client (`--login-client-id`), e.g. one registered in the tenant.
pub fn seed_token_cache_for(sim: &Sim, cache: &Path, cli_id: &str) -> (String, String) {
    let tenant = sim.server.tenant_id();
    let scope = format!("{}/.default offline_access", sim.url());
    let tokens = token::device_code(&sim.server, cli_id, &scope);
    let refresh = tokens.body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let key = format!("{}|{tenant}|{cli_id}", sim.url());
    std::fs::write(
        cache,
        serde_json::json!({ key.clone(): {"refresh_token": refresh} }).to_string(),
    )
    .expect("write the token cache");
    (refresh, key)
}

/// Makes a FIFO at `path` (for the tests that a named pipe never blocks a tool).
pub fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs")
        .success();
    assert!(ok, "mkfifo {}", path.display());
}
