//! add-sync-filter: Marketo's `new_synctomkto` Boolean field, created and published per entity;
//! columns an earlier run created but could not publish are published by the next.

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

fn field(sim: &Sim, entity: &str) -> (u16, Value) {
    sim.dataverse(
        "GET",
        &format!(
            "EntityDefinitions(LogicalName='{entity}')/Attributes(LogicalName='new_synctomkto')?$select=LogicalName,SchemaName,AttributeType"
        ),
        None,
    )
}

fn seeded(entity: &str, ty: &str) -> Sim {
    sim_with(Options {
        seed_attributes: vec![(entity.into(), "new_synctomkto".into(), ty.into())],
        ..Default::default()
    })
}

#[test]
fn creates_the_field_on_two_entities_publishes_them_then_rerun_writes_nothing() {
    let sim = sim();
    let r = sim
        .run(
            "add-sync-filter",
            &["--entity", "lead", "--entity", "account"],
            &Value::Null,
        )
        .ok();
    assert!(r.changed("add-sync-filter"));
    assert_eq!(r.doc["sync_filter"]["field"], "new_synctomkto");
    assert_eq!(
        r.doc["sync_filter"]["entities"],
        json!([{"entity": "lead", "status": "created"}, {"entity": "account", "status": "created"}])
    );
    assert_eq!(
        r.doc["sync_filter"]["published"],
        json!(["lead", "account"])
    );
    r.assert_stderr(
        "add-sync-filter: created the Boolean field new_synctomkto (\"Sync to Marketo\") on lead",
    );
    r.assert_stderr("only an explicit No keeps a record out");
    assert_eq!(
        method_paths(&sim.writes()),
        vec![
            "POST /api/data/v9.2/EntityDefinitions(LogicalName=%27lead%27)/Attributes",
            "POST /api/data/v9.2/EntityDefinitions(LogicalName=%27account%27)/Attributes",
            "POST /api/data/v9.2/PublishXml",
        ]
    );
    for entity in ["lead", "account"] {
        let (s, a) = field(&sim, entity);
        assert_eq!(s, 200, "{a}");
        assert_eq!(a["AttributeType"], "Boolean");
        assert_eq!(a["SchemaName"], "new_SyncToMkto");
    }
    // contact was not asked for.
    assert_eq!(field(&sim, "contact").0, 404);
    let h = publish_history(&sim);
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_eq!(h[0]["action"], "PublishXml");
    assert_eq!(h[0]["entities"], json!(["lead", "account"]));

    sim.clear();
    let again = sim
        .run(
            "add-sync-filter",
            &["--entity", "lead", "--entity", "account"],
            &r.doc,
        )
        .ok();
    sim.assert_no_writes();
    assert!(!again.changed("add-sync-filter"));
    assert_eq!(
        again.doc["sync_filter"]["entities"],
        json!([{"entity": "lead", "status": "exists"}, {"entity": "account", "status": "exists"}])
    );
    again.assert_stderr("lead already has the Boolean field new_synctomkto");
    assert_eq!(publish_history(&sim).len(), 1);
}

#[test]
fn only_the_changed_entities_are_published() {
    let sim = seeded("lead", "Boolean");
    // The default entities: lead (already has it) and contact.
    let r = sim.run("add-sync-filter", &[], &Value::Null).ok();
    assert_eq!(
        r.doc["sync_filter"]["entities"],
        json!([{"entity": "lead", "status": "exists"}, {"entity": "contact", "status": "created"}])
    );
    let h = publish_history(&sim);
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_eq!(h[0]["entities"], json!(["contact"]));
    assert_eq!(
        method_paths(&sim.writes()),
        vec![
            "POST /api/data/v9.2/EntityDefinitions(LogicalName=%27contact%27)/Attributes",
            "POST /api/data/v9.2/PublishXml",
        ]
    );
}

#[test]
fn a_field_of_another_type_exits_4_and_nothing_is_written() {
    let sim = seeded("contact", "String");
    let r = sim.run("add-sync-filter", &[], &Value::Null).code_is(4);
    r.assert_stderr(
        "add-sync-filter: error: entity contact already has a field new_synctomkto of type String",
    );
    r.assert_stderr("add-sync-filter: hint:");
    sim.assert_no_writes();
    // lead comes first, but is checked, not created, before contact fails.
    assert_eq!(field(&sim, "lead").0, 404);
}

#[test]
fn an_unknown_entity_exits_4_naming_it() {
    let sim = sim();
    let r = sim
        .run(
            "add-sync-filter",
            &["--entity", "lead", "--entity", "nosuchentity"],
            &Value::Null,
        )
        .code_is(4);
    r.assert_stderr("entity \"nosuchentity\" does not exist");
    sim.assert_no_writes();
    assert_eq!(field(&sim, "lead").0, 404);
}

#[test]
fn dry_run_plans_creates_and_the_publish() {
    let sim = sim();
    let r = sim
        .run(
            "add-sync-filter",
            &["--dry-run", "--default", "no"],
            &Value::Null,
        )
        .ok();
    sim.assert_no_writes();
    assert_eq!(
        r.doc["sync_filter"]["entities"],
        json!([{"entity": "lead", "status": "planned"}, {"entity": "contact", "status": "planned"}])
    );
    let plan = r.doc["plan"].as_array().expect("plan");
    assert_eq!(plan.len(), 3, "{plan:#?}");
    assert_eq!(plan[0]["body"]["SchemaName"], "new_SyncToMkto");
    assert_eq!(
        plan[0]["body"]["@odata.type"],
        "Microsoft.Dynamics.CRM.BooleanAttributeMetadata"
    );
    assert_eq!(plan[0]["body"]["DefaultValue"], json!(false));
    assert_eq!(
        plan[2]["body"]["ParameterXml"],
        "<importexportxml><entities><entity>lead</entity><entity>contact</entity></entities></importexportxml>"
    );
    r.assert_stderr("--default no: new records default to No");
    assert_eq!(field(&sim, "lead").0, 404);
    assert!(publish_history(&sim).is_empty());
}

#[test]
fn bad_input_exits_2_before_any_request() {
    let sim = sim();
    let cases: Vec<(Vec<&str>, Value, &str)> = vec![
        (
            vec!["--entity", "lead'"],
            Value::Null,
            "not an entity logical name",
        ),
        (
            vec!["--entity", "a/b"],
            Value::Null,
            "not an entity logical name",
        ),
        (vec!["--default", "maybe"], Value::Null, "--default"),
        (vec!["--display-name", " "], Value::Null, "--display-name"),
        (
            vec!["--dynamics-url", "http://contoso.crm.dynamics.com"],
            Value::Null,
            "only https",
        ),
    ];
    sim.assert_usage_errors("add-sync-filter", &cases);
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

/// A run for other entities keeps the earlier ones in `sync_filter.entities`: that list is where
/// teardown looks for this setup's columns, so a column dropped from it would be neither removed
/// nor named as kept.
#[test]
fn a_run_for_other_entities_keeps_the_earlier_ones_recorded() {
    let sim = sim();
    let first = sim
        .run("add-sync-filter", &["--entity", "account"], &Value::Null)
        .ok();
    let second = sim
        .run("add-sync-filter", &["--entity", "lead"], &first.doc)
        .ok();
    assert_eq!(
        second.doc["sync_filter"]["entities"],
        json!([{"entity": "lead", "status": "created"}, {"entity": "account", "status": "created"}])
    );
    // A malformed earlier record is bad input: exit 2, nothing sent.
    sim.clear();
    let mut bad = second.doc.clone();
    bad["sync_filter"]["entities"] = json!([{"entity": 7}]);
    let r = sim.run("add-sync-filter", &["--entity", "lead"], &bad);
    assert_eq!(r.code, 2, "{}", r.stderr);
    r.assert_stderr("sync_filter.entities");
    assert!(sim.requests().is_empty());
}
