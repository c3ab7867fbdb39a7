//! The credential chain as a person meets it: device-code sign-in on a terminal, then the
//! token cache serving the next tool of the pipeline without a prompt.

use std::process::Command;

use crate::common::*;

#[test]
fn device_code_on_a_terminal_then_the_cache_serves_the_next_tool() {
    let sim = sim();
    let cache = sim.path("cache/tokens.json");
    let state = sim.path("state.json");
    let env = [
        ("PATH", "/usr/bin:/bin".to_string()),
        ("HOME", sim.dir().display().to_string()),
        ("AZURE_TENANT_ID", sim.server.tenant_id()),
        ("AZURE_AUTHORITY_HOST", sim.url()),
        ("MKTO_S2S_GRAPH_URL", sim.url()),
        ("MKTO_S2S_TOKEN_CACHE", cache.display().to_string()),
        ("MKTO_S2S_TIMEOUT", "60s".to_string()),
    ];
    // script(1) gives the tool a pseudo-terminal, as an admin's shell would.
    let register = assert_cmd::cargo::cargo_bin("register-app");
    let out = Command::new("script")
        .args([
            "-qec",
            &format!("{} --state {}", register.display(), state.display()),
            "/dev/null",
        ])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(sim.dir())
        .output()
        .expect("script(1)");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("enter the code"),
        "no device-code prompt on the terminal:\n{screen}"
    );
    assert!(!screen.contains("eyJ"), "a token reached the terminal");
    assert_eq!(s2s_core::fsutil::mode_of(&cache).unwrap(), 0o600);
    let logins: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r["service"] == "login")
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        logins.iter().any(|p| p.ends_with("/devicecode")),
        "{logins:?}"
    );

    // The next tool, not on a terminal, signs in from the cache without prompting.
    sim.clear();
    let r = Run::from_output(
        bare_cmd("grant-consent", sim.dir())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .args(["--state", state.to_str().unwrap()])
            .output()
            .unwrap(),
    )
    .ok();
    assert!(!r.stderr.contains("enter the code"), "{}", r.stderr);
    assert!(
        sim.requests()
            .iter()
            .all(|q| !q["path"].as_str().unwrap().ends_with("/devicecode"))
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(doc["consent"]["grant_id"].is_string());
}

#[test]
fn without_any_credential_off_a_terminal_it_says_how_to_sign_in() {
    let sim = sim();
    let r = Run::from_output(
        bare_cmd("register-app", sim.dir())
            .env("AZURE_TENANT_ID", sim.server.tenant_id())
            .env("AZURE_AUTHORITY_HOST", sim.url())
            .env("MKTO_S2S_GRAPH_URL", sim.url())
            .output()
            .unwrap(),
    )
    .code_is(3);
    assert!(
        r.stderr.contains("register-app: error: no credential"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("AZURE_CLIENT_SECRET") && r.stderr.contains("az login"),
        "{}",
        r.stderr
    );
    assert!(sim.requests().is_empty());
}
