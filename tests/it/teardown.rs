//! teardown: the emulator's side of every request teardown sends, answered as Graph and
//! Dataverse answer them (deleted apps go to the deleted items, only custom plain columns can be
//! deleted).

use serde_json::{Value, json};

use crate::common::*;

fn str_at<'a>(doc: &'a Value, ptr: &str) -> &'a str {
    doc.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{ptr} in {doc:#}"))
}

// ---- the emulator's side of each request teardown sends, as Graph and Dataverse answer it ----

#[test]
fn the_emulator_moves_a_deleted_app_to_the_deleted_items_and_restores_it() {
    let sim = sim();
    let doc = registered(&sim);
    let object_id = str_at(&doc, "/app/object_id").to_string();
    let client = client_id(&doc);
    sim.graph_expect(204, "DELETE", &format!("applications/{object_id}"), None);
    sim.graph_expect(404, "GET", &format!("applications/{object_id}"), None);
    // Its service principal went with it.
    sim.graph_expect(
        404,
        "GET",
        &format!("servicePrincipals(appId='{client}')"),
        None,
    );
    // A second delete is Graph's 404, not a success.
    sim.graph_expect(404, "DELETE", &format!("applications/{object_id}"), None);
    let listed = sim.graph_expect(
        200,
        "GET",
        "directory/deletedItems/microsoft.graph.application",
        None,
    );
    assert_eq!(listed["value"][0]["id"], json!(object_id), "{listed}");
    let restored = sim.graph_expect(
        200,
        "POST",
        &format!("directory/deletedItems/{object_id}/restore"),
        None,
    );
    assert_eq!(restored["appId"], json!(client));
    assert!(restored["deletedDateTime"].is_null());
    sim.graph_expect(200, "GET", &format!("applications/{object_id}"), None);
    sim.graph_expect(
        404,
        "GET",
        &format!("directory/deletedItems/{object_id}"),
        None,
    );
    sim.graph_expect(
        405,
        "DELETE",
        "directory/deletedItems/microsoft.graph.application",
        None,
    );
}

#[test]
fn the_emulator_deletes_only_custom_plain_columns() {
    let sim = sim();
    sim.run("add-sync-filter", &["--entity", "lead"], &Value::Null)
        .ok();
    let attr = "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='new_synctomkto')";
    sim.dataverse_expect(204, "DELETE", attr, None);
    sim.dataverse_expect(404, "GET", attr, None);
    sim.dataverse_expect(404, "DELETE", attr, None);
    // A system column, a lookup and a primary name column are refused.
    let e = sim.dataverse_expect(
        400,
        "DELETE",
        "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='fullname')",
        None,
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a custom attribute"),
        "{e}"
    );
    let e = sim.dataverse_expect(
        400,
        "DELETE",
        "EntityDefinitions(LogicalName='mkto_marketoconfig')/Attributes(LogicalName='mkto_marketouser')",
        None,
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("relationship"),
        "{e}"
    );
    let e = sim.dataverse_expect(
        400,
        "DELETE",
        "EntityDefinitions(LogicalName='mkto_marketoconfig')/Attributes(LogicalName='mkto_name')",
        None,
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("primary name"),
        "{e}"
    );
}
