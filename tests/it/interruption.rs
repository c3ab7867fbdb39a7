//! Ctrl-C, SIGTERM and SIGKILL in the middle of a publish: the tool says it
//! was interrupted and how to resume, the state file keeps every key and the owed publish
//! (`publish.status: pending`), re-runs of the steps before it that find "nothing to change" do
//! not make it look paid, an async publish's job survives a SIGKILL during its wait (the re-run
//! waits for it), and on a pipe the document still reaches the end of the pipeline.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

/// The setup up to configure-marketo on `state.json`, with the next publish stalled for ever.
fn ready_to_publish(sim: &Sim) -> std::path::PathBuf {
    let state = sim.path("state.json");
    let s = state.to_str().unwrap();
    let secret = sim.path("marketo.secret");
    for (tool, args) in [
        ("register-app", vec![]),
        ("grant-consent", vec![]),
        (
            "make-secret",
            vec!["--secret-file", secret.to_str().unwrap()],
        ),
        ("assign-role", vec![]),
        ("configure-marketo", vec![]),
    ] {
        let mut a = vec!["--state", s];
        a.extend(args);
        sim.run(tool, &a, &Value::Null).ok();
    }
    sim.server.add_fault(
        json!({"path_prefix": "/api/data/v9.2/PublishAllXml", "method": "POST",
        "kind": "stall", "count": 1}),
    );
    state
}

/// Starts `publish-customizations --state … --if-changed` and waits until its request is out
/// (the state file says `pending` once the publish is about to be sent).
fn start_publish(sim: &Sim, state: &Path) -> std::process::Child {
    let child = sim
        .null_stdin_cmd("publish-customizations")
        .args(["--state", state.to_str().unwrap(), "--if-changed"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_publish_request(sim);
    assert!(
        std::fs::read_to_string(state)
            .unwrap()
            .contains("\"pending\"")
    );
    child
}

/// Until the emulator has the (stalled) `PublishAllXml` request.
fn wait_for_publish_request(sim: &Sim) {
    let started = Instant::now();
    while !sim
        .requests()
        .iter()
        .any(|r| r["path"].as_str().unwrap().ends_with("/PublishAllXml"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the publish never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill(signal: &str, pid: u32) {
    let ok = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {signal} {pid}");
}

/// Waits for the child (at most 30 s) and returns its exit code and stderr.
fn finish(child: std::process::Child) -> (Option<i32>, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the tool did not stop")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ctrl_c_during_a_publish_keeps_the_state_file_and_the_publish_stays_owed_after_reruns() {
    let sim = sim();
    let state = ready_to_publish(&sim);
    let before = read_doc(&state);
    let published_before = publish_history(&sim).len();
    let child = start_publish(&sim, &state);
    let started = Instant::now();
    kill("-INT", child.id());
    let (code, stderr) = finish(child);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("publish-customizations: error: interrupted (Ctrl-C)"),
        "{stderr}"
    );
    let hint = stderr
        .lines()
        .find(|l| l.starts_with("publish-customizations: hint:"))
        .unwrap_or_else(|| panic!("no hint:\n{stderr}"));
    assert!(
        hint.contains(&format!(
            "run the same command: publish-customizations --state {} --if-changed",
            state.display()
        )),
        "{hint}"
    );

    // The file is whole: every key of before, the owed publish and what stopped it.
    let after = read_doc(&state);
    for key in ["app", "consent", "secret", "dynamics", "marketo_config"] {
        assert_eq!(after[key], before[key], "{key}");
    }
    assert_eq!(after["publish"]["status"], "pending");
    assert_eq!(
        after["steps"]["publish-customizations"]["error"]["kind"],
        "interrupted"
    );

    // Re-runs of the Dataverse steps find nothing to change...
    sim.clear();
    for tool in ["assign-role", "configure-marketo"] {
        sim.run(tool, &["--state", state.to_str().unwrap()], &Value::Null)
            .ok()
            .assert_stderr("nothing to change");
    }
    sim.assert_no_writes();
    // ...and the publish is still owed: verify-sync says so, --if-changed publishes.
    let r = sim
        .run(
            "verify-sync",
            &["--state", state.to_str().unwrap(), "--settle", "0"],
            &Value::Null,
        )
        .code_is(6);
    let doc = read_doc(&state);
    let published = doc["verify"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "published")
        .unwrap()
        .clone();
    assert_eq!(published["ok"], false, "{}", r.stderr);
    sim.run(
        "publish-customizations",
        &["--state", state.to_str().unwrap(), "--if-changed"],
        &Value::Null,
    )
    .ok();
    assert_eq!(publish_history(&sim).len(), published_before + 1);
    sim.run(
        "verify-sync",
        &["--state", state.to_str().unwrap()],
        &Value::Null,
    )
    .ok();
}

#[test]
fn sigterm_or_even_sigkill_during_a_publish_leaves_it_owed_in_the_state_file() {
    for signal in ["-TERM", "-KILL"] {
        let sim = sim();
        let state = ready_to_publish(&sim);
        let child = start_publish(&sim, &state);
        kill(signal, child.id());
        let (code, stderr) = finish(child);
        if signal == "-TERM" {
            assert_eq!(code, Some(143), "{stderr}");
            assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
        }
        let after = read_doc(&state);
        assert_eq!(after["publish"]["status"], "pending", "{signal}");
        assert!(after["app"]["client_id"].is_string());
    }
}

/// `publish-customizations --async --state` saves its system job's id as soon as it has it
/// (the `--state` file is checkpointed, as for `pending`): a run killed with SIGKILL while it
/// waits for the job leaves the job named in the file, and the re-run waits for that job
/// instead of publishing a second time.
#[test]
fn sigkill_while_an_async_publish_is_waited_for_leaves_its_job_in_the_state_file() {
    let sim = sim_with(tenant_sim::Options {
        publish_ms: 4000,
        ..Default::default()
    });
    let state = sim.path("state.json");
    std::fs::write(&state, with_app_user(&sim).to_string()).unwrap();
    let s = state.to_str().unwrap();
    sim.clear();
    let child = sim
        .null_stdin_cmd("publish-customizations")
        .args(["--async", "--state", s])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until the tool polls its job: it has the job's id by then.
    let started = Instant::now();
    while !sim.requests().iter().any(|r| {
        r["path"]
            .as_str()
            .unwrap()
            .starts_with("/api/data/v9.2/asyncoperations(")
    }) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the job was never polled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    kill("-KILL", child.id());
    finish(child);
    let doc = read_doc(&state);
    assert_eq!(doc["publish"]["status"], "pending", "{doc}");
    let job = doc["publish"]["async_operation_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the job id was not saved: {doc}"))
        .to_string();

    let r = sim
        .run(
            "publish-customizations",
            &["--async", "--state", s, "--if-changed"],
            &Value::Null,
        )
        .ok();
    r.assert_stderr(&format!("an earlier run's publish (system job {job})"));
    let starts = sim
        .requests()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/api/data/v9.2/PublishAllXmlAsync")
        .count();
    assert_eq!(starts, 1, "a second publish was started");
    assert_eq!(publish_history(&sim).len(), 1);
    let doc = read_doc(&state);
    assert_eq!(doc["publish"]["status"], "published");
    assert_eq!(doc["publish"]["async_operation_id"], json!(job));
}

/// A no-op re-run keeps an earlier run's unpublished change: without a publish in between,
/// `--if-changed` still publishes.
#[test]
fn a_rerun_that_changes_nothing_does_not_forget_an_unpublished_change() {
    let sim = sim();
    let doc = with_app_user(&sim);
    let again = sim.run("assign-role", &[], &doc).ok();
    assert!(!again.changed("assign-role"));
    assert_eq!(again.doc["steps"]["assign-role"]["dataverse_changed"], true);
    let r = sim
        .run("publish-customizations", &["--if-changed"], &again.doc)
        .ok();
    r.assert_stderr("publishing because assign-role changed");
    // Once published, the next no-op run carries nothing.
    let third = sim.run("assign-role", &[], &r.doc).ok();
    assert_eq!(
        third.doc["steps"]["assign-role"]["dataverse_changed"],
        false
    );
}

#[test]
fn ctrl_c_in_a_pipeline_hands_the_document_to_the_end_of_it() {
    let sim = sim();
    let state = ready_to_publish(&sim);
    let input = read_doc(&state);
    std::fs::write(sim.path("in.json"), input.to_string()).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_register-app"))
        .parent()
        .unwrap()
        .display()
        .to_string();
    // The pipeline in its own process group, as a shell's foreground job gets Ctrl-C.
    use std::os::unix::process::CommandExt;
    let mut shell = Command::new("bash");
    shell
        .env_clear()
        .env("PATH", format!("{bin}:/usr/bin:/bin"))
        .env("HOME", sim.dir())
        .envs(sim.env())
        .current_dir(sim.dir())
        .args([
            "-c",
            "set -o pipefail; publish-customizations < in.json 2> publish.err | verify-sync > out.json 2> verify.err; echo $? > code",
        ])
        .process_group(0);
    let mut child = shell.spawn().unwrap();
    wait_for_publish_request(&sim);
    let group = format!("-{}", child.id());
    assert!(
        Command::new("kill")
            .args(["-INT", "--", &group])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    while !sim.path("code").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the pipeline did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(100));
    let code = std::fs::read_to_string(sim.path("code")).unwrap();
    let publish_err = std::fs::read_to_string(sim.path("publish.err")).unwrap();
    let verify_err = std::fs::read_to_string(sim.path("verify.err")).unwrap();
    assert_eq!(code.trim(), "130", "{publish_err}\n{verify_err}");
    assert!(
        publish_err.contains("interrupted (Ctrl-C)"),
        "{publish_err}"
    );
    // verify-sync, interrupted while it waited for its input, read it and passed it on.
    let out = read_doc(&sim.path("out.json"));
    for key in ["app", "consent", "secret", "dynamics", "marketo_config"] {
        assert_eq!(out[key], input[key], "{key}");
    }
    let error = &out["steps"]["publish-customizations"]["error"];
    assert_eq!(error["kind"], "interrupted", "{out:#}");
    assert_eq!(error["handed_on"], true);
    assert_eq!(out["publish"]["status"], "pending");
    assert!(out["steps"].get("verify-sync").is_none(), "{verify_err}");
}

/// Ctrl-C at a confirmation prompt (teardown on a terminal) ends the run at once, as an
/// interrupt: nothing is sent and the state file is untouched, and the prompt does not wait for
/// Enter once the signal is caught.
#[test]
fn ctrl_c_at_a_confirmation_prompt_stops_at_once_and_sends_nothing() {
    use std::io::{Read, Write};
    let sim = sim();
    let doc = registered(&sim);
    let state = sim.path("state.json");
    std::fs::write(&state, doc.to_string()).unwrap();
    let before = std::fs::read(&state).unwrap();
    sim.clear();
    let tool = env!("CARGO_BIN_EXE_teardown");
    let mut child = Command::new("script")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", sim.dir())
        .env("XDG_CACHE_HOME", sim.dir().join(".cache"))
        .env("NO_COLOR", "1")
        .envs(sim.env())
        .current_dir(sim.dir())
        .args([
            "-qec",
            &format!("{tool} --state {}", state.display()),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let screen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = screen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let started = Instant::now();
    while !screen.lock().unwrap().contains("Type yes to continue") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no prompt:\n{}",
            screen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Ctrl-C on the terminal: the line discipline sends SIGINT to the tool.
    child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("Ctrl-C at the prompt did not stop the tool")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let screen = screen.lock().unwrap().clone();
    assert!(
        screen.contains("teardown: error: interrupted (Ctrl-C) while waiting for the answer"),
        "{screen}"
    );
    sim.assert_no_writes();
    assert_eq!(std::fs::read(&state).unwrap(), before);
}
