//! assign-role: the application user and its role, against the emulated Dataverse org; a
//! soft-deleted application user is purged and replaced only on request.

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

fn business_unit_id(sim: &Sim, filter: &str) -> String {
    let v = dv_get(
        sim,
        &format!("businessunits?$select=businessunitid,name&$filter={filter}"),
    );
    let units = v["value"].as_array().expect("units");
    assert_eq!(units.len(), 1, "{v}");
    units[0]["businessunitid"].as_str().expect("id").to_string()
}

fn marketo_role_in(sim: &Sim, bu: &str) -> String {
    let v = dv_get(
        sim,
        &format!(
            "roles?$select=roleid&$filter=name%20eq%20'Marketo%20Sync%20User'%20and%20_businessunitid_value%20eq%20{bu}"
        ),
    );
    v["value"][0]["roleid"]
        .as_str()
        .expect("roleid")
        .to_string()
}

fn user_role_ids(sim: &Sim, user: &str) -> Vec<String> {
    dv_get(
        sim,
        &format!("systemusers({user})/systemuserroles_association?$select=roleid"),
    )["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r["roleid"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn creates_the_app_user_with_the_role_then_rerun_writes_nothing() {
    let sim = sim();
    let doc = registered(&sim);
    let cid = client_id(&doc);
    sim.clear();

    let first = sim.run("assign-role", &[], &doc).ok();
    let log = method_paths(&sim.requests());
    let d = &first.doc["dynamics"];
    assert!(first.changed("assign-role"));
    assert_eq!(d["url"], json!(sim.server.dynamics_url()));
    let user_id = d["application_user_id"]
        .as_str()
        .expect("user id")
        .to_string();
    let root = business_unit_id(&sim, "parentbusinessunitid%20eq%20null");
    assert_eq!(d["business_unit_id"], json!(root));
    let role = marketo_role_in(&sim, &root);
    // What this setup made is recorded (a user and a role carry no mark): teardown takes back
    // only that.
    assert_eq!(
        d["roles"],
        json!([{"id": role, "name": "Marketo Sync User", "added": true}])
    );
    assert_eq!(d["application_user_created"], json!(true));
    assert_eq!(
        d["solution"],
        json!({"unique_name": "MarketoLeadManagement", "version": "5.0.2.1"})
    );
    // Unknown keys of earlier steps pass through.
    assert_eq!(first.doc["app"], doc["app"]);
    first.assert_stderr("assign-role: created application user");
    first.assert_stderr("assign-role: assigned role \"Marketo Sync User\"");

    // Exactly two writes: the user and the role association.
    let writes = method_paths(&sim.writes());
    assert_eq!(
        writes,
        vec![
            "POST /api/data/v9.2/systemusers".to_string(),
            format!("POST /api/data/v9.2/systemusers({user_id})/systemuserroles_association/$ref"),
        ]
    );

    // No read-back of the new user (the create answers with it, `Prefer: return=representation`)
    // and no second read of the business unit it was created in.
    let reads: Vec<String> = log.into_iter().filter(|r| r.starts_with("GET ")).collect();
    assert_eq!(
        reads,
        vec![
            "GET /api/data/v9.2/solutions".to_string(),
            "GET /api/data/v9.2/systemusers".to_string(),
            "GET /api/data/v9.2/businessunits".to_string(),
            "GET /api/data/v9.2/roles".to_string(),
        ]
    );

    // Dataverse agrees: one enabled app user, holding the role; its e-mail is the username.
    let users = app_users(&sim, &cid);
    assert_eq!(users.len(), 1, "{users:#?}");
    assert_eq!(users[0]["systemuserid"], json!(user_id));
    assert_eq!(users[0]["isdisabled"], json!(false));
    assert_eq!(users[0]["accessmode"], json!(4));
    assert_eq!(d["username"], users[0]["internalemailaddress"]);
    assert_eq!(user_role_ids(&sim, &user_id), vec![role]);

    // The finished setup, re-run: reads only, and it says so.
    sim.clear();
    let again = sim.run("assign-role", &[], &first.doc).ok();
    let log = method_paths(&sim.requests());
    assert!(!again.changed("assign-role"));
    assert_eq!(again.doc["dynamics"], first.doc["dynamics"]);
    again.assert_stderr("already holds role");
    again.assert_stderr("nothing to change");
    sim.assert_no_writes();
    assert_eq!(app_users(&sim, &cid).len(), 1);
    // solution, the user with its roles, the role: the business unit's name is not needed.
    assert_eq!(log.iter().filter(|r| r.starts_with("GET ")).count(), 3);
}

#[test]
fn dry_run_reads_and_plans_but_writes_nothing() {
    let sim = sim();
    let doc = registered(&sim);
    let cid = client_id(&doc);
    sim.clear();
    let r = sim.run("assign-role", &["--dry-run"], &doc).ok();
    sim.assert_no_writes();
    assert!(sim.api_requests() > 0, "a dry run still reads");
    assert!(app_users(&sim, &cid).is_empty());
    assert!(!r.changed("assign-role"));
    assert_eq!(r.doc["steps"]["assign-role"]["dry_run"], json!(true));
    let plan = r.doc["plan"].as_array().expect("plan");
    assert_eq!(plan.len(), 2, "{plan:#?}");
    assert_eq!(plan[0]["method"], "POST");
    assert!(
        plan[0]["url"]
            .as_str()
            .unwrap_or("")
            .ends_with("/api/data/v9.2/systemusers")
    );
    assert_eq!(plan[0]["body"]["applicationid"], json!(cid));
    assert_eq!(plan[0]["body"]["accessmode"], json!(4));
    assert!(
        plan[1]["url"]
            .as_str()
            .unwrap_or("")
            .ends_with("/systemuserroles_association/$ref")
    );
    r.assert_stderr("dry run: would create an application user");
    // No user exists yet, so nothing names one.
    assert!(r.doc["dynamics"]["application_user_id"].is_null());
}

#[test]
fn without_the_marketo_solution_exits_4_with_the_step_1_hint() {
    let sim = sim_with(Options {
        marketo_version: None,
        ..Default::default()
    });
    let doc = registered(&sim);
    sim.clear();
    let r = sim.run("assign-role", &[], &doc).code_is(4);
    r.assert_stderr(
        "assign-role: error: the Marketo solution \"Marketo Lead Management\" is not installed",
    );
    r.assert_stderr("assign-role: hint: import the Marketo solution first");
    assert_handed_on_unchanged(&r, "assign-role", &doc);
    sim.assert_no_writes();
    assert!(app_users(&sim, &client_id(&doc)).is_empty());
}

#[test]
fn an_old_marketo_solution_is_a_warning() {
    let sim = sim_with(Options {
        marketo_version: Some("4.0.0.9".into()),
        ..Default::default()
    });
    let doc = registered(&sim);
    let r = sim.run("assign-role", &[], &doc).ok();
    r.assert_stderr(
        "assign-role: warning: the Marketo solution is version 4.0.0.9, older than 4.0.0.14",
    );
    assert_eq!(r.doc["dynamics"]["solution"]["version"], "4.0.0.9");
    // Still done: the role is assigned (the warning is about the other users).
    assert_eq!(r.doc["dynamics"]["roles"][0]["name"], "Marketo Sync User");
    // A current version does not warn.
    let current = crate::common::sim();
    let r = current.run("assign-role", &[], &registered(&current)).ok();
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
}

#[test]
fn waits_while_dataverse_does_not_know_the_new_app() {
    // register-app returns right after creating the service principal; Dataverse sees it only
    // after the lag, and refuses the application user until then (0x80041d2a).
    let sim = sim_with(Options {
        replication_lag_ms: 3000,
        ..Default::default()
    });
    let doc = registered(&sim);
    let cid = client_id(&doc);
    sim.clear();
    let r = sim.run("assign-role", &[], &doc).ok();
    let creates: Vec<Value> = sim
        .requests()
        .into_iter()
        .filter(|q| q["method"] == "POST" && q["path"] == "/api/data/v9.2/systemusers")
        .collect();
    assert!(
        creates.len() >= 2,
        "expected a refused create before the one that worked: {creates:#?}"
    );
    assert_eq!(creates[0]["status"], json!(400));
    // 201: the create asks for the new row back (`Prefer: return=representation`).
    assert_eq!(
        creates.last().map(|c| c["status"].clone()),
        Some(json!(201))
    );
    assert!(r.doc["dynamics"]["application_user_id"].is_string());
    r.assert_stderr("assign-role: waiting for Dataverse to learn about client id");
    assert_eq!(app_users(&sim, &cid).len(), 1);
}

#[test]
fn a_lost_create_answer_is_adopted_not_duplicated() {
    let sim = sim();
    let doc = registered(&sim);
    let cid = client_id(&doc);
    sim.server.add_fault(json!({
        "path_prefix": "/api/data/v9.2/systemusers", "method": "POST", "kind": "lost_response", "count": 1
    }));
    let r = sim.run("assign-role", &[], &doc).ok();
    let users = app_users(&sim, &cid);
    assert_eq!(users.len(), 1, "{users:#?}");
    assert_eq!(
        r.doc["dynamics"]["application_user_id"],
        users[0]["systemuserid"]
    );
    assert_eq!(r.doc["dynamics"]["roles"][0]["name"], "Marketo Sync User");
}

#[test]
fn business_unit_flag_puts_the_user_in_that_unit_with_that_units_role() {
    let sim = sim();
    let doc = registered(&sim);
    let r = sim
        .run("assign-role", &["--business-unit", "Sales"], &doc)
        .ok();
    let sales = business_unit_id(&sim, "name%20eq%20'Sales'");
    let root = business_unit_id(&sim, "parentbusinessunitid%20eq%20null");
    assert_ne!(sales, root);
    let d = &r.doc["dynamics"];
    assert_eq!(d["business_unit_id"], json!(sales));
    let role = marketo_role_in(&sim, &sales);
    assert_ne!(
        role,
        marketo_role_in(&sim, &root),
        "each unit has its own copy of the role"
    );
    assert_eq!(d["roles"][0]["id"], json!(role));
    let user = d["application_user_id"].as_str().expect("user");
    assert_eq!(user_role_ids(&sim, user), vec![role]);

    // An unknown unit is refused by name.
    let sim2 = crate::common::sim();
    let doc2 = registered(&sim2);
    sim2.clear();
    let r = sim2
        .run("assign-role", &["--business-unit", "Nowhere"], &doc2)
        .code_is(4);
    r.assert_stderr("no business unit named \"Nowhere\"");
    sim2.assert_no_writes();
}

#[test]
fn a_disabled_application_user_is_enabled() {
    let sim = sim();
    let doc = with_app_user(&sim);
    let user = app_user_id(&doc);
    let (s, v) = sim.dataverse(
        "PATCH",
        &format!("systemusers({user})"),
        Some(json!({"isdisabled": true})),
    );
    assert_eq!(s, 204, "{v}");
    sim.clear();

    let r = sim.run("assign-role", &[], &doc).ok();
    assert!(r.changed("assign-role"));
    r.assert_stderr("assign-role: enabled application user");
    assert_eq!(
        method_paths(&sim.writes()),
        vec![format!("PATCH /api/data/v9.2/systemusers({user})")]
    );
    let u = dv_get(&sim, &format!("systemusers({user})?$select=isdisabled"));
    assert_eq!(u["isdisabled"], json!(false));
}

#[test]
fn extra_roles_are_assigned_and_an_unknown_role_is_refused() {
    let sim = sim();
    let doc = registered(&sim);
    let r = sim
        .run(
            "assign-role",
            &["--role", "Marketo Sync User", "--role", "Basic User"],
            &doc,
        )
        .ok();
    let names: Vec<&str> = r.doc["dynamics"]["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|x| x["name"].as_str())
        .collect();
    assert_eq!(names, ["Marketo Sync User", "Basic User"]);
    let user = r.doc["dynamics"]["application_user_id"]
        .as_str()
        .expect("user");
    assert_eq!(user_role_ids(&sim, user).len(), 2);

    sim.clear();
    let r = sim
        .run("assign-role", &["--role", "No Such Role"], &r.doc)
        .code_is(4);
    r.assert_stderr("no security role named \"No Such Role\"");
    sim.assert_no_writes();
}

#[test]
fn bad_input_exits_2_before_any_request() {
    let sim = sim();
    let cid = "11111111-2222-3333-4444-555555555555";
    let cases: Vec<(Vec<&str>, Value, &str)> = vec![
        (
            vec!["--client-id", cid, "--dynamics-url", "not a url"],
            Value::Null,
            "--dynamics-url",
        ),
        (
            vec![
                "--client-id",
                cid,
                "--dynamics-url",
                "http://contoso.crm.dynamics.com",
            ],
            Value::Null,
            "only https is allowed",
        ),
        (
            vec!["--client-id", "not-a-guid"],
            Value::Null,
            "is not a GUID",
        ),
        (vec![], json!({"app": {"client_id": 5}}), "app.client_id"),
        (
            vec![],
            json!({"app": {"client_id": "nope"}}),
            "app.client_id",
        ),
        (vec![], json!({}), "--client-id"),
        (
            vec!["--client-id", cid, "--role", " "],
            Value::Null,
            "--role",
        ),
    ];
    for r in sim.assert_usage_errors("assign-role", &cases) {
        assert!(r.stderr.starts_with("assign-role: error:"), "{}", r.stderr);
    }
    // A bad URL in the document is as bad as one in a flag (no environment override here).
    let r = run_bare(
        "assign-role",
        sim.dir(),
        &["--client-id", cid],
        r#"{"dynamics": {"url": "http://contoso.crm.dynamics.com"}}"#,
        &[],
    )
    .code_is(2);
    r.assert_stderr("dynamics.url");
    assert!(sim.requests().is_empty());
}

#[test]
fn a_soft_deleted_application_user_is_purged_and_replaced_on_request() {
    let sim = sim();
    let doc = sim.setup_chain(&[]);
    let cid = client_id(&doc);
    let old_user = app_user_id(&doc);
    assert!(sim.server.soft_delete_user(&cid));
    assert!(app_users(&sim, &cid).is_empty());

    // without --purge-deleted: stopped before any write, told what to do
    sim.clear();
    let r = sim.run("assign-role", &[], &doc).code_is(4);
    r.assert_stderr("soft-deleted application user");
    r.assert_stderr("--purge-deleted");
    sim.assert_no_writes();

    let r = sim.run("assign-role", &["--purge-deleted"], &doc).ok();
    r.assert_stderr("purged soft-deleted application user");
    r.assert_stderr(&format!("(systemuserid {old_user})"));
    let users = app_users(&sim, &cid);
    assert_eq!(users.len(), 1, "{users:?}");
    let new_user = users[0]["systemuserid"].as_str().expect("id").to_string();
    assert_ne!(new_user, old_user);
    assert_eq!(users[0]["isdisabled"], json!(false));
    assert_eq!(app_user_id(&r.doc), new_user);
    let roles = dv_get(
        &sim,
        &format!("systemusers({new_user})/systemuserroles_association?$select=name"),
    );
    assert_eq!(roles["value"][0]["name"], "Marketo Sync User");

    // the rest of the chain follows the new user, and the checklist is green
    let r = sim.run("configure-marketo", &[], &r.doc).ok();
    let r = sim
        .run("publish-customizations", &["--if-changed"], &r.doc)
        .ok();
    let r = sim.run("verify-sync", &[], &r.doc).ok();
    assert_eq!(r.doc["verify"]["ok"], json!(true), "{}", r.stderr);
}

/// `--purge-deleted` deletes for good: every input (business unit, roles) is checked first, and
/// only a soft-deleted user of this setup's app is purged.
#[test]
fn purge_deleted_checks_every_input_first_and_purges_only_this_setups_user() {
    let sim = sim();
    let doc = sim.setup_chain(&[]);
    let cid = client_id(&doc);
    let old_user = app_user_id(&doc);
    assert!(sim.server.soft_delete_user(&cid));
    sim.clear();
    // A typo in the business unit, or in a role: exit 4, nothing written.
    sim.run(
        "assign-role",
        &["--purge-deleted", "--business-unit", "Salse"],
        &doc,
    )
    .code_is(4)
    .assert_stderr("no business unit named \"Salse\"");
    sim.assert_no_writes();
    sim.run(
        "assign-role",
        &["--purge-deleted", "--role", "Marketo Sink User"],
        &doc,
    )
    .code_is(4)
    .assert_stderr("no security role named \"Marketo Sink User\"");
    sim.assert_no_writes();
    // A document that records no such user and no setup whose tag the app carries: not purged.
    sim.run(
        "assign-role",
        &["--purge-deleted", "--client-id", &cid],
        &json!({}),
    )
    .code_is(4)
    .assert_stderr("not shown to be this setup's");
    sim.assert_no_writes();
    // The setup's document that no longer records the user: its app carries the setup's tag.
    let mut unrecorded = doc.clone();
    unrecorded.as_object_mut().unwrap().remove("dynamics");
    sim.run("assign-role", &["--purge-deleted"], &unrecorded)
        .ok()
        .assert_stderr(&format!("(systemuserid {old_user})"));

    // A fresh app: a role typo creates no application user.
    let fresh = sim
        .run("register-app", &["--name", "Second App"], &Value::Null)
        .ok()
        .doc;
    sim.clear();
    sim.run("assign-role", &["--role", "Marketo Sink User"], &fresh)
        .code_is(4);
    sim.assert_no_writes();
    assert!(app_users(&sim, &client_id(&fresh)).is_empty());
}
