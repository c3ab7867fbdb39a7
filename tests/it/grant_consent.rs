//! grant-consent: fresh grant, re-run without writes, scope added to an existing grant, missing
//! Dynamics CRM service principal, dry run, faults (throttling, lost answers), 403, bad input.

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

const DYNAMICS: &str = "00000007-0000-0000-c000-000000000000";

/// The AllPrincipals grants of a client service principal, from the emulator's own state.
fn grants_of(sim: &Sim, client_sp: &str) -> Vec<Value> {
    sim.state_objects("oauth2_permission_grants")
        .into_iter()
        .filter(|g| g["clientId"] == client_sp && g["consentType"] == "AllPrincipals")
        .collect()
}

fn dynamics_sp_id(sim: &Sim) -> Option<String> {
    sim.state_objects("service_principals")
        .into_iter()
        .find(|s| s["appId"] == DYNAMICS)
        .and_then(|s| s["id"].as_str().map(str::to_string))
}

/// register-app creates the Dynamics CRM service principal when it is missing; delete it again to
/// give grant-consent a tenant without one.
fn delete_dynamics_sp(sim: &Sim) {
    let id = dynamics_sp_id(sim).expect("Dynamics CRM SP");
    sim.graph_expect(204, "DELETE", &format!("servicePrincipals/{id}"), None);
    assert!(dynamics_sp_id(sim).is_none());
}

#[test]
fn grants_tenant_wide_consent_then_rerun_writes_nothing() {
    let sim = sim();
    let doc = registered(&sim);
    let sp = service_principal_id(&doc);
    sim.clear();

    let first = sim.run("grant-consent", &[], &doc).ok();
    assert!(first.changed("grant-consent"));
    assert!(
        first
            .stderr
            .contains("grant-consent: granted admin consent for user_impersonation"),
        "{}",
        first.stderr
    );
    let grants = grants_of(&sim, &sp);
    assert_eq!(grants.len(), 1, "{grants:#?}");
    let g = &grants[0];
    assert_eq!(g["scope"], "user_impersonation");
    assert!(g["principalId"].is_null());
    assert_eq!(
        g["resourceId"],
        json!(dynamics_sp_id(&sim).expect("Dynamics CRM SP"))
    );
    assert_eq!(first.doc["consent"]["grant_id"], g["id"]);
    assert_eq!(
        first.doc["consent"]["resource_service_principal_id"],
        g["resourceId"]
    );
    assert_eq!(first.doc["consent"]["scope"], "user_impersonation");
    // Keys of other tools pass through untouched.
    assert_eq!(first.doc["app"], doc["app"]);
    let posts: Vec<Value> = sim.writes();
    assert_eq!(posts.len(), 1, "one write: the grant ({posts:#?})");
    assert_eq!(posts[0]["method"], "POST");
    assert_eq!(posts[0]["path"], "/v1.0/oauth2PermissionGrants");

    sim.clear();
    let second = sim.run("grant-consent", &[], &first.doc).ok();
    sim.assert_no_writes();
    assert!(!second.changed("grant-consent"));
    assert!(
        second.stderr.contains("already granted"),
        "{}",
        second.stderr
    );
    assert_eq!(second.doc["consent"], first.doc["consent"]);
    assert_eq!(grants_of(&sim, &sp).len(), 1);
}

#[test]
fn an_existing_grant_without_the_scope_gets_it_added_not_duplicated() {
    let sim = sim();
    let doc = registered(&sim);
    let sp = service_principal_id(&doc);
    let resource = dynamics_sp_id(&sim).expect("Dynamics CRM SP");
    let made = sim.graph_expect(
        201,
        "POST",
        "oauth2PermissionGrants",
        Some(json!({"clientId": sp, "consentType": "AllPrincipals", "resourceId": resource, "scope": "openid"})),
    );
    sim.clear();

    let r = sim.run("grant-consent", &[], &doc).ok();
    let grants = grants_of(&sim, &sp);
    assert_eq!(grants.len(), 1, "{grants:#?}");
    assert_eq!(grants[0]["id"], made["id"]);
    assert_eq!(grants[0]["scope"], "openid user_impersonation");
    let writes = sim.writes();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert_eq!(writes[0]["method"], "PATCH");
    assert_eq!(r.doc["consent"]["grant_id"], made["id"]);
    assert_eq!(r.doc["consent"]["scope"], "openid user_impersonation");
    assert!(
        r.stderr
            .contains("added user_impersonation to the existing grant"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_missing_dynamics_crm_service_principal_is_created_first() {
    let sim = sim_with(Options {
        no_dynamics_sp: true,
        replication_lag_ms: 300,
        ..Default::default()
    });
    let doc = registered(&sim);
    std::thread::sleep(std::time::Duration::from_millis(350));
    delete_dynamics_sp(&sim);
    let r = sim.run("grant-consent", &[], &doc).ok();
    let resource = dynamics_sp_id(&sim).expect("created Dynamics CRM SP");
    assert!(
        r.stderr
            .contains("created the Dynamics CRM service principal"),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.doc["consent"]["resource_service_principal_id"],
        json!(resource)
    );
    let grants = grants_of(&sim, &service_principal_id(&doc));
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0]["resourceId"], json!(resource));

    // And the re-run finds both, writing nothing.
    std::thread::sleep(std::time::Duration::from_millis(350));
    sim.clear();
    sim.run("grant-consent", &[], &r.doc).ok();
    sim.assert_no_writes();
}

#[test]
fn dry_run_lists_the_plan_and_writes_nothing() {
    let sim = sim_with(Options {
        no_dynamics_sp: true,
        ..Default::default()
    });
    let doc = registered(&sim);
    delete_dynamics_sp(&sim);
    sim.clear();
    let r = sim.run("grant-consent", &["--dry-run"], &doc).ok();
    sim.assert_no_writes();
    let plan = r.doc["plan"].as_array().expect("plan");
    assert_eq!(plan.len(), 2, "{plan:#?}");
    assert_eq!(plan[0]["method"], "PATCH");
    assert!(
        plan[0]["url"]
            .as_str()
            .unwrap_or_default()
            .contains(DYNAMICS),
        "{plan:#?}"
    );
    assert_eq!(plan[1]["method"], "POST");
    assert!(
        plan[1]["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/v1.0/oauth2PermissionGrants")
    );
    assert_eq!(plan[1]["body"]["consentType"], "AllPrincipals");
    assert_eq!(plan[1]["body"]["scope"], "user_impersonation");
    assert!(r.doc["consent"]["grant_id"].is_null());
    assert!(
        r.stderr.contains("would grant admin consent"),
        "{}",
        r.stderr
    );
    assert!(grants_of(&sim, &service_principal_id(&doc)).is_empty());
}

#[test]
fn throttling_and_unavailability_are_retried() {
    let sim = sim();
    let doc = registered(&sim);
    sim.server.add_fault(json!({"path_prefix": "/v1.0/oauth2PermissionGrants", "method": "POST", "status": 429, "retry_after": "0.2", "count": 2}));
    sim.server.add_fault(json!({"path_prefix": "/v1.0/servicePrincipals", "method": "GET", "status": 503, "count": 1}));
    sim.clear();
    sim.run("grant-consent", &[], &doc).ok();
    let statuses: Vec<Value> = sim.requests().iter().map(|r| r["status"].clone()).collect();
    assert!(
        statuses.contains(&json!(429)) && statuses.contains(&json!(503)),
        "{statuses:?}"
    );
    assert_eq!(grants_of(&sim, &service_principal_id(&doc)).len(), 1);
}

#[test]
fn a_lost_answer_on_create_still_ends_with_one_grant() {
    let sim = sim();
    let doc = registered(&sim);
    sim.server.add_fault(json!({"path_prefix": "/v1.0/oauth2PermissionGrants", "method": "POST", "kind": "lost_response"}));
    let r = sim.run("grant-consent", &[], &doc).ok();
    let grants = grants_of(&sim, &service_principal_id(&doc));
    assert_eq!(grants.len(), 1, "{grants:#?}");
    assert_eq!(r.doc["consent"]["grant_id"], grants[0]["id"]);
    assert_eq!(grants[0]["scope"], "user_impersonation");
}

/// A run killed after its grant POST went through (the answer lost, the retry never answered,
/// nothing saved) left `consent.pending_create` in the `--state` file: the re-run, which finds
/// the grant, records it as this setup's (`consent.created: true`), writes nothing, and
/// teardown removes it.
#[test]
fn a_grant_created_by_a_killed_run_is_recorded_as_created_by_the_rerun() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let sim = sim();
    let doc = registered(&sim);
    let sp = service_principal_id(&doc);
    let state = sim.path("state.json");
    std::fs::write(&state, doc.to_string()).unwrap();
    let s = state.to_str().unwrap();
    // The POST commits and its answer is lost; core's retry of it never answers.
    for kind in ["lost_response", "stall"] {
        sim.server.add_fault(json!({
            "path_prefix": "/v1.0/oauth2PermissionGrants", "method": "POST", "kind": kind
        }));
    }
    let mut child = sim
        .null_stdin_cmd("grant-consent")
        .args(["--state", s])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !sim.requests().iter().any(|r| r["fault"] == "stall") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the retry never went out"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let grants = grants_of(&sim, &sp);
    assert_eq!(grants.len(), 1, "{grants:#?}");
    assert!(read_doc(&state)["consent"]["grant_id"].is_null());

    sim.clear();
    let r = sim.run("grant-consent", &["--state", s], &Value::Null).ok();
    sim.assert_no_writes();
    r.assert_stderr("already granted");
    let consent = read_doc(&state)["consent"].clone();
    assert_eq!(consent["grant_id"], grants[0]["id"], "{consent}");
    assert_eq!(consent["created"], true, "{consent}");
    assert!(consent.get("pending_create").is_none(), "{consent}");
    assert_eq!(grants_of(&sim, &sp).len(), 1);

    sim.run("teardown", &["--state", s, "--yes"], &Value::Null)
        .ok();
    assert!(grants_of(&sim, &sp).is_empty());
}

#[test]
fn a_caller_without_the_role_gets_exit_4_naming_role_and_permission() {
    let sim = sim();
    let doc = registered(&sim);
    // Sign in as the Marketo app itself: Graph refuses it with 403 (design.md, tenant-sim).
    let object_id = doc["app"]["object_id"].as_str().expect("object id");
    let pw = sim.graph_expect(
        200,
        "POST",
        &format!("applications/{object_id}/addPassword"),
        Some(json!({})),
    );
    let mut c = sim.cmd("grant-consent");
    c.env("AZURE_CLIENT_ID", client_id(&doc))
        .env(
            "AZURE_CLIENT_SECRET",
            pw["secretText"].as_str().expect("secret"),
        )
        .write_stdin(doc.to_string());
    let r = Run::from_output(c.output().expect("run")).code_is(4);
    assert!(
        r.stderr.contains("grant-consent: error:") && r.stderr.contains("403"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("Cloud Application Administrator"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("DelegatedPermissionGrant.ReadWrite.All"),
        "{}",
        r.stderr
    );
    assert!(grants_of(&sim, &service_principal_id(&doc)).is_empty());
}

#[test]
fn verbose_errors_print_each_cause_as_cargo_does() {
    let sim = sim();
    let doc = registered(&sim);
    // A refused create: the step's context wraps the request's error, which holds Graph's answer.
    let run = |extra: &[&str]| {
        sim.server.add_fault(json!({"path_prefix": "/v1.0/oauth2PermissionGrants", "method": "POST", "status": 403, "count": 1}));
        sim.run("grant-consent", extra, &doc).code_is(4)
    };
    let error_line = |r: &Run| {
        let line = r
            .stderr
            .lines()
            .find(|l| l.starts_with("grant-consent: error:"))
            .unwrap_or_default();
        line.split(" [request id")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let quiet = run(&[]);
    let verbose = run(&["-v"]);
    // The one-line report is the same; only -v adds the causes, each under "Caused by:".
    assert!(
        error_line(&quiet).starts_with("grant-consent: error: granting admin consent: POST /v1.0/oauth2PermissionGrants: graph answered 403"),
        "{}",
        quiet.stderr
    );
    assert_eq!(error_line(&quiet), error_line(&verbose));
    assert!(!quiet.stderr.contains("Caused by:"), "{}", quiet.stderr);
    let causes: Vec<&str> = verbose
        .stderr
        .split("\nCaused by:\n  ")
        .skip(1)
        .map(|c| c.lines().next().unwrap_or_default())
        .collect();
    assert_eq!(causes.len(), 2, "{}", verbose.stderr);
    assert_eq!(causes[0], "POST /v1.0/oauth2PermissionGrants");
    assert!(
        causes[1].starts_with("graph answered 403"),
        "{}",
        verbose.stderr
    );
    // The hint follows the causes, as what to do next.
    let hint = verbose.stderr.find("grant-consent: hint:").expect("a hint");
    assert!(hint > verbose.stderr.rfind("Caused by:").unwrap_or_default());
}

#[test]
fn bad_input_exits_2_before_any_request() {
    let sim = sim();
    sim.clear();
    sim.assert_needs(
        "grant-consent",
        "--service-principal-id",
        "app.service_principal_id",
    );
    sim.run("grant-consent", &["--scope", "a b"], &Value::Null)
        .code_is(2);
    sim.run(
        "grant-consent",
        &[],
        &json!({"app": {"service_principal_id": "not-a-guid"}}),
    )
    .code_is(2);
    sim.run(
        "grant-consent",
        &[],
        &json!({"app": {"service_principal_id": 7}}),
    )
    .code_is(2);
    sim.assert_no_requests();
}
