//! Publishing resumes instead of repeating (issue 16): an async publish whose wait ran out, or
//! whose answer was lost, is found again rather than started twice; a failed job is reported with
//! its message; add-sync-filter remembers columns it created but could not publish.

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

fn read_doc(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
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

#[test]
fn add_sync_filter_publishes_columns_an_earlier_run_could_not() {
    let sim = sim();
    let state = sim.path("state.json");
    let s = state.to_str().unwrap();
    std::fs::write(&state, registered(&sim).to_string()).unwrap();
    sim.server.add_fault(json!({
        "path_prefix": "/api/data/v9.2/PublishXml", "method": "POST", "status": 403, "count": 1
    }));
    let r = sim.run("add-sync-filter", &["--state", s], &Value::Null);
    assert_ne!(r.code, 0, "{}", r.stderr);
    let doc = read_doc(&state);
    assert_eq!(
        doc["sync_filter"]["publish_pending"],
        json!(["lead", "contact"]),
        "{doc}"
    );
    assert!(publish_history(&sim).is_empty());
    sim.clear();
    let r = sim
        .run("add-sync-filter", &["--state", s], &Value::Null)
        .ok();
    r.assert_stderr("without publishing: publishing now");
    let history = publish_history(&sim);
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["entities"], json!(["lead", "contact"]));
    let doc = read_doc(&state);
    assert!(doc["sync_filter"]["publish_pending"].is_null(), "{doc}");
    // The columns were made by the first run: this run set no default.
    assert_eq!(doc["sync_filter"]["default"], json!(null));
    // And the next run has nothing left to do.
    sim.clear();
    sim.run("add-sync-filter", &["--state", s], &Value::Null)
        .ok();
    sim.assert_no_writes();
}
