//! The `--state` file: a dry run never writes it; a failed run leaves it byte-identical until it
//! has written something, then records what it did and the error; two tools on one file lose
//! nothing; a target that cannot be written is refused before any request.

use serde_json::{Value, json};

use crate::common::*;

#[test]
fn a_dry_run_never_writes_the_state_file() {
    let sim = sim();
    let state = finished_state_with_setup_id(&sim);
    let s = state.to_str().unwrap();
    let before = std::fs::read(&state).unwrap();
    for tool in tools::names() {
        sim.clear();
        let r = sim.run(tool, &["--state", s, "--dry-run"], &Value::Null);
        assert!(r.code == 0 || r.code == 6, "{tool}: {}", r.stderr);
        sim.assert_no_writes();
        assert_eq!(
            std::fs::read(&state).unwrap(),
            before,
            "{tool} changed the file"
        );
        // The would-be document goes to stdout instead.
        assert_eq!(r.doc["steps"][tool]["dry_run"], json!(true), "{tool}");
    }
    // --plan FILE takes it instead of stdout.
    let plan = sim.path("plan.json");
    let r = sim
        .run(
            "make-secret",
            &[
                "--state",
                s,
                "--dry-run",
                "--rotate",
                "--plan",
                plan.to_str().unwrap(),
            ],
            &Value::Null,
        )
        .ok();
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    let planned = read_doc(&plan);
    assert_eq!(planned["plan"][0]["method"], "POST", "{planned}");
    assert_eq!(std::fs::read(&state).unwrap(), before);
}

/// A dry run's `--plan FILE` stands in for stdout: a step that fails after reading its input
/// writes its would-be document there too, with its error, the key it missed and the step that writes that key —
/// and the writes it planned, not the previous step's. The state file stays untouched.
#[test]
fn a_failed_dry_run_writes_its_error_and_the_missing_key_to_the_plan_file() {
    let sim = sim();
    let state = sim.path("state.json");
    let s = state.to_str().unwrap();
    // register-app's dry run of a new setup plans the app: no ids yet.
    let first = sim.path("register-app.plan.json");
    sim.run(
        "register-app",
        &["--state", s, "--dry-run", "--plan", first.to_str().unwrap()],
        &Value::Null,
    )
    .ok();
    assert_eq!(read_doc(&first)["plan"][0]["method"], "PATCH");
    let second = sim.path("grant-consent.plan.json");
    let r = sim
        .run(
            "grant-consent",
            &[
                "--state",
                first.to_str().unwrap(),
                "--dry-run",
                "--plan",
                second.to_str().unwrap(),
            ],
            &Value::Null,
        )
        .code_is(2);
    r.assert_stderr("provide app.service_principal_id in the state document");
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    let doc = read_doc(&second);
    let error = &doc["steps"]["grant-consent"]["error"];
    assert_eq!(error["exit_code"], 2, "{doc}");
    assert_eq!(error["kind"], "usage", "{doc}");
    assert_eq!(error["missing_key"], "app.service_principal_id", "{doc}");
    assert_eq!(error["written_by"], "register-app", "{doc}");
    assert_eq!(doc["plan"], json!([]), "{doc}");
    assert_eq!(doc["steps"]["register-app"]["planned_writes"], 1, "{doc}");
    assert!(!state.exists(), "a dry run created the state file");
    sim.assert_no_writes();

    // A bad value found before the document is read leaves no would-be document, so nothing
    // says a key was missing.
    let third = sim.path("configure-marketo.plan.json");
    sim.run(
        "configure-marketo",
        &[
            "--state",
            first.to_str().unwrap(),
            "--dry-run",
            "--plan",
            third.to_str().unwrap(),
            "--record-name",
            " ",
        ],
        &Value::Null,
    )
    .code_is(2)
    .assert_stderr("--record-name must not be empty");
    assert!(!third.exists());
}

#[test]
fn a_failed_run_leaves_the_file_alone_until_it_has_written_something() {
    let sim = sim();
    let state = finished_state_with_setup_id(&sim);
    let s = state.to_str().unwrap();
    // Bad input found by the step itself (no write): byte-identical.
    let mut doc = read_doc(&state);
    doc["secret"]["file"] = json!("bad\u{1b}[31mname");
    let text = serde_json::to_string(&doc).unwrap();
    std::fs::write(&state, &text).unwrap();
    sim.clear();
    sim.run("make-secret", &["--state", s], &Value::Null)
        .code_is(2);
    assert_eq!(std::fs::read_to_string(&state).unwrap(), text);
    sim.assert_no_writes();

    // A publish that fails after it was sent: recorded as pending with the error.
    let state = finished_state_with_setup_id(&sim);
    sim.server.add_fault(json!({
        "path_prefix": "/api/data/v9.2/PublishAllXml", "method": "POST", "status": 403, "count": 1
    }));
    let mut doc = read_doc(&state);
    doc["publish"]["status"] = json!("pending");
    doc["u"] = json!(1);
    std::fs::write(
        &state,
        doc.to_string()
            .replace("\"u\":1", "\"u\":123456789012345678901234567890.50"),
    )
    .unwrap();
    sim.run(
        "publish-customizations",
        &["--state", state.to_str().unwrap(), "--if-changed"],
        &Value::Null,
    )
    .code_is(4);
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(
        text.contains("123456789012345678901234567890.50"),
        "a foreign number changed: {text}"
    );
    let doc = read_doc(&state);
    assert_eq!(doc["publish"]["status"], "pending");
    assert_eq!(
        doc["steps"]["publish-customizations"]["error"]["exit_code"], 4,
        "{doc}"
    );
    assert!(doc["secret"]["key_id"].is_string(), "a key was lost: {doc}");
    // The next success clears the error.
    sim.run(
        "publish-customizations",
        &["--state", state.to_str().unwrap(), "--if-changed"],
        &Value::Null,
    )
    .ok();
    let doc = read_doc(&state);
    assert!(
        doc["steps"]["publish-customizations"]["error"].is_null(),
        "{doc}"
    );
    assert_eq!(doc["publish"]["status"], "published");
}

#[test]
fn two_tools_on_one_state_file_lose_nothing() {
    let sim = federated();
    let state = sim.path("state.json");
    let s = state.to_str().unwrap();
    for tool in ["register-app", "grant-consent"] {
        sim.run(tool, &["--state", s], &Value::Null).ok();
    }
    let spawn = |tool: &str| {
        let mut c = sim.null_stdin_cmd(tool);
        c.args(["--state", s])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let a = spawn("make-secret");
    let b = spawn("set-hrd-policy");
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let doc = read_doc(&state);
    assert!(doc["secret"]["key_id"].is_string(), "{doc}");
    assert!(doc["hrd_policy"]["policy_id"].is_string(), "{doc}");
    assert_eq!(credentials(&sim, &doc).len(), 1);
}

#[test]
fn a_state_target_that_cannot_be_written_is_refused_before_any_request() {
    let sim = sim();
    let doc = registered(&sim);
    for (target, needle) in [
        ("/nonexistent/x.json", "/nonexistent"),
        ("/dev/null", "not a regular file"),
    ] {
        sim.clear();
        let r = sim
            .run("make-secret", &["--state", target], &doc)
            .code_is(2);
        r.assert_stderr(needle);
        sim.assert_no_requests();
    }
}

#[test]
fn a_state_file_that_is_a_symbolic_link_is_refused_before_any_request_and_stays_a_link() {
    let sim = sim();
    let doc = registered(&sim);
    let real = sim.path("real.json");
    std::fs::write(&real, doc.to_string()).unwrap();
    let link = sim.path("link.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let dangling = sim.path("dangling.json");
    std::os::unix::fs::symlink(sim.path("gone.json"), &dangling).unwrap();
    for target in [&link, &dangling] {
        sim.clear();
        let r = sim
            .run(
                "grant-consent",
                &["--state", target.to_str().unwrap()],
                &Value::Null,
            )
            .code_is(2);
        r.assert_stderr("is a symbolic link");
        r.assert_stderr("real path");
        sim.assert_no_requests();
        assert!(
            std::fs::symlink_metadata(target)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{target:?} was replaced by a file"
        );
    }
    assert_eq!(read_doc(&real), doc, "the file the link names is untouched");
    assert!(!sim.path("gone.json").exists());
}
