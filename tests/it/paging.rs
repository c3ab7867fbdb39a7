//! Next-page links (`@odata.nextLink`) as the tools follow them: a bearer token goes only to the
//! origin it was issued for, so a link to another origin (another port, host name or scheme) is
//! refused with exit 4 before anything is sent to it; a link that repeats a page already read
//! ends the run at once.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

fn domain_requests(sim: &Sim) -> Vec<Value> {
    sim.requests()
        .into_iter()
        .filter(|r| r["path"] == "/v1.0/domains")
        .collect()
}

#[test]
fn a_graph_next_link_to_another_origin_is_refused_with_exit_4_and_gets_no_token() {
    let sim = federated();
    let doc = registered(&sim);
    let port = sim.url().rsplit(':').next().unwrap().to_string();
    for link in [
        // Another origin served by the same emulator: the Dynamics port.
        format!("{}/v1.0/domains?$skiptoken=x", sim.server.dynamics_url()),
        // The same server under another host name, and another scheme.
        format!("http://localhost:{port}/v1.0/domains?$skiptoken=x"),
        format!("https://127.0.0.1:{port}/v1.0/domains?$skiptoken=x"),
        "http://evil.example/v1.0/domains?$skiptoken=x".to_string(),
    ] {
        sim.clear();
        sim.server.add_fault(json!({
            "path_prefix": "/v1.0/domains", "method": "GET", "status": 200,
            "body": {"value": [], "@odata.nextLink": link},
        }));
        let r = sim.run("set-hrd-policy", &[], &doc).code_is(4);
        r.assert_stderr("next-page link for domains");
        r.assert_stderr("points outside");
        assert!(!r.stderr.contains("skiptoken"), "{}", r.stderr);
        // The first page only: the link was never followed, so no token went with it.
        assert_eq!(domain_requests(&sim).len(), 1, "{link}");
        assert!(
            sim.requests().iter().all(|q| q["service"] != "dataverse"),
            "{link}: a request reached the Dynamics origin"
        );
        sim.assert_no_writes();
    }
}

#[test]
fn a_dataverse_next_link_to_another_origin_is_refused_with_exit_4_and_gets_no_token() {
    let sim = sim();
    let doc = registered(&sim);
    sim.clear();
    // The Graph origin of the same emulator: another port, so another token audience.
    sim.server.add_fault(json!({
        "path_prefix": "/api/data/v9.2/solutions", "method": "GET", "status": 200,
        "body": {"value": [], "@odata.nextLink": format!("{}/api/data/v9.2/solutions?$skiptoken=x", sim.url())},
    }));
    let r = sim.run("assign-role", &[], &doc).code_is(4);
    r.assert_stderr("points outside");
    assert!(
        sim.requests().iter().all(
            |q| !q["path"].as_str().unwrap_or("").starts_with("/api/data")
                || q["service"] == "dataverse"
        ),
        "the link was followed: {:#?}",
        sim.requests()
    );
    sim.assert_no_writes();
}

#[test]
fn a_graph_next_link_that_loops_ends_at_once_with_exit_4() {
    let sim = federated();
    let doc = registered(&sim);
    sim.clear();
    sim.server.add_fault(json!({
        "path_prefix": "/v1.0/domains", "method": "GET", "status": 200, "count": 50,
        "body": {"value": [], "@odata.nextLink": format!("{}/v1.0/domains?$skiptoken=loop", sim.url())},
    }));
    let t0 = Instant::now();
    let r = sim.run("set-hrd-policy", &[], &doc).code_is(4);
    r.assert_stderr("repeats a page already read");
    assert_eq!(domain_requests(&sim).len(), 2);
    assert!(t0.elapsed() < Duration::from_secs(30));
}
