//! teardown: after a full setup everything setup made is gone (or disabled, for the application
//! user) and a re-run sends no write; --yes is needed off a terminal; --dry-run only plans;
//! partial documents; what is not ours (a shared HRD policy, a Marketo User set to someone else)
//! is left alone; the service principal it removed is a deleted item, restorable after its app.

use serde_json::{Value, json};

use crate::common::*;

/// A finished setup: federated tenant, the whole chain, and
/// the sync filter on lead and contact.
fn full_setup(sim: &Sim) -> Value {
    let doc = sim.setup_chain(&[]);
    sim.run("add-sync-filter", &[], &doc).ok().doc
}

fn str_at<'a>(doc: &'a Value, ptr: &str) -> &'a str {
    doc.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{ptr} in {doc:#}"))
}

/// The application user with its roles, as Dataverse shows it.
fn app_user(sim: &Sim, id: &str) -> Value {
    dv_get(
        sim,
        &format!(
            "systemusers({id})?$select=isdisabled&$expand=systemuserroles_association($select=roleid,name)"
        ),
    )
}

/// The "Marketo User" lookup of the Default record.
fn marketo_user(sim: &Sim, record_id: &str) -> Value {
    dv_get(
        sim,
        &format!("mkto_marketoconfigs({record_id})?$select=_mkto_marketouser_value"),
    )["_mkto_marketouser_value"]
        .clone()
}

/// Points the Default record's "Marketo User" at `user` (as an admin would in Dynamics).
fn set_marketo_user(sim: &Sim, record_id: &str, user: &str) {
    sim.dataverse_expect(
        204,
        "PATCH",
        &format!("mkto_marketoconfigs({record_id})"),
        Some(json!({"mkto_MarketoUser@odata.bind": format!("/systemusers({user})")})),
    );
}

fn sync_filter_column(sim: &Sim, entity: &str) -> u16 {
    sim.dataverse(
        "GET",
        &format!(
            "EntityDefinitions(LogicalName='{entity}')/Attributes(LogicalName='new_synctomkto')"
        ),
        None,
    )
    .0
}

#[test]
fn removes_everything_setup_made_and_a_second_run_sends_no_write() {
    let sim = federated();
    let doc = full_setup(&sim);
    let client = client_id(&doc);
    let sp = service_principal_id(&doc);
    let object_id = str_at(&doc, "/app/object_id").to_string();
    let user = app_user_id(&doc);
    let policy = str_at(&doc, "/hrd_policy/policy_id").to_string();
    let record = str_at(&doc, "/marketo_config/record_id").to_string();
    let secret_file = std::path::PathBuf::from(str_at(&doc, "/secret/file"));
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    assert_eq!(marketo_user(&sim, &record), json!(user));
    assert_eq!(
        sim.token_for(&client, secret.trim(), &sim.server.dynamics_url())
            .0,
        200
    );

    sim.clear();
    let r = sim.run("teardown", &["--yes"], &doc).ok();
    assert!(r.changed("teardown"));

    // Entra ID: the app and its service principal answer 404, no grant from it remains, our
    // policy is gone, and the app waits in the deleted items, restorable.
    sim.graph_expect(404, "GET", &format!("applications/{object_id}"), None);
    sim.graph_expect(404, "GET", &format!("applications(appId='{client}')"), None);
    sim.graph_expect(404, "GET", &format!("servicePrincipals/{sp}"), None);
    sim.graph_expect(
        404,
        "GET",
        &format!("servicePrincipals(appId='{client}')"),
        None,
    );
    let grants = sim.graph_expect(
        200,
        "GET",
        &format!("oauth2PermissionGrants?$filter=clientId%20eq%20%27{sp}%27"),
        None,
    );
    assert_eq!(grants["value"], json!([]));
    assert!(
        sim.state_objects("oauth2_permission_grants")
            .iter()
            .all(|g| g["clientId"] != json!(sp))
    );
    sim.graph_expect(
        404,
        "GET",
        &format!("policies/homeRealmDiscoveryPolicies/{policy}"),
        None,
    );
    let deleted = sim.graph_expect(
        200,
        "GET",
        &format!("directory/deletedItems/{object_id}"),
        None,
    );
    assert_eq!(deleted["appId"], json!(client));
    assert!(deleted["deletedDateTime"].is_string(), "{deleted}");
    // The secret no longer signs in, and its file is gone.
    assert_ne!(
        sim.token_for(&client, secret.trim(), &sim.server.dynamics_url())
            .0,
        200
    );
    assert!(!secret_file.exists(), "the secret file is still there");

    // Dataverse: the user stays (audit), disabled and without the role; Marketo User is empty;
    // the sync-filter columns are kept (they hold data).
    let u = app_user(&sim, &user);
    assert_eq!(u["isdisabled"], json!(true), "{u}");
    assert_eq!(u["systemuserroles_association"], json!([]), "{u}");
    assert!(marketo_user(&sim, &record).is_null());
    assert_eq!(sync_filter_column(&sim, "lead"), 200);
    assert_eq!(sync_filter_column(&sim, "contact"), 200);

    // The requests, in reverse order of the setup.
    let writes = method_paths(&sim.writes());
    let expected_prefixes = [
        format!("PATCH /api/data/v9.2/mkto_marketoconfigs({record})"),
        format!("DELETE /api/data/v9.2/systemusers({user})/systemuserroles_association/$ref"),
        format!("PATCH /api/data/v9.2/systemusers({user})"),
        format!("DELETE /v1.0/servicePrincipals/{sp}/homeRealmDiscoveryPolicies/{policy}/$ref"),
        format!("DELETE /v1.0/policies/homeRealmDiscoveryPolicies/{policy}"),
        "DELETE /v1.0/oauth2PermissionGrants/".to_string(),
        format!("DELETE /v1.0/servicePrincipals/{sp}"),
        format!("DELETE /v1.0/applications/{object_id}"),
    ];
    assert_eq!(writes.len(), expected_prefixes.len(), "{writes:#?}");
    for (w, want) in writes.iter().zip(&expected_prefixes) {
        assert!(
            w.starts_with(want.as_str()),
            "{w} is not {want}\n{writes:#?}"
        );
    }

    // One line per object, the audit and restore notes, the secret never shown.
    r.assert_stderr("teardown: cleared \"Marketo User\"")
        .assert_stderr("teardown: removed role \"Marketo Sync User\"")
        .assert_stderr("teardown: disabled application user")
        .assert_stderr("Dataverse keeps users for audit")
        .assert_stderr("teardown: unassigned Home Realm Discovery policy")
        .assert_stderr("teardown: deleted Home Realm Discovery policy")
        .assert_stderr("teardown: deleted the admin consent grant")
        .assert_stderr(&format!("teardown: deleted service principal \"Marketo Integration\" ({sp})"))
        .assert_stderr("teardown: deleted app registration \"Marketo Integration\"")
        .assert_stderr(&format!(
            "restore the app first, then its service principal (restoring the app does not bring the service principal back): \
             az rest --method POST --url {url}/v1.0/directory/deletedItems/{object_id}/restore \
             && az rest --method POST --url {url}/v1.0/directory/deletedItems/{sp}/restore",
            url = sim.url()
        ))
        .assert_stderr("teardown: deleted the secret file")
        .assert_stderr("teardown: removed 9 object(s), kept 1")
        .assert_stderr("teardown:   kept the sync-filter column new_synctomkto on lead, contact: it holds each record's sync choice")
        .assert_stderr(&format!(
            "teardown: now in Marketo, Admin > CRM > Microsoft Dynamics: remove this connection's credentials (client id {client})"
        ));
    assert!(
        !r.all_output().contains(secret.trim()),
        "the secret was printed"
    );

    // The document: the keys of what went are gone, what was done is recorded.
    let out = &r.doc;
    for gone in [
        "/app/client_id",
        "/app/object_id",
        "/app/service_principal_id",
        "/consent",
        "/secret",
        "/hrd_policy",
        "/dynamics/roles",
        "/marketo_config/sync_user_id",
        "/verify",
    ] {
        assert!(out.pointer(gone).is_none(), "{gone} is still in {out:#}");
    }
    assert_eq!(out["app"]["unique_name"], doc["app"]["unique_name"]);
    assert_eq!(out["dynamics"]["application_user_disabled"], json!(true));
    assert_eq!(out["sync_filter"], doc["sync_filter"]);
    assert_eq!(out["teardown"]["client_id"], json!(client));
    assert_eq!(out["teardown"]["application_object_id"], json!(object_id));
    assert_eq!(
        out["teardown"]["restore_command"],
        json!(format!(
            "az rest --method POST --url {url}/v1.0/directory/deletedItems/{object_id}/restore \
             && az rest --method POST --url {url}/v1.0/directory/deletedItems/{sp}/restore",
            url = sim.url()
        ))
    );
    let kinds: Vec<&str> = out["teardown"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "marketo_user_lookup",
            "role_assignment",
            "application_user_disabled",
            "hrd_policy_assignment",
            "hrd_policy",
            "oauth2_permission_grant",
            "service_principal",
            "application",
            "secret_file"
        ]
    );

    // A second run finds everything by its keys, reads, and writes nothing.
    sim.clear();
    let again = sim.run("teardown", &["--yes"], out).ok();
    sim.assert_no_writes();
    assert!(!again.changed("teardown"));
    again
        .assert_stderr("already deleted")
        .assert_stderr("is already disabled")
        .assert_stderr("teardown: nothing to change");
    assert_eq!(again.doc["teardown"], out["teardown"]);
}

#[test]
fn without_yes_and_without_a_terminal_it_exits_2_before_any_request() {
    let sim = sim();
    let doc = registered(&sim);
    sim.clear();
    let r = sim.run("teardown", &[], &doc).code_is(2);
    r.assert_stderr("teardown: error: ")
        .assert_stderr("needs --yes")
        .assert_stderr("teardown: hint: run it with --dry-run first");
    assert_handed_on_unchanged(&r, "teardown", &doc);
    sim.assert_no_requests();
    sim.graph_expect(
        200,
        "GET",
        &format!("applications(appId='{}')", client_id(&doc)),
        None,
    );
}

#[test]
fn dry_run_reads_plans_every_removal_and_writes_nothing() {
    let sim = federated();
    let doc = full_setup(&sim);
    let object_id = str_at(&doc, "/app/object_id").to_string();
    let secret_file = std::path::PathBuf::from(str_at(&doc, "/secret/file"));
    sim.clear();

    // No --yes needed: nothing is written.
    let r = sim.run("teardown", &["--dry-run"], &doc).ok();
    sim.assert_no_writes();
    assert!(sim.api_requests() > 0, "a dry run reads");
    assert!(secret_file.exists());
    sim.graph_expect(200, "GET", &format!("applications/{object_id}"), None);
    r.assert_stderr("teardown: dry run: would delete app registration")
        .assert_stderr("teardown: dry run: would disable application user")
        .assert_stderr("teardown: dry run: would delete the secret file")
        .assert_stderr("write(s) planned, none sent");
    let plan: Vec<String> = r.doc["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["method"].as_str().unwrap(),
                p["url"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(plan.len(), 8, "{plan:#?}");
    assert!(
        plan.last()
            .unwrap()
            .ends_with(&format!("/v1.0/applications/{object_id}")),
        "{plan:#?}"
    );
    assert!(
        plan.iter()
            .any(|p| p.starts_with("PATCH ") && p.contains("systemusers("))
    );
    // The document keeps every key: nothing was removed.
    assert_eq!(r.doc["app"], doc["app"]);
    assert_eq!(r.doc["secret"], doc["secret"]);
    assert!(r.doc.get("teardown").is_none());
    assert_eq!(r.doc["steps"]["teardown"]["dry_run"], json!(true));
    assert_eq!(r.doc["steps"]["teardown"]["planned_writes"], json!(8));
}

#[test]
fn a_partial_document_finds_the_objects_by_their_keys() {
    // A setup that stopped after grant-consent, whose document kept only the app's unique name.
    let sim = sim();
    let doc = registered(&sim);
    let doc = sim.run("grant-consent", &[], &doc).ok().doc;
    let client = client_id(&doc);
    let sp = service_principal_id(&doc);
    let partial = json!({
        "tenant": doc["tenant"],
        "setup": doc["setup"],
        "app": {"unique_name": doc["app"]["unique_name"], "display_name": doc["app"]["display_name"]},
    });
    sim.clear();

    let r = sim.run("teardown", &["--yes"], &partial).ok();
    sim.graph_expect(404, "GET", &format!("applications(appId='{client}')"), None);
    sim.graph_expect(404, "GET", &format!("servicePrincipals/{sp}"), None);
    assert!(
        sim.state_objects("oauth2_permission_grants")
            .iter()
            .all(|g| g["clientId"] != json!(sp))
    );
    r.assert_stderr(&format!("no application user for client id {client}"))
        .assert_stderr("teardown: deleted the admin consent grant")
        .assert_stderr("teardown: deleted service principal")
        .assert_stderr("teardown: deleted app registration");
    let methods = method_paths(&sim.writes());
    assert_eq!(methods.len(), 3, "{methods:#?}");
    assert_eq!(r.doc["teardown"]["client_id"], json!(client));

    // Again, from its own output: reads only.
    sim.clear();
    let again = sim.run("teardown", &["--yes"], &r.doc).ok();
    sim.assert_no_writes();
    again.assert_stderr("already deleted");
}

#[test]
fn a_document_without_marketo_config_names_finds_marketo_user_itself() {
    // configure-marketo set the lookup, but its output was lost (a pipeline that failed after
    // it): the document stops at assign-role's.
    let sim = sim();
    let doc = with_app_user(&sim);
    let configured = sim.run("configure-marketo", &[], &doc).ok().doc;
    let record = str_at(&configured, "/marketo_config/record_id").to_string();
    let user = app_user_id(&doc);
    assert_eq!(marketo_user(&sim, &record), json!(user));
    assert!(doc.get("marketo_config").is_none());
    sim.clear();

    let r = sim.run("teardown", &["--yes"], &doc).ok();
    r.assert_stderr("found the Marketo configuration record");
    assert_eq!(marketo_user(&sim, &record), Value::Null);

    // Someone else's "Marketo User" is left alone as with the document's names.
    let (_, who) = sim.dataverse("GET", "WhoAmI", None);
    let admin = who["UserId"].as_str().unwrap().to_string();
    set_marketo_user(&sim, &record, &admin);
    sim.clear();
    let again = sim.run("teardown", &["--yes"], &r.doc).ok();
    again.assert_stderr("kept \"Marketo User\" of the Marketo configuration record");
    sim.assert_no_writes();
    assert_eq!(marketo_user(&sim, &record), json!(admin));
}

#[test]
fn without_the_marketo_solution_the_missing_names_are_a_warning_not_a_failure() {
    let sim = sim();
    let doc = with_app_user(&sim);
    // No Marketo solution to discover from (every solutions query answers an empty list).
    sim.server.add_fault(json!({
        "path_prefix": "/api/data/v9.2/solutions", "method": "GET", "status": 200,
        "body": {"value": []}, "count": 100
    }));
    let r = sim.run("teardown", &["--yes"], &doc).ok();
    r.assert_stderr("the Marketo configuration was not found")
        .assert_stderr("clear it in Dynamics");
}

#[test]
fn an_hrd_policy_another_service_principal_uses_is_unassigned_but_kept() {
    let sim = federated();
    let doc = full_setup(&sim);
    let policy = str_at(&doc, "/hrd_policy/policy_id").to_string();
    // Another app's service principal shares our policy.
    let other = sim
        .run(
            "register-app",
            &["--name", "Another Integration"],
            &Value::Null,
        )
        .ok()
        .doc;
    let other_sp = service_principal_id(&other);
    sim.graph_expect(
        204,
        "POST",
        &format!("servicePrincipals/{other_sp}/homeRealmDiscoveryPolicies/$ref"),
        Some(json!({"@odata.id": format!("{}/v1.0/policies/homeRealmDiscoveryPolicies/{policy}", sim.url())})),
    );
    sim.clear();

    let r = sim.run("teardown", &["--yes"], &doc).ok();
    r.assert_stderr("teardown: unassigned Home Realm Discovery policy")
        .assert_stderr("the policy itself is kept: 1 other service principal(s) use it");
    assert!(
        !r.stderr.contains("deleted Home Realm Discovery policy"),
        "{}",
        r.stderr
    );
    let applies = sim.graph_expect(
        200,
        "GET",
        &format!("policies/homeRealmDiscoveryPolicies/{policy}/appliesTo"),
        None,
    );
    let ids: Vec<&str> = applies["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [other_sp.as_str()]);
    assert_eq!(r.doc["hrd_policy"]["status"], json!("unassigned"));
    assert_eq!(r.doc["hrd_policy"]["policy_id"], json!(policy));

    sim.clear();
    let again = sim.run("teardown", &["--yes"], &r.doc).ok();
    sim.assert_no_writes();
    again.assert_stderr("kept Home Realm Discovery policy");
}

#[test]
fn a_marketo_user_pointing_at_someone_else_is_left_alone() {
    let sim = sim();
    let doc = sim.setup_chain(&[]);
    let record = str_at(&doc, "/marketo_config/record_id").to_string();
    let admin = dv_get(
        &sim,
        "systemusers?$select=systemuserid&$filter=internalemailaddress%20eq%20%27admin@contoso.onmicrosoft.com%27",
    )["value"][0]["systemuserid"]
        .as_str()
        .unwrap()
        .to_string();
    set_marketo_user(&sim, &record, &admin);
    sim.clear();

    let r = sim.run("teardown", &["--yes"], &doc).ok();
    assert_eq!(marketo_user(&sim, &record), json!(admin));
    r.assert_stderr(&format!(
        "kept \"Marketo User\" of the Marketo configuration record ({record}): it points at user {admin}, not at this setup's application user"
    ));
    assert!(
        !method_paths(&sim.writes())
            .iter()
            .any(|w| w.contains("mkto_marketoconfigs")),
        "the config record was written"
    );
    // The rest went as usual.
    let u = app_user(&sim, &app_user_id(&doc));
    assert_eq!(u["isdisabled"], json!(true));
}

#[test]
fn remove_sync_filter_deletes_the_columns_publishes_and_warns() {
    let sim = sim();
    let doc = full_setup(&sim);
    sim.clear();
    let r = sim
        .run("teardown", &["--yes", "--remove-sync-filter"], &doc)
        .ok();
    r.assert_stderr("teardown: warning: --remove-sync-filter deletes new_synctomkto on lead, contact with every record's value")
        .assert_stderr("teardown: deleted the sync-filter column new_synctomkto on lead")
        .assert_stderr("teardown: published lead, contact");
    assert_eq!(sync_filter_column(&sim, "lead"), 404);
    assert_eq!(sync_filter_column(&sim, "contact"), 404);
    let writes = method_paths(&sim.writes());
    assert!(
        writes[0].starts_with(
            "DELETE /api/data/v9.2/EntityDefinitions(LogicalName=%27lead%27)/Attributes("
        ),
        "{writes:#?}"
    );
    assert!(writes[2].ends_with("/PublishXml"), "{writes:#?}");
    assert!(r.doc.get("sync_filter").is_none());

    sim.clear();
    let again = sim
        .run(
            "teardown",
            &["--yes", "--remove-sync-filter", "--entity", "lead"],
            &r.doc,
        )
        .ok();
    sim.assert_no_writes();
    again.assert_stderr("lead has no sync-filter column new_synctomkto: already deleted");
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

#[test]
fn a_document_naming_another_file_does_not_get_it_deleted() {
    let sim = sim();
    let mut doc = registered(&sim);
    let precious = sim.path("notes.txt");
    std::fs::write(&precious, "not a secret").unwrap();
    doc["secret"] = json!({"file": precious.to_str().unwrap()});
    let r = sim.run("teardown", &["--yes"], &doc).ok();
    assert!(
        precious.exists(),
        "teardown deleted a file make-secret did not write"
    );
    r.assert_stderr("does not look like a file make-secret wrote");
}

#[test]
fn right_after_the_setup_it_waits_out_replication_instead_of_leaving_objects_behind() {
    let sim = sim_with(tenant_sim::Options {
        replication_lag_ms: 1500,
        ..Default::default()
    });
    let doc = registered(&sim);
    let sp = service_principal_id(&doc);
    // The service principal register-app just wrote is not on every replica yet; teardown must
    // still find and remove it, not call it "already deleted".
    let r = sim.run("teardown", &["--yes"], &doc).ok();
    r.assert_stderr(&format!(
        "teardown: deleted service principal \"Marketo Integration\" ({sp})"
    ))
    .assert_stderr("teardown: deleted app registration");
    assert!(!r.stderr.contains("already deleted"), "{}", r.stderr);
    std::thread::sleep(std::time::Duration::from_millis(1600));
    sim.graph_expect(404, "GET", &format!("servicePrincipals/{sp}"), None);
    sim.graph_expect(
        404,
        "GET",
        &format!("applications(appId='{}')", client_id(&doc)),
        None,
    );

    // A re-run right away sends nothing, even though the removals are recent.
    sim.clear();
    sim.run("teardown", &["--yes"], &r.doc).ok();
    sim.assert_no_writes();
}

/// Runs teardown on a pseudo-terminal (util-linux `script`), typing `answer` at its prompt.
fn teardown_on_a_terminal(sim: &Sim, state: &std::path::Path, answer: &str) -> Run {
    let tool = env!("CARGO_BIN_EXE_teardown");
    let mut c = assert_cmd::Command::new("script");
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", sim.dir())
        .env("XDG_CACHE_HOME", sim.dir().join(".cache"))
        .envs(sim.env())
        .current_dir(sim.dir())
        .timeout(std::time::Duration::from_secs(60))
        .args([
            "-qec",
            &format!("{tool} --state {}", state.display()),
            "/dev/null",
        ])
        .write_stdin(format!("{answer}\n"));
    Run::from_output(c.output().unwrap())
}

#[test]
fn on_a_terminal_it_shows_the_plan_and_removes_only_after_yes() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux script (a pseudo-terminal) is not installed");
        return;
    }
    let sim = sim();
    let doc = registered(&sim);
    let state = sim.path("state.json");
    std::fs::write(&state, doc.to_string()).unwrap();
    sim.clear();

    let r = teardown_on_a_terminal(&sim, &state, "no").code_is(2);
    assert!(
        r.stdout.contains("will delete app registration"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Type yes to continue"), "{}", r.stdout);
    assert!(
        r.stdout.contains("not confirmed: nothing was removed"),
        "{}",
        r.stdout
    );
    sim.assert_no_writes();

    let r = teardown_on_a_terminal(&sim, &state, "yes").ok();
    assert!(
        r.stdout.contains("deleted app registration"),
        "{}",
        r.stdout
    );
    sim.graph_expect(
        404,
        "GET",
        &format!("applications(appId='{}')", client_id(&doc)),
        None,
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["teardown"]["client_id"], json!(client_id(&doc)));
    assert!(saved["app"].get("client_id").is_none());
}

// ---- documents that name what the setup did not make -----------------------------------------

#[test]
fn a_service_principal_without_our_app_is_never_deleted() {
    // Dynamics CRM's own service principal, named by a document that names no app.
    let sim = sim();
    let (s, crm) = sim.graph(
        "GET",
        "servicePrincipals(appId='00000007-0000-0000-c000-000000000000')",
        None,
    );
    assert_eq!(s, 200, "{crm}");
    let crm_id = crm["id"].as_str().unwrap().to_string();
    sim.clear();
    let doc = json!({"app": {"service_principal_id": crm_id}});
    let r = sim.run("teardown", &["--yes"], &doc).ok();
    sim.assert_no_writes();
    r.assert_stderr("is not touched");
    sim.graph_expect(200, "GET", &format!("servicePrincipals/{crm_id}"), None);
}

#[test]
fn only_the_apps_own_application_user_is_disabled() {
    let sim = sim();
    // A person (the admin) named as the application user, by a document naming no app.
    let (_, who) = sim.dataverse("GET", "WhoAmI", None);
    let admin = who["UserId"].as_str().unwrap().to_string();
    sim.clear();
    let r = sim
        .run(
            "teardown",
            &["--yes"],
            &json!({"dynamics": {"application_user_id": admin}}),
        )
        .ok();
    sim.assert_no_writes();
    r.assert_stderr("is not touched");

    // App A's document naming app B's application user: B's user keeps its role and stays
    // enabled; A's own user is the one disabled.
    let a = with_app_user(&sim);
    let b = sim
        .run("register-app", &["--name", "Other App"], &Value::Null)
        .ok()
        .doc;
    let b = sim.run("assign-role", &[], &b).ok().doc;
    let mut hostile = a.clone();
    hostile["dynamics"]["application_user_id"] = b["dynamics"]["application_user_id"].clone();
    sim.run("teardown", &["--yes"], &hostile).ok();
    assert_eq!(app_user(&sim, &app_user_id(&b))["isdisabled"], false);
    assert_eq!(app_user(&sim, &app_user_id(&a))["isdisabled"], true);
}

#[test]
fn a_document_mixing_two_apps_is_refused_before_any_removal() {
    let sim = sim();
    let a = full_setup(&sim);
    let b = sim
        .run("register-app", &["--name", "Other App"], &Value::Null)
        .ok()
        .doc;
    let mut hostile = a.clone();
    hostile["app"]["object_id"] = b["app"]["object_id"].clone();
    let app = hostile["app"].as_object_mut().unwrap();
    app.remove("client_id");
    app.remove("service_principal_id");
    let secret_file = std::path::PathBuf::from(str_at(&a, "/secret/file"));
    sim.clear();
    let r = sim.run("teardown", &["--yes"], &hostile).code_is(4);
    r.assert_stderr("does not match the document's unique name");
    sim.assert_no_writes();
    assert!(secret_file.exists());
    sim.graph_expect(
        200,
        "GET",
        &format!("applications/{}", str_at(&b, "/app/object_id")),
        None,
    );
}

#[test]
fn a_secret_file_is_deleted_only_when_it_holds_this_apps_secret() {
    use std::os::unix::fs::PermissionsExt;
    let sim = sim();
    let doc = full_setup(&sim);
    let private = |name: &str, text: &str| {
        let p = sim.path(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    };
    // An SSH key: 0600 and small, but no secret of this app.
    let key = private(
        "id_ed25519",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    );
    // Secret-shaped, but no credential of this app starts with it.
    let other = private("other.secret", "zzzNotThisAppsSecretAtAll0123456789abcdef");
    for (file, why) in [
        (&key, "does not hold a client secret"),
        (
            &other,
            "neither its name, nor the fingerprint the document records, nor its content ties it",
        ),
    ] {
        let mut d = doc.clone();
        d["secret"]["file"] = json!(file.to_str().unwrap());
        let r = sim.run("teardown", &["--dry-run"], &d).ok();
        r.assert_stderr(why);
        assert!(
            !r.stderr.contains("would delete the secret file"),
            "{}",
            r.stderr
        );
    }
    // The real one (custom name, matched by the credential's hint) goes.
    let real = std::path::PathBuf::from(str_at(&doc, "/secret/file"));
    let r = sim.run("teardown", &["--yes"], &doc).ok();
    r.assert_stderr("deleted the secret file");
    assert!(!real.exists());
    assert!(key.exists() && other.exists());
}

#[test]
fn after_a_teardown_and_a_lost_new_setup_the_unique_name_finds_the_new_app() {
    let sim = sim();
    let first = registered(&sim);
    let first = sim.run("grant-consent", &[], &first).ok().doc;
    let torn = sim.run("teardown", &["--yes"], &first).ok().doc;
    // A new setup from that document whose output was lost.
    let again = sim.run("register-app", &[], &torn).ok().doc;
    let new_client = client_id(&again);
    assert_ne!(new_client, client_id(&first));
    let r = sim.run("teardown", &["--yes"], &torn).ok();
    r.assert_stderr("deleted app registration");
    sim.graph_expect(
        404,
        "GET",
        &format!("applications(appId='{new_client}')"),
        None,
    );
}

#[test]
fn an_adopted_app_is_kept_and_only_what_the_setup_made_on_it_goes() {
    let sim = sim();
    let portal = sim.graph_expect(
        201,
        "POST",
        "applications",
        Some(json!({"displayName": "Contoso Portal App", "signInAudience": "AzureADMyOrg"})),
    );
    let client = portal["appId"].as_str().unwrap().to_string();
    let object = portal["id"].as_str().unwrap().to_string();
    // A secret made in the portal, for something else.
    let theirs = sim.graph_expect(
        200,
        "POST",
        &format!("applications/{object}/addPassword"),
        Some(json!({"passwordCredential": {"displayName": "payroll job"}})),
    )["keyId"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = sim
        .run("register-app", &["--client-id", &client], &Value::Null)
        .ok()
        .doc;
    assert_eq!(doc["app"]["adopted"], json!(true));
    let doc = sim.run("grant-consent", &[], &doc).ok().doc;
    // The app had no service principal: the one register-app created carries the setup's tag.
    let sp = service_principal_id(&doc);
    let sp_tags =
        sim.graph_expect(200, "GET", &format!("servicePrincipals/{sp}"), None)["tags"].clone();
    assert_eq!(
        sp_tags,
        json!([format!("marketo-s2s:setup:{}", str_at(&doc, "/setup/id"))])
    );
    // The adopted app itself is not marked.
    assert_eq!(
        sim.graph_expect(200, "GET", &format!("applications/{object}"), None)["tags"],
        json!([])
    );
    let secret = sim.path("portal.secret");
    let (doc, key_id) = crate::ownership::with_setup_secret(&sim, doc, &secret);
    // A document of an earlier version marks adoption only by app.unique_name null.
    let mut legacy = doc.clone();
    legacy["app"].as_object_mut().unwrap().remove("adopted");
    assert!(legacy["app"]["unique_name"].is_null(), "{legacy}");
    sim.run("teardown", &["--dry-run"], &legacy)
        .ok()
        .assert_stderr("kept app registration \"Contoso Portal App\"");
    sim.clear();
    let r = sim.run("teardown", &["--yes"], &doc).ok();
    r.assert_stderr("kept app registration \"Contoso Portal App\"")
        .assert_stderr(&format!("removed client secret {key_id}"))
        .assert_stderr(&format!(
            "deleted service principal \"Contoso Portal App\" ({sp})"
        ));
    let app = sim.graph_expect(200, "GET", &format!("applications(appId='{client}')"), None);
    let keys: Vec<&str> = app["passwordCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["keyId"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [theirs.as_str()], "only the portal's secret is left");
    sim.graph_expect(404, "GET", &format!("servicePrincipals/{sp}"), None);
    assert!(!secret.exists());
    // Again: nothing left to remove.
    sim.clear();
    sim.run("teardown", &["--yes"], &r.doc).ok();
    sim.assert_no_writes();
}

#[test]
fn a_new_setup_on_a_torn_down_document_drops_the_disabled_mark() {
    let sim = sim();
    let doc = with_app_user(&sim);
    let torn = sim.run("teardown", &["--yes"], &doc).ok().doc;
    assert_eq!(torn["dynamics"]["application_user_disabled"], true);
    let again = sim.run("register-app", &[], &torn).ok().doc;
    let again = sim.run("assign-role", &[], &again).ok().doc;
    assert!(
        again["dynamics"].get("application_user_disabled").is_none(),
        "{again}"
    );
    assert_eq!(app_user(&sim, &app_user_id(&again))["isdisabled"], false);
}

#[test]
fn an_app_without_a_unique_name_is_not_the_setups_and_is_kept() {
    // A portal app named by a document that gives only its client id.
    let sim = sim();
    let portal = sim.graph_expect(
        201,
        "POST",
        "applications",
        Some(json!({"displayName": "Payroll Connector", "signInAudience": "AzureADMyOrg"})),
    );
    let client = portal["appId"].as_str().unwrap().to_string();
    // Someone else set it up for Dynamics (service principal, application user with a role).
    let theirs = sim
        .run("register-app", &["--client-id", &client], &Value::Null)
        .ok()
        .doc;
    let theirs = sim.run("assign-role", &[], &theirs).ok().doc;
    sim.clear();
    let r = sim
        .run(
            "teardown",
            &["--yes"],
            &json!({"app": {"client_id": client}}),
        )
        .ok();
    r.assert_stderr("kept app registration \"Payroll Connector\"")
        .assert_stderr("it carries no setup mark");
    sim.assert_no_writes();
    sim.graph_expect(200, "GET", &format!("applications(appId='{client}')"), None);
    assert_eq!(app_user(&sim, &app_user_id(&theirs))["isdisabled"], false);
}

/// Entra soft-deletes the service principal of a deleted app, restorable on its own (Learn
/// directory-deleteditems-restore; docs/real-service-notes.md #19, #33). After teardown the
/// setup's service principal is listed under deletedItems/microsoft.graph.servicePrincipal,
/// beside its application, and the two come back one by one, the application first.
#[test]
fn after_teardown_the_service_principal_is_a_deleted_item_restorable_after_its_app() {
    let sim = sim();
    let doc = sim.setup_chain(&[]);
    let app = doc["app"]["object_id"]
        .as_str()
        .expect("object id")
        .to_string();
    let sp = doc["app"]["service_principal_id"]
        .as_str()
        .expect("service principal id")
        .to_string();
    sim.run("teardown", &["--yes"], &doc).ok();
    let ids = |cast: &str| -> Vec<String> {
        sim.graph_expect(200, "GET", &format!("directory/deletedItems/{cast}"), None)["value"]
            .as_array()
            .expect("value")
            .iter()
            .map(|o| o["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(ids("microsoft.graph.servicePrincipal"), vec![sp.clone()]);
    assert_eq!(ids("graph.servicePrincipal"), vec![sp.clone()]);
    assert_eq!(ids("microsoft.graph.application"), vec![app.clone()]);
    sim.graph_expect(
        400,
        "POST",
        &format!("directory/deletedItems/{sp}/restore"),
        None,
    );
    sim.graph_expect(
        200,
        "POST",
        &format!("directory/deletedItems/{app}/restore"),
        None,
    );
    sim.graph_expect(
        200,
        "POST",
        &format!("directory/deletedItems/{sp}/restore"),
        None,
    );
    sim.graph_expect(200, "GET", &format!("servicePrincipals/{sp}"), None);
}

/// A file found only by make-secret's default name for the client id is deleted only with an
/// app that goes: a shared app stays, and the file may be the other setup's.
#[test]
fn a_default_named_secret_file_stays_when_the_app_stays_for_another_setup() {
    let sim = sim();
    let a = sim.setup_chain(&[]);
    let cid = client_id(&a);
    // Setup A keeps its secret under make-secret's default name for the app.
    let default = sim.path(&format!("marketo-s2s-{cid}.secret"));
    std::fs::rename(sim.path("marketo.secret"), &default).unwrap();
    // Setup B shares the app, with a file of its own.
    let b = sim
        .run("register-app", &["--share-app"], &Value::Null)
        .ok()
        .doc;
    let b_secret = sim.path("b.secret");
    let b = sim
        .run(
            "make-secret",
            &["--secret-file", b_secret.to_str().unwrap()],
            &b,
        )
        .ok()
        .doc;
    // B's document was lost: it is torn down by its setup id and the app's unique name.
    let lost = json!({"setup": b["setup"], "app": {"unique_name": b["app"]["unique_name"]}});
    let r = sim.run("teardown", &["--yes"], &lost).ok();
    r.assert_stderr("removed this setup's tag from app registration")
        .assert_stderr(&format!("kept the secret file {}", default.display()));
    let value = std::fs::read_to_string(&default).unwrap();
    assert_eq!(sim.token_for(&cid, &value, &sim.url()).0, 200);
}

/// The sync-filter guard fails closed: when "Marketo User" cannot be read (here the document
/// names a configuration record that does not exist), nobody can tell whether another
/// connection's sync uses the columns, so --remove-sync-filter keeps them and says why.
#[test]
fn remove_sync_filter_keeps_the_columns_while_marketo_user_cannot_be_read() {
    let sim = sim();
    let mut doc = full_setup(&sim);
    doc["marketo_config"]["record_id"] = json!("00000000-0000-4000-8000-000000000001");
    let r = sim
        .run("teardown", &["--yes", "--remove-sync-filter"], &doc)
        .ok();
    for entity in ["lead", "contact"] {
        r.assert_stderr(&format!(
            "kept the sync-filter column new_synctomkto on {entity} and its values: \"Marketo User\" was not read"
        ));
        assert_eq!(sync_filter_column(&sim, entity), 200);
    }
}

/// A document whose `marketo_config` pairs the lookup with another column's navigation property
/// would have teardown check one column and clear another: it checks and clears nothing, and
/// says where to do it by hand (and, the guard failing closed, keeps the sync-filter columns).
#[test]
fn marketo_config_names_of_two_columns_clear_nothing() {
    let sim = sim();
    let mut doc = full_setup(&sim);
    let record = str_at(&doc, "/marketo_config/record_id").to_string();
    let user = str_at(&doc, "/dynamics/application_user_id").to_string();
    doc["marketo_config"]["nav_property"] = json!("createdby");
    sim.clear();
    let r = sim
        .run("teardown", &["--yes", "--remove-sync-filter"], &doc)
        .ok();
    r.assert_stderr("\"Marketo User\" is not checked or cleared");
    assert_eq!(marketo_user(&sim, &record), json!(user));
    assert_eq!(sync_filter_column(&sim, "lead"), 200);
    assert!(
        !sim.writes().iter().any(|w| w["path"]
            .as_str()
            .is_some_and(|p| p.contains("mkto_marketoconfigs"))),
        "no write to the Marketo configuration record"
    );
}
