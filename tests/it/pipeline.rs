//! The document is never lost or mistaken on its way through a pipeline: a failing step of the
//! README's pipeline hands every earlier id on to `> state.json`, the next tools pass it on
//! untouched (a failing preflight at its head too), an empty pipe is a failed previous step (not an empty document), foreign values
//! pass through exactly and duplicate keys are refused, a misspelt `--state` names the missing
//! file, a terminal run finds `./marketo-s2s.state.json`, the lock never follows a symlink, and
//! `publish-customizations` with no document publishes only when confirmed.

use std::path::Path;

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

fn bin_dir() -> String {
    Path::new(env!("CARGO_BIN_EXE_register-app"))
        .parent()
        .unwrap()
        .display()
        .to_string()
}

/// `bash -c script` with the tools on PATH, signed in as the emulator's admin.
fn shell(sim: &Sim, script: &str) -> Run {
    let mut c = assert_cmd::Command::new("bash");
    c.env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir()))
        .env("HOME", sim.dir())
        .envs(sim.env())
        .current_dir(sim.dir())
        .timeout(std::time::Duration::from_secs(240))
        .args(["-c", &format!("set -o pipefail; {script}")]);
    Run::from_output(c.output().unwrap())
}

const README_PIPELINE: &str = "register-app < /dev/null | grant-consent | make-secret --secret-file marketo.secret \
    | set-hrd-policy | assign-role | configure-marketo | publish-customizations --if-changed | verify-sync";

#[test]
fn a_failing_step_of_the_readme_pipeline_hands_every_earlier_id_on_to_the_saved_document() {
    let sim = sim_with(Options {
        federated: true,
        ..Default::default()
    });
    // Dataverse refuses the application user (403 cannot be retried): assign-role fails after
    // register-app, grant-consent, make-secret and set-hrd-policy have written.
    sim.server.add_fault(json!({"path_prefix": "/api/data/v9.2/systemusers", "method": "POST", "status": 403,
        "body": {"error": {"code": "0x80040220", "message": "The user does not hold the necessary privileges."}}, "count": 1}));
    let r = shell(&sim, &format!("{README_PIPELINE} > state.json")).code_is(4);
    let doc = read_doc(&sim.path("state.json"));
    for key in [
        "/app/client_id",
        "/app/object_id",
        "/app/service_principal_id",
        "/consent/grant_id",
        "/secret/key_id",
        "/secret/file",
        "/hrd_policy/policy_id",
    ] {
        assert!(
            doc.pointer(key).is_some_and(Value::is_string),
            "{key} lost:\n{doc:#}\n{}",
            r.stderr
        );
    }
    let error = &doc["steps"]["assign-role"]["error"];
    assert_eq!(error["exit_code"], 4, "{doc:#}");
    assert_eq!(error["handed_on"], true, "{doc:#}");
    // The tools after it passed the document on untouched and sent nothing.
    for tool in ["configure-marketo", "publish-customizations", "verify-sync"] {
        assert!(doc["steps"].get(tool).is_none(), "{tool} ran:\n{doc:#}");
        r.assert_stderr(&format!(
            "{tool}: error: not run: assign-role failed earlier in this pipeline (exit 4)"
        ));
    }
    assert!(publish_history(&sim).is_empty());
    r.assert_stderr("assign-role: the document went on to stdout");

    // Resuming from the failed step with the saved document finishes the setup.
    sim.clear();
    shell(
        &sim,
        "assign-role < state.json | configure-marketo | publish-customizations --if-changed | verify-sync > done.json",
    )
    .ok();
    let done = read_doc(&sim.path("done.json"));
    assert_eq!(done["verify"]["ok"], true, "{done:#}");
    assert!(done["steps"]["assign-role"].get("error").is_none());
    assert_eq!(done["app"]["client_id"], doc["app"]["client_id"]);
    // Nothing of the Entra ID part was created again.
    assert!(
        sim.writes()
            .iter()
            .all(|w| !w["path"].as_str().unwrap().starts_with("/v1.0/")),
        "{:#?}",
        sim.writes()
    );
}

#[test]
fn a_failing_preflight_at_the_head_of_a_pipeline_stops_every_write_after_it() {
    // The tenant allows secrets of 180 days at most; the runbook's default asks for 24 months.
    let sim = sim_with(Options {
        max_secret_days: Some(180),
        ..Default::default()
    });
    let r = shell(
        &sim,
        "preflight < /dev/null | register-app | grant-consent | make-secret --secret-file marketo.secret \
         | set-hrd-policy | assign-role | configure-marketo | publish-customizations --if-changed \
         | verify-sync > state.json",
    )
    .code_is(6);
    let doc = read_doc(&sim.path("state.json"));
    let error = &doc["steps"]["preflight"]["error"];
    assert_eq!(error["exit_code"], 6, "{doc:#}");
    assert_eq!(error["handed_on"], true, "{doc:#}");
    assert_eq!(doc["preflight"]["ok"], false, "{doc:#}");
    for tool in [
        "register-app",
        "grant-consent",
        "make-secret",
        "verify-sync",
    ] {
        assert!(doc["steps"].get(tool).is_none(), "{tool} ran:\n{doc:#}");
        r.assert_stderr(&format!(
            "{tool}: error: not run: preflight failed earlier in this pipeline (exit 6)"
        ));
    }
    r.assert_stderr("preflight: the document went on to stdout");
    sim.assert_no_writes();

    // Fixed (the lifetime the policy allows), the same pipeline resumed from preflight runs on.
    sim.clear();
    shell(
        &sim,
        "preflight --expires-in 90d < state.json | register-app > next.json",
    )
    .ok();
    let next = read_doc(&sim.path("next.json"));
    assert!(
        next["steps"]["preflight"].get("error").is_none(),
        "{next:#}"
    );
    assert!(next["app"]["client_id"].is_string(), "{next:#}");

    // verify-sync's failed checks are findings, not a stop: nothing is marked handed on.
    let mut broken = next.clone();
    broken["secret"] =
        json!({"file": "missing.secret", "key_id": "00000000-0000-0000-0000-000000000001"});
    std::fs::write(sim.path("broken.json"), broken.to_string()).unwrap();
    // --settle 0: the breakage is real; do not wait for replication to heal it.
    shell(&sim, "verify-sync --settle 0 < broken.json > checked.json").code_is(6);
    let checked = read_doc(&sim.path("checked.json"));
    assert!(
        checked["steps"]["verify-sync"].get("error").is_none(),
        "{checked:#}"
    );
}

#[test]
fn a_state_file_that_records_an_error_is_no_stop_and_bad_flags_still_hand_the_document_on() {
    let sim = sim();
    let doc = registered(&sim);
    // An error recorded by a --state run is for people, not a stop for the next tool.
    let mut with_error = doc.clone();
    with_error["steps"]["make-secret"]["error"] =
        json!({"exit_code": 4, "kind": "refused", "message": "x"});
    let state = sim.path("state.json");
    std::fs::write(&state, with_error.to_string()).unwrap();
    sim.run(
        "grant-consent",
        &["--state", state.to_str().unwrap()],
        &Value::Null,
    )
    .ok();
    // A flag found bad before the document was read: the document is still handed on.
    sim.clear();
    let r = sim
        .run("make-secret", &["--display-name", &"x".repeat(300)], &doc)
        .code_is(2);
    assert_eq!(r.doc["app"]["client_id"], doc["app"]["client_id"]);
    assert_eq!(r.doc["steps"]["make-secret"]["error"]["handed_on"], true);
    sim.assert_no_requests();
}

#[test]
fn a_misspelt_state_file_is_named_and_not_created() {
    let sim = sim();
    let doc = registered(&sim);
    std::fs::write(sim.path("contoso.state.json"), doc.to_string()).unwrap();
    sim.clear();
    for tool in ["grant-consent", "make-secret", "verify-sync", "assign-role"] {
        let r = sim
            .run(tool, &["--state", "contso.state.json"], &Value::Null)
            .code_is(2);
        r.assert_stderr("no such state file: contso.state.json")
            .assert_stderr("contoso.state.json");
        assert!(!sim.path("contso.state.json").exists(), "{tool} created it");
    }
    sim.assert_no_requests();
}

/// `script(1)` gives the tool a terminal on stdin and stdout, as an admin's shell does.
fn on_a_terminal(sim: &Sim, command: &str) -> Run {
    let mut c = assert_cmd::Command::new("script");
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", sim.dir())
        .env("XDG_CACHE_HOME", sim.dir().join(".cache"))
        .envs(sim.env())
        .current_dir(sim.dir())
        .timeout(std::time::Duration::from_secs(60))
        .args(["-qec", &format!("{}/{command}", bin_dir()), "/dev/null"]);
    Run::from_output(c.output().unwrap())
}

#[test]
fn on_a_terminal_a_tool_finds_the_default_state_file_and_says_so() {
    let sim = sim();
    let doc = registered(&sim);
    // No default file: it says which state files it sees, and starts from nothing.
    std::fs::write(sim.path("fabrikam.state.json"), "{}").unwrap();
    let r = on_a_terminal(&sim, "grant-consent");
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stdout.contains("state files here: fabrikam.state.json"),
        "{}",
        r.stdout
    );
    // With ./marketo-s2s.state.json it works on that file, as terraform does with its state.
    std::fs::write(sim.path("marketo-s2s.state.json"), doc.to_string()).unwrap();
    let r = on_a_terminal(&sim, "grant-consent");
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains("using ./marketo-s2s.state.json"),
        "{}",
        r.stdout
    );
    let saved = read_doc(&sim.path("marketo-s2s.state.json"));
    assert!(saved["consent"]["grant_id"].is_string(), "{saved:#}");
}

#[test]
fn the_state_lock_follows_no_symlink_and_is_removed_when_done() {
    let sim = sim();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("made-by-the-lock");
    let state = sim.path("state.json");
    std::os::unix::fs::symlink(&victim, sim.path(".state.json.lock")).unwrap();
    let r = sim
        .run(
            "register-app",
            &["--state", state.to_str().unwrap()],
            &Value::Null,
        )
        .code_is(2);
    r.assert_stderr("symbolic link");
    assert!(!victim.exists(), "the lock created a file outside");
    assert!(!state.exists());
    sim.assert_no_requests();

    std::fs::remove_file(sim.path(".state.json.lock")).unwrap();
    sim.run(
        "register-app",
        &["--state", state.to_str().unwrap()],
        &Value::Null,
    )
    .ok();
    let left: Vec<String> = std::fs::read_dir(sim.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "lock files left behind: {left:?}");
}

#[test]
fn publishing_with_no_document_needs_yes() {
    let sim = sim();
    let r = sim
        .run("publish-customizations", &[], &Value::Null)
        .code_is(2);
    r.assert_stderr("no state document").assert_stderr("--yes");
    sim.assert_no_requests();
    // --if-changed with no document has nothing to publish, and says so without a request.
    sim.run("publish-customizations", &["--if-changed"], &Value::Null)
        .ok();
    sim.assert_no_requests();
    sim.run("publish-customizations", &["--yes"], &Value::Null)
        .ok();
    assert_eq!(publish_history(&sim).len(), 1);
}

#[test]
fn an_empty_pipe_is_a_failed_previous_step_not_an_empty_document() {
    let sim = sim();
    sim.setup_chain(&[]);
    let published = publish_history(&sim).len();
    for tool in tools::names().filter(|t| *t != "register-app") {
        sim.clear();
        let r = Run::from_output(
            sim.cmd(tool)
                .args(unattended(tool))
                .write_stdin("")
                .output()
                .unwrap(),
        )
        .code_is(2);
        r.assert_stderr("the previous step produced no document")
            .assert_stderr("/dev/null");
        sim.assert_no_requests();
    }
    assert_eq!(publish_history(&sim).len(), published);
    // An empty --state file is the same mistake.
    let empty = sim.path("empty.json");
    std::fs::write(&empty, "").unwrap();
    sim.run(
        "publish-customizations",
        &["--state", empty.to_str().unwrap()],
        &Value::Null,
    )
    .code_is(2);
    // `< /dev/null` and `{}` still start from nothing; register-app may start from a pipe.
    for stdin in [Value::Null, json!({})] {
        sim.run("grant-consent", &[], &stdin)
            .code_is(2)
            .assert_stderr("is needed");
    }
    // (A connection of its own: the setup above owns the default name's app.)
    let r = Run::from_output(
        sim.cmd("register-app")
            .args(["--name", "Second Connection"])
            .write_stdin("")
            .output()
            .unwrap(),
    )
    .ok();
    assert!(r.doc["app"]["client_id"].is_string());
}

#[test]
fn state_documents_keep_foreign_values_exactly_and_refuse_duplicate_keys() {
    let sim = sim();
    let text = r#"{"u":123456789012345678901234567890,"e":1e2,"z":-0,"x":{"y":[1.50]}}"#;
    let r = Run::from_output(sim.cmd("register-app").write_stdin(text).output().unwrap()).ok();
    for frag in [
        "\"u\":123456789012345678901234567890",
        // The same value; serde_json writes the exponent's sign.
        "\"e\":1e+2",
        "\"z\":-0",
        "\"y\":[1.50]",
    ] {
        assert!(r.stdout.contains(frag), "{frag} lost in {}", r.stdout);
    }
    sim.clear();
    let r = Run::from_output(
        sim.cmd("grant-consent")
            .write_stdin(r#"{"app":{"client_id":"a"},"app":{"client_id":"b"}}"#)
            .output()
            .unwrap(),
    )
    .code_is(2);
    r.assert_stderr("appears twice");
    sim.assert_no_requests();
}
