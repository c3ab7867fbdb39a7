//! configure-marketo: discovery of the Marketo config entity and lookup, and the lookup set.

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

/// The config records as Dataverse holds them: name → Marketo User lookup value.
fn config_rows(sim: &Sim, prefix: &str) -> Vec<(String, String, Value)> {
    let v = dv_get(
        sim,
        &format!(
            "{prefix}_marketoconfigs?$select={prefix}_marketoconfigid,{prefix}_name,_{prefix}_marketouser_value"
        ),
    );
    v["value"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r[format!("{prefix}_name")]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                r[format!("{prefix}_marketoconfigid")]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                r[format!("_{prefix}_marketouser_value")].clone(),
            )
        })
        .collect()
}

fn record(sim: &Sim, prefix: &str, name: &str) -> (String, Value) {
    config_rows(sim, prefix)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, id, v)| (id, v))
        .unwrap_or_else(|| panic!("no record {name}"))
}

#[test]
fn points_the_default_record_at_the_app_user_then_rerun_writes_nothing() {
    let sim = sim();
    let doc = with_app_user(&sim);
    let user = app_user_id(&doc);
    let (default_id, before) = record(&sim, "mkto", "Default");
    assert!(before.is_null());
    sim.clear();

    let r = sim.run("configure-marketo", &[], &doc).ok();
    assert!(r.changed("configure-marketo"));
    assert_eq!(
        r.doc["marketo_config"],
        json!({
            "entity_set": "mkto_marketoconfigs",
            "entity": "mkto_marketoconfig",
            "record_id": default_id,
            "record_name": "Default",
            "user_lookup": "mkto_marketouser",
            "nav_property": "mkto_MarketoUser",
            "sync_user_id": user,
        })
    );
    assert_eq!(
        r.doc["dynamics"], doc["dynamics"],
        "other keys pass through"
    );
    r.assert_stderr("configure-marketo: found \"Marketo Config\" entity mkto_marketoconfig");
    r.assert_stderr("configure-marketo: set \"Marketo User\"");
    let writes: Vec<String> = sim
        .writes()
        .iter()
        .map(|w| {
            format!(
                "{} {}",
                w["method"].as_str().unwrap_or(""),
                w["path"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        writes,
        vec![format!(
            "PATCH /api/data/v9.2/mkto_marketoconfigs({default_id})"
        )]
    );

    // Dataverse: Default points at the user; the other record is untouched.
    assert_eq!(record(&sim, "mkto", "Default").1, json!(user));
    assert!(record(&sim, "mkto", "Backup").1.is_null());

    sim.clear();
    let again = sim.run("configure-marketo", &[], &r.doc).ok();
    assert!(!again.changed("configure-marketo"));
    assert_eq!(again.doc["marketo_config"], r.doc["marketo_config"]);
    again.assert_stderr("already is user");
    sim.assert_no_writes();
    // The document names everything: one read of the record, no discovery.
    assert_eq!(
        dataverse_paths(&sim),
        vec![format!(
            "GET /api/data/v9.2/mkto_marketoconfigs({default_id})"
        )]
    );
}

/// `METHOD path` of each Dataverse request in the log.
fn dataverse_paths(sim: &Sim) -> Vec<String> {
    sim.requests()
        .iter()
        .filter(|q| q["service"] == "dataverse")
        .map(|q| {
            format!(
                "{} {}",
                q["method"].as_str().unwrap_or(""),
                q["path"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn discovery_reads_each_kind_of_metadata_once() {
    let sim = sim();
    let doc = with_app_user(&sim);
    sim.clear();
    sim.run("configure-marketo", &[], &doc).ok();
    let reads: Vec<String> = dataverse_paths(&sim)
        .into_iter()
        .filter(|p| p.starts_with("GET "))
        .collect();
    // solution, its entity components, their definitions (one query for all), the config
    // entity's lookups to systemuser, their labels (one query for all), the record.
    assert_eq!(reads.len(), 6, "{reads:#?}");
    assert_eq!(
        reads
            .iter()
            .filter(|p| p.contains("/EntityDefinitions"))
            .count(),
        3,
        "{reads:#?}"
    );
}

#[test]
fn names_in_the_document_that_no_longer_fit_are_discovered_again() {
    let sim = sim();
    let doc = with_app_user(&sim);
    let user = app_user_id(&doc);
    let first = sim.run("configure-marketo", &[], &doc).ok();
    let (default_id, _) = record(&sim, "mkto", "Default");
    for (key, stale) in [
        ("entity_set", json!("mkto_nosuchsets")),
        ("user_lookup", json!("mkto_nosuchlookup")),
        ("record_id", json!("11111111-2222-3333-4444-555555555555")),
        ("entity_set", json!("not a name")),
        ("record_id", json!(42)),
        // A navigation property of another column than the lookup read: checking one column
        // and writing another is never taken from the document.
        ("nav_property", json!("createdby")),
    ] {
        let mut stale_doc = first.doc.clone();
        stale_doc["marketo_config"][key] = stale.clone();
        sim.clear();
        let r = sim.run("configure-marketo", &[], &stale_doc).ok();
        assert_eq!(
            r.doc["marketo_config"], first.doc["marketo_config"],
            "{key} = {stale}"
        );
        r.assert_stderr("configure-marketo: found \"Marketo Config\" entity mkto_marketoconfig");
        sim.assert_no_writes();
    }
    // Another record asked for: the document's record is not used.
    sim.clear();
    let r = sim
        .run(
            "configure-marketo",
            &["--record-name", "Backup"],
            &first.doc,
        )
        .ok();
    assert_eq!(record(&sim, "mkto", "Backup").1, json!(user));
    assert_ne!(r.doc["marketo_config"]["record_id"], json!(default_id));
    assert_eq!(r.doc["marketo_config"]["record_name"], "Backup");
    // A flag that contradicts the document wins over it.
    let r = sim
        .run(
            "configure-marketo",
            &["--config-entity", "mkto_marketolog"],
            &first.doc,
        )
        .code_is(4);
    r.assert_stderr("has no lookup to systemuser labelled \"Marketo User\"");
}

#[test]
fn a_changed_user_is_set_through_the_document_names() {
    let sim = sim();
    let doc = with_app_user(&sim);
    let first = sim.run("configure-marketo", &[], &doc).ok();
    let (default_id, _) = record(&sim, "mkto", "Default");
    // Another connection's application user (another app) replaces ours: with the flag.
    let other_doc = other_connection(&sim, "Other Sync");
    let other = app_user_id(&other_doc);
    let mut changed = first.doc.clone();
    changed["dynamics"]["application_user_id"] = json!(other);
    sim.clear();
    let r = sim
        .run(
            "configure-marketo",
            &["--dry-run", "--replace-sync-user", "--sync-user-id", &other],
            &changed,
        )
        .ok();
    let plan = r.doc["plan"].as_array().expect("plan");
    assert_eq!(plan.len(), 1, "{plan:#?}");
    assert_eq!(
        plan[0]["body"],
        json!({"mkto_MarketoUser@odata.bind": format!("/systemusers({other})")})
    );
    assert!(
        plan[0]["url"]
            .as_str()
            .unwrap_or("")
            .ends_with(&format!("/mkto_marketoconfigs({default_id})"))
    );
    // The record through the document's names, then who is replaced and who replaces.
    let paths = dataverse_paths(&sim);
    assert_eq!(paths.len(), 3, "{paths:#?}");
    assert!(
        paths[0].starts_with(&format!(
            "GET /api/data/v9.2/mkto_marketoconfigs({default_id})"
        )),
        "{paths:#?}"
    );
    sim.assert_no_writes();
}

/// A second connection in the same org: its own app and application user (as a second
/// `register-app | assign-role` makes them).
fn other_connection(sim: &Sim, name: &str) -> Value {
    let doc = sim
        .run("register-app", &["--name", name], &Value::Null)
        .ok()
        .doc;
    sim.run("assign-role", &[], &doc).ok().doc
}

/// The seeded person "Admin User": a legacy basic-auth sync user, as far as Marketo knows.
fn a_person(sim: &Sim) -> (String, String) {
    let v = dv_get(
        sim,
        "systemusers?$select=systemuserid,fullname,internalemailaddress&$filter=fullname%20eq%20'Admin%20User'",
    );
    let u = &v["value"][0];
    (
        u["systemuserid"].as_str().unwrap().to_string(),
        u["internalemailaddress"].as_str().unwrap().to_string(),
    )
}

/// Points the Default record's "Marketo User" at `user` (as an admin would in Dynamics).
fn set_marketo_user(sim: &Sim, user: &str) {
    let (id, _) = record(sim, "mkto", "Default");
    sim.dataverse_expect(
        204,
        "PATCH",
        &format!("mkto_marketoconfigs({id})"),
        Some(json!({"mkto_MarketoUser@odata.bind": format!("/systemusers({user})")})),
    );
}

/// configure-marketo never repoints "Marketo User" silently away from another live connection's
/// user: exit 4 with nothing written, naming who it is and the command; with
/// `--replace-sync-user` it replaces, warns, and records the previous user for teardown.
#[test]
fn another_connections_marketo_user_is_replaced_only_with_the_flag() {
    let sim = sim();
    let other = other_connection(&sim, "Other Sync");
    let other_user = app_user_id(&other);
    let other_client = client_id(&other);
    set_marketo_user(&sim, &other_user);
    let doc = with_app_user(&sim);
    let ours = app_user_id(&doc);
    let state = sim.path("st.json");
    std::fs::write(&state, doc.to_string()).unwrap();
    let s = state.to_str().unwrap();
    let before = std::fs::read(&state).unwrap();

    sim.clear();
    let r = sim
        .run("configure-marketo", &["--state", s], &Value::Null)
        .code_is(4);
    r.assert_stderr("Other Sync")
        .assert_stderr(&other_client)
        .assert_stderr("another app's application user")
        .assert_stderr("nothing was changed")
        .assert_stderr(&format!(
            "run configure-marketo --state {s} --replace-sync-user"
        ));
    sim.assert_no_writes();
    assert_eq!(record(&sim, "mkto", "Default").1, json!(other_user));
    assert_eq!(std::fs::read(&state).unwrap(), before, "state untouched");

    // The hint, pasted.
    let r = sim
        .run(
            "configure-marketo",
            &["--state", s, "--replace-sync-user"],
            &Value::Null,
        )
        .ok();
    r.assert_stderr("Marketo Support must update additional parameters")
        .assert_stderr("pauses Marketo's sync");
    assert_eq!(record(&sim, "mkto", "Default").1, json!(ours));
    let done: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(
        done["marketo_config"]["previous_user_id"],
        json!(other_user)
    );
    let label = done["marketo_config"]["previous_user"].as_str().unwrap();
    assert!(
        label.contains("Other Sync") && label.contains(&other_client),
        "{label}"
    );
    // A re-run keeps what was recorded and writes nothing.
    sim.clear();
    sim.run("configure-marketo", &["--state", s], &Value::Null)
        .ok()
        .assert_stderr("already is user");
    sim.assert_no_writes();
    let again: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(
        again["marketo_config"]["previous_user_id"],
        json!(other_user)
    );
}

/// A customer moving from the basic-auth sync (a person as Marketo User) to server-to-server:
/// the same rule, with Marketo's migration warning.
#[test]
fn a_person_as_marketo_user_is_replaced_only_with_the_flag_and_marketos_warning() {
    let sim = sim();
    let (person, mail) = a_person(&sim);
    set_marketo_user(&sim, &person);
    let doc = with_app_user(&sim);
    sim.clear();
    let r = sim.run("configure-marketo", &[], &doc).code_is(4);
    r.assert_stderr("Admin User")
        .assert_stderr(&mail)
        .assert_stderr("a person")
        .assert_stderr("--replace-sync-user");
    sim.assert_no_writes();
    assert_eq!(record(&sim, "mkto", "Default").1, json!(person));

    let r = sim
        .run("configure-marketo", &["--replace-sync-user"], &doc)
        .ok();
    r.assert_stderr("Marketo Support")
        .assert_stderr("until the new credentials are entered in Marketo");
    assert_eq!(r.doc["marketo_config"]["previous_user_id"], json!(person));
    assert!(
        r.doc["marketo_config"]["previous_user"]
            .as_str()
            .unwrap()
            .contains(&mail)
    );
    assert_eq!(record(&sim, "mkto", "Default").1, json!(app_user_id(&doc)));
}

#[test]
fn dry_run_plans_the_patch_and_writes_nothing() {
    let sim = sim();
    let doc = with_app_user(&sim);
    let user = app_user_id(&doc);
    let (default_id, _) = record(&sim, "mkto", "Default");
    sim.clear();
    let r = sim.run("configure-marketo", &["--dry-run"], &doc).ok();
    sim.assert_no_writes();
    let plan = r.doc["plan"].as_array().expect("plan");
    assert_eq!(plan.len(), 1, "{plan:#?}");
    assert_eq!(plan[0]["method"], "PATCH");
    assert!(
        plan[0]["url"]
            .as_str()
            .unwrap_or("")
            .ends_with(&format!("/api/data/v9.2/mkto_marketoconfigs({default_id})"))
    );
    assert_eq!(
        plan[0]["body"],
        json!({"mkto_MarketoUser@odata.bind": format!("/systemusers({user})")})
    );
    assert!(record(&sim, "mkto", "Default").1.is_null());
    r.assert_stderr("dry run: would set");
}

#[test]
fn discovers_names_under_any_schema_prefix() {
    for prefix in ["acme", "zz9"] {
        let sim = sim_with(Options {
            marketo_prefix: prefix.into(),
            ..Default::default()
        });
        let doc = with_app_user(&sim);
        let user = doc["dynamics"]["application_user_id"].clone();
        let r = sim.run("configure-marketo", &[], &doc).ok();
        let m = &r.doc["marketo_config"];
        assert_eq!(m["entity"], json!(format!("{prefix}_marketoconfig")));
        assert_eq!(m["entity_set"], json!(format!("{prefix}_marketoconfigs")));
        assert_eq!(m["user_lookup"], json!(format!("{prefix}_marketouser")));
        // The navigation property is case-sensitive: the schema name's case, not the logical name's.
        assert_eq!(m["nav_property"], json!(format!("{prefix}_MarketoUser")));
        assert_eq!(record(&sim, prefix, "Default").1, user);
        // The other lookup to systemuser ("Last Sync User") was not touched.
        let last = dv_get(
            &sim,
            &format!("{prefix}_marketoconfigs?$select=_{prefix}_lastsyncuser_value"),
        );
        assert!(last["value"][0][format!("_{prefix}_lastsyncuser_value")].is_string());
    }
}

#[test]
fn overrides_skip_discovery_and_pick_another_record() {
    let sim = sim();
    let doc = with_app_user(&sim);
    let user = doc["dynamics"]["application_user_id"].clone();
    sim.clear();
    let r = sim
        .run(
            "configure-marketo",
            &[
                "--config-entity",
                "mkto_marketoconfig",
                "--user-lookup",
                "mkto_marketouser",
                "--user-nav-property",
                "mkto_MarketoUser",
                "--record-name",
                "Backup",
            ],
            &doc,
        )
        .ok();
    assert!(
        !sim.requests().iter().any(|q| q["path"]
            .as_str()
            .unwrap_or("")
            .contains("solutioncomponents")),
        "no discovery through the solution when the names are given"
    );
    assert_eq!(record(&sim, "mkto", "Backup").1, user);
    assert!(record(&sim, "mkto", "Default").1.is_null());
    assert_eq!(
        r.doc["marketo_config"]["record_id"],
        json!(record(&sim, "mkto", "Backup").0)
    );
}

#[test]
fn failed_discovery_exits_4_listing_what_it_found() {
    let sim = sim();
    let doc = with_app_user(&sim);
    sim.clear();

    // An entity without a "Marketo User" lookup: the message lists the lookups it has.
    let r = sim
        .run(
            "configure-marketo",
            &["--config-entity", "mkto_marketolog"],
            &doc,
        )
        .code_is(4);
    r.assert_stderr("has no lookup to systemuser labelled \"Marketo User\"");
    r.assert_stderr("configure-marketo: hint: name it yourself with --config-entity");

    // A lookup name that does not exist.
    let r = sim
        .run("configure-marketo", &["--user-lookup", "mkto_nosuch"], &doc)
        .code_is(4);
    r.assert_stderr("--user-lookup mkto_nosuch");

    // A record that does not exist.
    let r = sim
        .run("configure-marketo", &["--record-name", "Nope"], &doc)
        .code_is(4);
    r.assert_stderr("no mkto_marketoconfig record named \"Nope\"");

    // An unknown entity.
    let r = sim
        .run(
            "configure-marketo",
            &["--config-entity", "nosuch_entity"],
            &doc,
        )
        .code_is(4);
    r.assert_stderr("--config-entity nosuch_entity");
    sim.assert_no_writes();
}

#[test]
fn without_the_marketo_solution_exits_4() {
    let sim = sim_with(Options {
        marketo_version: None,
        ..Default::default()
    });
    let doc = json!({"dynamics": {"application_user_id": "11111111-2222-3333-4444-555555555555"}});
    let r = sim.run("configure-marketo", &[], &doc).code_is(4);
    r.assert_stderr("is not installed");
    r.assert_stderr("hint: import the Marketo solution first");
    sim.assert_no_writes();
}

#[test]
fn bad_input_exits_2_before_any_request() {
    let sim = sim();
    let uid = "11111111-2222-3333-4444-555555555555";
    let cases: Vec<(Vec<&str>, Value, &str)> = vec![
        (vec![], Value::Null, "dynamics.application_user_id"),
        (vec!["--sync-user-id", "nope"], Value::Null, "is not a GUID"),
        (
            vec![],
            json!({"dynamics": {"application_user_id": 7}}),
            "dynamics.application_user_id",
        ),
        (
            vec!["--sync-user-id", uid, "--config-entity-set", "a/b"],
            Value::Null,
            "not a Dataverse name",
        ),
        (
            vec!["--sync-user-id", uid, "--user-nav-property", "x'y"],
            Value::Null,
            "not a Dataverse name",
        ),
        (
            vec!["--sync-user-id", uid, "--record-name", ""],
            Value::Null,
            "--record-name",
        ),
        (
            vec![
                "--sync-user-id",
                uid,
                "--dynamics-url",
                "http://example.com",
            ],
            Value::Null,
            "only https",
        ),
        (
            vec!["--sync-user-id", uid, "--dynamics-url", "::"],
            Value::Null,
            "--dynamics-url",
        ),
    ];
    sim.assert_usage_errors("configure-marketo", &cases);
}

#[test]
fn configure_marketo_finds_the_configuration_under_other_labels() {
    let sim = sim_with(Options {
        marketo_config_label: "Marketo Settings".into(),
        marketo_user_label: "Sync User".into(),
        ..Options::default()
    });
    let doc = with_app_user(&sim);
    let user = app_user_id(&doc);
    let r = sim.run("configure-marketo", &[], &doc).ok();
    r.assert_stderr("found \"Marketo Settings\" entity mkto_marketoconfig");
    assert_eq!(r.doc["marketo_config"]["user_lookup"], "mkto_marketouser");
    let rows = dv_get(
        &sim,
        "mkto_marketoconfigs?$select=mkto_name,_mkto_marketouser_value,_mkto_lastsyncuser_value",
    );
    for row in rows["value"].as_array().expect("rows") {
        if row["mkto_name"] == "Default" {
            assert_eq!(row["_mkto_marketouser_value"], json!(user));
        } else {
            assert_eq!(row["_mkto_marketouser_value"], Value::Null, "{row}");
        }
        assert_ne!(row["_mkto_lastsyncuser_value"], json!(user));
    }
}
