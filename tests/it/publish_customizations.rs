//! publish-customizations: sync and async publishing, the customization lock, --if-changed.

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
