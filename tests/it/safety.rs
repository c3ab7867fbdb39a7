//! Safe on a live customer's tenant (issue 11): the target guard, dry runs and failures that
//! leave the `--state` file alone, empty pipes, secret adoption and rotation, publishing only
//! after Dataverse changes, and two tools on one state file.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::*;

/// A finished setup kept in `dir/state.json` (every step run with `--state`), the secret beside it.
fn finished_state(sim: &Sim) -> PathBuf {
    let state = sim.path("state.json");
    // A setup id from the start, as register-app gives every new setup: make-secret marks its
    // credentials with it, and removes only marked ones.
    let doc = std::fs::read(&state)
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or_else(|_| json!({}));
    std::fs::write(&state, crate::make_secret::with_setup_id(doc).to_string()).unwrap();
    for (tool, args) in chain_steps("marketo.secret") {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend_from_slice(&["--state", state.to_str().unwrap()]);
        let r = sim.run(tool, &a, &Value::Null);
        assert_eq!(r.code, 0, "{tool} failed\nstderr:\n{}", r.stderr);
    }
    state
}

fn read_doc(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The app's password credentials as the emulator holds them.
fn credentials(sim: &Sim, doc: &Value) -> Vec<Value> {
    let object_id = &doc["app"]["object_id"];
    sim.state_objects("applications")
        .into_iter()
        .find(|a| a["id"] == *object_id)
        .and_then(|a| a["passwordCredentials"].as_array().cloned())
        .unwrap_or_default()
}

fn publishes(sim: &Sim) -> usize {
    publish_history(sim).len()
}

#[test]
fn another_tenant_or_org_is_refused_and_the_state_file_stays_byte_identical() {
    let sim = sim();
    let state = finished_state(&sim);
    let before = std::fs::read(&state).unwrap();
    let s = state.to_str().unwrap();
    let other = "0b5e8d4e-7c4a-4c39-9b7e-8e3f1f6f2a10";
    for tool in TOOLS {
        sim.clear();
        let mut c = sim.cmd(tool);
        c.args(["--state", s]).env("AZURE_TENANT_ID", other);
        let r = Run::from_output(c.output().unwrap()).code_is(2);
        r.assert_stderr(other)
            .assert_stderr(&sim.server.tenant_id());
        r.assert_stderr("--retarget");
        sim.assert_no_requests();
        assert_eq!(
            std::fs::read(&state).unwrap(),
            before,
            "{tool} changed the file"
        );
    }
    // The same for an org: localhost and 127.0.0.1 are different origins to the tools.
    let elsewhere = sim.server.dynamics_url().replace("127.0.0.1", "localhost");
    for tool in ["assign-role", "publish-customizations", "verify-sync"] {
        sim.clear();
        let r = sim
            .run(
                tool,
                &["--state", s, "--dynamics-url", &elsewhere],
                &Value::Null,
            )
            .code_is(2);
        r.assert_stderr("dynamics.url").assert_stderr("--retarget");
        sim.assert_no_requests();
        assert_eq!(
            std::fs::read(&state).unwrap(),
            before,
            "{tool} changed the file"
        );
    }
}

#[test]
fn a_tenant_domain_is_resolved_before_any_write() {
    let sim = sim();
    let state = finished_state(&sim);
    let domains = sim.graph_expect(200, "GET", "domains", None);
    let domain = domains["value"][0]["id"].as_str().unwrap().to_string();
    sim.clear();
    // The document's own tenant, named by its domain: accepted, and the re-run writes nothing.
    let r = sim
        .run(
            "make-secret",
            &["--state", state.to_str().unwrap(), "--tenant", &domain],
            &Value::Null,
        )
        .ok();
    assert!(r.stderr.contains("client secret"), "{}", r.stderr);
    sim.assert_no_writes();
    // A document of another tenant, with this tenant's domain: refused after the sign-in
    // tells the tenant id, before any write.
    let mut doc = read_doc(&state);
    let other = "0b5e8d4e-7c4a-4c39-9b7e-8e3f1f6f2a10";
    doc["tenant"]["id"] = json!(other);
    std::fs::write(&state, doc.to_string()).unwrap();
    let before = std::fs::read(&state).unwrap();
    sim.clear();
    let r = sim
        .run(
            "make-secret",
            &[
                "--state",
                state.to_str().unwrap(),
                "--tenant",
                &domain,
                "--rotate",
            ],
            &Value::Null,
        )
        .code_is(2);
    r.assert_stderr(other);
    sim.assert_no_writes();
    assert_eq!(std::fs::read(&state).unwrap(), before);
}

#[test]
fn retarget_moves_the_document_to_another_tenant_and_drops_the_old_ids() {
    let a = sim();
    let state = finished_state(&a);
    let s = state.to_str().unwrap();
    let old = read_doc(&state);
    // Customer B's environment on customer A's file.
    let b = sim();
    let run_b = |args: &[&str]| {
        let mut c = a.null_stdin_cmd("register-app");
        c.envs(b.env()).args(args);
        Run::from_output(c.output().unwrap())
    };
    run_b(&["--state", s])
        .code_is(2)
        .assert_stderr(&b.server.tenant_id());
    assert!(b.applications().is_empty(), "nothing was created in B");
    let r = run_b(&["--state", s, "--retarget"]).ok();
    r.assert_stderr("--retarget: moving this document");
    let doc = read_doc(&state);
    assert_eq!(doc["tenant"]["id"], json!(b.server.tenant_id()));
    assert_eq!(doc["dynamics"]["url"], json!(b.server.dynamics_url()));
    assert_eq!(doc["app"]["display_name"], old["app"]["display_name"]);
    assert_ne!(doc["app"]["client_id"], old["app"]["client_id"]);
    assert_eq!(b.applications().len(), 1);
    for key in ["secret", "consent", "marketo_config", "publish"] {
        assert!(doc[key].is_null(), "{key} of tenant A kept: {doc}");
    }
    assert!(doc["steps"]["make-secret"].is_null(), "{doc}");
}

#[test]
fn a_dry_run_never_writes_the_state_file() {
    let sim = sim();
    let state = finished_state(&sim);
    let s = state.to_str().unwrap();
    let before = std::fs::read(&state).unwrap();
    for tool in TOOLS {
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

#[test]
fn a_failed_run_leaves_the_file_alone_until_it_has_written_something() {
    let sim = sim();
    let state = finished_state(&sim);
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
    let state = finished_state(&sim);
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
fn an_empty_pipe_is_a_failed_previous_step_not_an_empty_document() {
    let sim = sim();
    sim.setup_chain(&[]);
    let published = publishes(&sim);
    for tool in TOOLS.iter().filter(|t| **t != "register-app") {
        sim.clear();
        let r = Run::from_output(sim.cmd(tool).write_stdin("").output().unwrap()).code_is(2);
        r.assert_stderr("the previous step produced no document")
            .assert_stderr("/dev/null");
        sim.assert_no_requests();
    }
    assert_eq!(publishes(&sim), published);
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
fn a_new_secret_or_an_entra_change_does_not_publish() {
    let sim = sim();
    let doc = sim.setup_chain(&[]);
    let published = publishes(&sim);
    // 800 days is longer than the 24 months the secret has: a new one is added.
    let doc = sim
        .run(
            "make-secret",
            &["--min-validity", "800d", "--expires-in", "1000d"],
            &doc,
        )
        .ok()
        .doc;
    assert!(doc["steps"]["make-secret"]["changed"] == json!(true));
    assert_eq!(
        doc["steps"]["make-secret"]["dataverse_changed"],
        json!(false)
    );
    let doc = sim
        .run(
            "register-app",
            &["--name", "Marketo Integration (renamed)"],
            &doc,
        )
        .ok()
        .doc;
    let r = sim
        .run("publish-customizations", &["--if-changed"], &doc)
        .ok();
    assert_eq!(r.doc["publish"]["status"], "skipped-unchanged");
    assert_eq!(publishes(&sim), published);
}

#[test]
fn verify_sync_fails_until_the_dataverse_changes_are_published() {
    let sim = sim();
    let mut doc = Value::Null;
    let secret = sim.path("marketo.secret");
    for (tool, args) in chain_steps(secret.to_str().unwrap()) {
        if tool == "publish-customizations" {
            continue;
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        doc = sim.run(tool, &a, &doc).ok().doc;
    }
    let r = sim.run("verify-sync", &["--settle", "0"], &doc).code_is(6);
    let check = r.doc["verify"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "published")
        .cloned()
        .unwrap();
    assert_eq!(check["ok"], json!(false), "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("assign-role"),
        "{check}"
    );
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("publish-customizations")
    );
    let doc = sim
        .run("publish-customizations", &["--if-changed"], &r.doc)
        .ok()
        .doc;
    sim.run("verify-sync", &["--settle", "0"], &doc).ok();
}

#[test]
fn two_pipeline_runs_from_nothing_leave_one_credential() {
    let sim = sim();
    // The one-line pipeline without --state: the secret file defaults to the current folder.
    // The second run says which connection it is (`--setup-id`): a run from nothing that does
    // not is a new connection, and stops at the first one's app (issue 20).
    let pipeline = |sim: &Sim, register: &[&str]| {
        let mut doc = Value::Null;
        for tool in ["register-app", "grant-consent", "make-secret"] {
            let args = if tool == "register-app" {
                register
            } else {
                &[]
            };
            doc = sim.run(tool, args, &doc).ok().doc;
        }
        doc
    };
    let first = pipeline(&sim, &[]);
    sim.clear();
    let setup = first["setup"]["id"].as_str().unwrap().to_string();
    let second = pipeline(&sim, &["--setup-id", &setup]);
    assert_eq!(credentials(&sim, &second).len(), 1);
    assert_eq!(first["secret"]["key_id"], second["secret"]["key_id"]);
    sim.assert_no_writes();
    // Deleting the file after pasting it into Marketo: a warning, no new secret, no publish.
    std::fs::remove_file(second["secret"]["file"].as_str().unwrap()).unwrap();
    sim.clear();
    let r = sim.run("make-secret", &[], &second).ok();
    r.assert_stderr("is missing").assert_stderr("--rotate");
    sim.assert_no_writes();
    assert_eq!(r.doc["secret"]["key_id"], second["secret"]["key_id"]);
}

#[test]
fn rotate_keeps_the_old_secret_working_until_it_is_retired() {
    let sim = sim();
    let state = finished_state(&sim);
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
fn a_secret_path_that_is_a_fifo_a_device_or_holds_a_control_character_is_refused_first() {
    let sim = sim();
    let doc = sim.setup_chain(&[]);
    let fifo = sim.path("secret.fifo");
    mkfifo(&fifo);
    for tool in ["make-secret", "verify-sync"] {
        for bad in [fifo.to_str().unwrap(), "/dev/stdout", "x\u{0}y", "x\ny"] {
            let mut d = doc.clone();
            d["secret"]["file"] = json!(bad);
            sim.clear();
            let r = sim.run(tool, &[], &d).code_is(2);
            assert!(
                r.stderr.contains("secret.file"),
                "{tool} {bad:?}: {}",
                r.stderr
            );
            sim.assert_no_requests();
        }
    }
}

#[test]
fn a_tenant_that_is_not_a_tenant_is_refused_before_the_admin_secret_is_sent() {
    let sim = sim();
    for bad in ["..", ".", "a..b", "contoso", "../x"] {
        sim.clear();
        let mut c = sim.null_stdin_cmd("register-app");
        c.env("AZURE_TENANT_ID", bad);
        let r = Run::from_output(c.output().unwrap()).code_is(2);
        r.assert_stderr("neither a tenant id");
        sim.assert_no_requests();
    }
}
