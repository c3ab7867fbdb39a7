//! publish-customizations: sync and async publishing, the customization lock, `--if-changed`
//! (a new secret or an Entra change publishes nothing); an async publish whose wait ran out, or
//! whose answer was lost, is found again rather than started twice, and a failed job is reported
//! with its message and stays owed.

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

fn posts_to(sim: &Sim, action: &str) -> Vec<Value> {
    let path = format!("/api/data/v9.2/{action}");
    sim.requests()
        .into_iter()
        .filter(|r| r["method"] == "POST" && r["path"] == json!(path))
        .collect()
}

#[test]
fn publishes_all_customizations() {
    let sim = sim();
    let doc = with_app_user(&sim);
    sim.clear();
    let r = sim.run("publish-customizations", &[], &doc).ok();
    assert!(r.changed("publish-customizations"), "publishing is a write");
    let p = &r.doc["publish"];
    assert_eq!(p["status"], "published");
    assert_eq!(p["mode"], "sync");
    assert!(p["async_operation_id"].is_null());
    assert!(p["at"].is_string());
    assert_eq!(p["last_published_at"], p["at"]);
    r.assert_stderr("publish-customizations: published all customizations in");
    let writes: Vec<Value> = sim.writes();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert_eq!(writes[0]["path"], "/api/data/v9.2/PublishAllXml");
    let h = publish_history(&sim);
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_eq!(h[0]["action"], "PublishAllXml");
}

#[test]
fn async_mode_polls_the_system_job() {
    let sim = sim_with(Options {
        publish_ms: 600,
        ..Default::default()
    });
    let doc = with_app_user(&sim);
    sim.clear();
    let r = sim.run("publish-customizations", &["--async"], &doc).ok();
    let p = &r.doc["publish"];
    assert_eq!(p["status"], "published");
    assert_eq!(p["mode"], "async");
    let job = p["async_operation_id"]
        .as_str()
        .expect("job id")
        .to_string();
    r.assert_stderr(&format!(
        "started publishing all customizations (system job {job})"
    ));
    // The job was polled until it succeeded.
    let polls = sim
        .requests()
        .into_iter()
        .filter(|q| q["path"] == json!(format!("/api/data/v9.2/asyncoperations({job})")))
        .count();
    assert!(
        polls >= 2,
        "expected several polls of a 600 ms job, got {polls}"
    );
    assert_eq!(posts_to(&sim, "PublishAllXmlAsync").len(), 1);
    assert!(posts_to(&sim, "PublishAllXml").is_empty());
    let rows = sim.state()["dataverse"]["rows"]["asyncoperation"].clone();
    let row = rows
        .as_array()
        .and_then(|a| a.iter().find(|x| x["asyncoperationid"] == json!(job)))
        .cloned()
        .expect("job row");
    assert_eq!(row["statuscode"], json!(30));
}

#[test]
fn the_customization_lock_is_retried() {
    let sim = sim();
    let doc = with_app_user(&sim);
    sim.clear();
    // Dataverse answers 400 0x80090412 while another customization runs (reference §3).
    sim.server.add_fault(json!({
        "path_prefix": "/api/data/v9.2/PublishAllXml", "method": "POST", "status": 400, "count": 2
    }));
    let r = sim.run("publish-customizations", &[], &doc).ok();
    assert_eq!(r.doc["publish"]["status"], "published");
    let statuses: Vec<Value> = posts_to(&sim, "PublishAllXml")
        .iter()
        .map(|q| q["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!(400), json!(400), json!(204)]);
    assert_eq!(publish_history(&sim).len(), 1);
}

#[test]
fn if_changed_skips_when_nothing_changed_and_the_rerun_chain_writes_nothing() {
    let sim = sim();
    // The whole Dynamics half of the chain, first run: everything changes, so it publishes.
    let mut doc = registered(&sim);
    for tool in ["assign-role", "configure-marketo"] {
        doc = sim.run(tool, &[], &doc).ok().doc;
    }
    let first = sim
        .run("publish-customizations", &["--if-changed"], &doc)
        .ok();
    assert_eq!(first.doc["publish"]["status"], "published");
    first.assert_stderr("publishing because");
    let published_at = first.doc["publish"]["last_published_at"].clone();

    // The same chain again: only reads, and publish says why it sends nothing.
    sim.clear();
    let mut doc = sim.run("register-app", &[], &first.doc).ok().doc;
    for tool in ["assign-role", "configure-marketo"] {
        doc = sim.run(tool, &[], &doc).ok().doc;
    }
    let before = sim.api_requests();
    let r = sim
        .run("publish-customizations", &["--if-changed"], &doc)
        .ok();
    sim.assert_no_writes();
    assert_eq!(
        sim.api_requests(),
        before,
        "--if-changed with nothing changed sends no request at all"
    );
    assert!(!r.changed("publish-customizations"));
    assert_eq!(r.doc["publish"]["status"], "skipped-unchanged");
    assert_eq!(r.doc["publish"]["last_published_at"], published_at);
    r.assert_stderr(
        "publish-customizations: no earlier step changed Dataverse since the last publish: not publishing (--if-changed)",
    );
    assert_eq!(publish_history(&sim).len(), 1);
}

#[test]
fn if_changed_ignores_steps_that_publish_themselves_or_only_read() {
    // A --state runbook re-run: add-sync-filter (after publish, publishing its own entities) and
    // verify-sync still say `changed` from the previous run; that is no reason to publish.
    let sim = sim();
    let doc = json!({
        "dynamics": {"url": sim.server.dynamics_url()},
        "steps": {
            "assign-role": {"changed": false},
            "add-sync-filter": {"changed": true},
            "verify-sync": {"changed": true}
        }
    });
    let r = sim
        .run("publish-customizations", &["--if-changed"], &doc)
        .ok();
    assert_eq!(r.doc["publish"]["status"], "skipped-unchanged");
    assert_eq!(sim.api_requests(), 0);
}

#[test]
fn if_changed_publishes_when_an_earlier_publish_did_not_finish() {
    let sim = sim();
    let doc = json!({
        "steps": {"assign-role": {"changed": false}, "configure-marketo": {"changed": false}},
        "publish": {"status": "pending"}
    });
    let r = sim
        .run("publish-customizations", &["--if-changed"], &doc)
        .ok();
    assert_eq!(r.doc["publish"]["status"], "published");
    r.assert_stderr("an earlier publish did not finish");
    assert_eq!(publish_history(&sim).len(), 1);
}

#[test]
fn dry_run_plans_the_publish() {
    let sim = sim();
    let doc = with_app_user(&sim);
    sim.clear();
    let r = sim.run("publish-customizations", &["--dry-run"], &doc).ok();
    sim.assert_no_writes();
    assert_eq!(r.doc["publish"]["status"], "planned");
    let plan = r.doc["plan"].as_array().expect("plan");
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0]["method"], "POST");
    assert!(
        plan[0]["url"]
            .as_str()
            .unwrap_or("")
            .ends_with("/api/data/v9.2/PublishAllXml")
    );
    assert!(publish_history(&sim).is_empty());

    let r = sim
        .run("publish-customizations", &["--dry-run", "--async"], &doc)
        .ok();
    sim.assert_no_writes();
    assert!(
        r.doc["plan"][0]["url"]
            .as_str()
            .unwrap_or("")
            .ends_with("/PublishAllXmlAsync")
    );
}

#[test]
fn bad_input_exits_2_before_any_request() {
    let sim = sim();
    let cases: Vec<(Vec<&str>, Value, &str)> = vec![
        (
            vec!["--dynamics-url", "http://contoso.crm.dynamics.com"],
            Value::Null,
            "only https",
        ),
        (
            vec!["--dynamics-url", "contoso"],
            Value::Null,
            "--dynamics-url",
        ),
        (
            vec!["--publish-timeout", "soon"],
            Value::Null,
            "--publish-timeout",
        ),
    ];
    sim.assert_usage_errors("publish-customizations", &cases);
    let r = sim
        .run(
            "publish-customizations",
            &["--if-changed"],
            &json!({"steps": "yes"}),
        )
        .code_is(2);
    r.assert_stderr("steps");
    assert!(sim.requests().is_empty());
}

#[test]
fn if_changed_alone_on_a_finished_setup_does_not_publish_again() {
    // The document of a finished chain still says `changed: true` for every earlier step (they
    // changed things before the last publish): only changes after that publish count.
    let sim = crate::common::sim();
    let doc = sim.setup_chain(&[]);
    sim.clear();
    let r = sim
        .run("publish-customizations", &["--if-changed"], &doc)
        .ok();
    assert_eq!(
        r.doc["publish"]["status"], "skipped-unchanged",
        "{}",
        r.stderr
    );
    sim.assert_no_writes();
}

fn publishes(sim: &Sim) -> usize {
    publish_history(sim).len()
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

fn async_starts(sim: &Sim) -> usize {
    sim.requests()
        .iter()
        .filter(|r| {
            r["method"] == "POST"
                && r["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/PublishAllXmlAsync"))
        })
        .count()
}

/// A document with an application user, kept in `state.json`.
fn state_with_app_user(sim: &Sim) -> std::path::PathBuf {
    let state = sim.path("state.json");
    std::fs::write(&state, with_app_user(sim).to_string()).unwrap();
    state
}

#[test]
fn an_async_publish_that_ran_out_of_time_is_resumed_not_restarted() {
    let sim = sim_with(Options {
        publish_ms: 4000,
        ..Default::default()
    });
    let state = state_with_app_user(&sim);
    let s = state.to_str().unwrap();
    sim.clear();
    sim.run(
        "publish-customizations",
        &["--async", "--state", s, "--timeout", "1s"],
        &Value::Null,
    )
    .code_is(5);
    let doc = read_doc(&state);
    assert_eq!(doc["publish"]["status"], "pending", "{doc}");
    let job = doc["publish"]["async_operation_id"].clone();
    assert!(job.is_string(), "{doc}");
    assert_eq!(async_starts(&sim), 1);

    let r = sim
        .run(
            "publish-customizations",
            &["--async", "--state", s],
            &Value::Null,
        )
        .ok();
    r.assert_stderr("still running: waiting for it");
    assert_eq!(async_starts(&sim), 1, "a second job was started");
    let doc = read_doc(&state);
    assert_eq!(doc["publish"]["status"], "published");
    assert_eq!(doc["publish"]["async_operation_id"], job);
    assert_eq!(publish_history(&sim).len(), 1);
}

#[test]
fn a_lost_answer_to_the_async_publish_finds_its_job() {
    let sim = sim_with(Options {
        publish_ms: 300,
        ..Default::default()
    });
    let doc = with_app_user(&sim);
    sim.clear();
    sim.server.add_fault(json!({
        "path_prefix": "/api/data/v9.2/PublishAllXmlAsync", "method": "POST",
        "kind": "lost_response", "count": 1
    }));
    let r = sim.run("publish-customizations", &["--async"], &doc).ok();
    r.assert_stderr("the answer to PublishAllXmlAsync was lost");
    assert_eq!(async_starts(&sim), 1, "the lost request was sent again");
    assert_eq!(r.doc["publish"]["status"], "published");
    assert_eq!(publish_history(&sim).len(), 1);
}

#[test]
fn a_failed_publish_job_is_exit_4_with_its_message_and_stays_pending() {
    let sim = sim();
    let state = state_with_app_user(&sim);
    let s = state.to_str().unwrap();
    sim.server
        .fail_next_publish("Solution manifest import: FAILURE: entity lead is locked");
    let r = sim
        .run(
            "publish-customizations",
            &["--async", "--state", s],
            &Value::Null,
        )
        .code_is(4);
    r.assert_stderr("entity lead is locked");
    let doc = read_doc(&state);
    assert_eq!(doc["publish"]["status"], "pending");
    assert_eq!(
        doc["steps"]["publish-customizations"]["error"]["exit_code"],
        4
    );
    // The re-run starts a new job (the failed one cannot be resumed) and succeeds.
    let r = sim
        .run(
            "publish-customizations",
            &["--async", "--state", s, "--if-changed"],
            &Value::Null,
        )
        .ok();
    r.assert_stderr("failed (Solution manifest import");
    assert_eq!(read_doc(&state)["publish"]["status"], "published");
    assert_eq!(publish_history(&sim).len(), 1);
}

/// An async publish after an earlier one that finished publishes again: the earlier run's job
/// (recorded with `published`) is not a publish still owed, so it is neither waited for nor
/// taken for this one — with `--if-changed`, without it, and after a run killed before its own
/// job started (the file then says `pending`, but with no job of its own).
#[test]
fn an_async_publish_after_a_finished_one_publishes_again_not_reusing_its_job() {
    let sim = sim_with(Options {
        publish_ms: 300,
        ..Default::default()
    });
    let state = state_with_app_user(&sim);
    let s = state.to_str().unwrap();
    sim.run(
        "publish-customizations",
        &["--async", "--state", s],
        &Value::Null,
    )
    .ok();
    let first = read_doc(&state)["publish"]["async_operation_id"].clone();
    assert!(first.is_string());
    assert_eq!(publishes(&sim), 1);

    // A Dataverse change after that publish, then an --if-changed publish: a new job.
    sim.run("configure-marketo", &["--state", s], &Value::Null)
        .ok();
    let r = sim
        .run(
            "publish-customizations",
            &["--async", "--if-changed", "--state", s],
            &Value::Null,
        )
        .ok();
    r.assert_stderr("publishing because configure-marketo changed");
    r.assert_stderr("started publishing all customizations (system job");
    assert_eq!(async_starts(&sim), 2);
    assert_eq!(publishes(&sim), 2, "nothing was published:\n{}", r.stderr);
    let second = read_doc(&state)["publish"]["async_operation_id"].clone();
    assert!(second.is_string() && second != first, "{second} {first}");

    // A run killed while its PublishAllXmlAsync is out (no job of its own yet): the publish
    // stays owed, and the file names no job — the earlier one is not this debt's.
    sim.server.add_fault(json!({
        "path_prefix": "/api/data/v9.2/PublishAllXmlAsync", "method": "POST",
        "kind": "stall", "count": 1
    }));
    let mut child = sim
        .null_stdin_cmd("publish-customizations")
        .args(["--async", "--state", s])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !sim.requests().iter().any(|r| r["fault"] == "stall") {
        assert!(
            started.elapsed().as_secs() < 30,
            "the publish never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let doc = read_doc(&state);
    assert_eq!(doc["publish"]["status"], "pending", "{doc}");
    assert!(doc["publish"]["async_operation_id"].is_null(), "{doc}");
    // Its re-run publishes, with --if-changed and then without it.
    let r = sim
        .run(
            "publish-customizations",
            &["--async", "--state", s, "--if-changed"],
            &Value::Null,
        )
        .ok();
    r.assert_stderr("an earlier publish did not finish");
    assert_eq!(publishes(&sim), 3, "nothing was published:\n{}", r.stderr);
    sim.run(
        "publish-customizations",
        &["--async", "--state", s],
        &Value::Null,
    )
    .ok();
    assert_eq!(publishes(&sim), 4);
    assert_eq!(read_doc(&state)["publish"]["status"], "published");
}

/// After a lost answer to `PublishAllXmlAsync` the job looked for is the one that request
/// started: a job that was there before it — an earlier publish finished a moment ago, here
/// from another document — is never taken for it (nothing would be published).
#[test]
fn a_lost_answer_to_the_async_publish_never_finds_an_earlier_job() {
    let sim = sim_with(Options {
        publish_ms: 300,
        ..Default::default()
    });
    let doc = with_app_user(&sim);
    let earlier = sim.run("publish-customizations", &["--async"], &doc).ok();
    let earlier_job = earlier.doc["publish"]["async_operation_id"].clone();
    assert_eq!(publishes(&sim), 1);

    // The connection is cut once the request is out, before Dataverse took it: no job started.
    sim.server.add_fault(json!({
        "path_prefix": "/api/data/v9.2/PublishAllXmlAsync", "method": "POST",
        "kind": "drop", "count": 1
    }));
    let r = sim
        .run("publish-customizations", &["--async"], &doc)
        .code_is(5);
    r.assert_stderr("no publish job was found after the lost answer: re-run");
    assert_eq!(r.doc["publish"]["status"], "pending", "{}", r.stderr);
    assert!(r.doc["publish"]["async_operation_id"].is_null());
    assert_eq!(publishes(&sim), 1);

    // Taken and started, then the answer lost: its own job is found, not the earlier one.
    sim.server.add_fault(json!({
        "path_prefix": "/api/data/v9.2/PublishAllXmlAsync", "method": "POST",
        "kind": "lost_response", "count": 1
    }));
    let r = sim.run("publish-customizations", &["--async"], &r.doc).ok();
    r.assert_stderr("the answer to PublishAllXmlAsync was lost; found the system job it started");
    let job = r.doc["publish"]["async_operation_id"].clone();
    assert!(job.is_string() && job != earlier_job, "{job} {earlier_job}");
    assert_eq!(publishes(&sim), 2);
}
