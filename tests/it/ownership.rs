//! Ownership: the setup marks what it creates on the live objects, and what removes or replaces
//! something acts only on what the tenant shows is this setup's. The cases of
//! docs/reliability.md, "Ownership": the admin's own client id in a document, a re-run of a
//! finished teardown after a newer setup with the same name, two folders in one tenant, an
//! adopted app's portal secret and pre-existing user, another team's HRD policy, a hand-made
//! sync-filter column; plus the migration of an earlier version's document and
//! `--restore-sync-user`.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::*;

fn str_at<'a>(doc: &'a Value, ptr: &str) -> &'a str {
    doc.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{ptr} in {doc:#}"))
}

fn tag_of(doc: &Value) -> String {
    format!("marketo-s2s:setup:{}", str_at(doc, "/setup/id"))
}

fn mark_of(doc: &Value) -> String {
    format!("[marketo-s2s setup {}]", str_at(doc, "/setup/id"))
}

/// The setup's own client secret, named as make-secret names the secrets it adds (the setup's
/// mark `[setup xxxxxxxx]` before the run tag), saved 0600 at `file`; the document records it.
pub fn with_setup_secret(sim: &Sim, mut doc: Value, file: &Path) -> (Value, String) {
    use std::os::unix::fs::PermissionsExt;
    let setup = s2s_core::setup::SetupId::parse(str_at(&doc, "/setup/id")).unwrap();
    let made = sim.graph_expect(
        200,
        "POST",
        &format!("applications/{}/addPassword", str_at(&doc, "/app/object_id")),
        Some(json!({"passwordCredential": {
            "displayName": format!("marketo-s2s make-secret 2026-12-03 {} [run 0badc0de]", setup.name_mark())
        }})),
    );
    let value = made["secretText"].as_str().unwrap();
    std::fs::write(file, format!("{value}\n")).unwrap();
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key_id = made["keyId"].as_str().unwrap().to_string();
    doc["secret"] = json!({
        "key_id": key_id, "hint": made["hint"], "file": file.to_str().unwrap(),
        "expires_at": made["endDateTime"],
    });
    (doc, key_id)
}

/// The application user with its roles, as Dataverse shows it.
fn user(sim: &Sim, id: &str) -> Value {
    dv_get(
        sim,
        &format!(
            "systemusers({id})?$select=isdisabled&$expand=systemuserroles_association($select=roleid,name)"
        ),
    )
}

fn role_ids(u: &Value) -> Vec<String> {
    let mut ids: Vec<String> = u["systemuserroles_association"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["roleid"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn column(sim: &Sim, entity: &str) -> (u16, Value) {
    sim.dataverse(
        "GET",
        &format!(
            "EntityDefinitions(LogicalName='{entity}')/Attributes(LogicalName='new_synctomkto')?$select=Description"
        ),
        None,
    )
}

// ---- the marks ----------------------------------------------------------------------------

#[test]
fn the_setup_marks_what_it_creates_and_records_what_it_made() {
    let sim = federated();
    let doc = sim.setup_chain(&[]);
    let doc = sim.run("add-sync-filter", &[], &doc).ok().doc;
    let tag = tag_of(&doc);
    let mark = mark_of(&doc);
    let app = sim.graph_expect(
        200,
        "GET",
        &format!("applications/{}", str_at(&doc, "/app/object_id")),
        None,
    );
    assert_eq!(app["tags"], json!([tag]));
    let sp = sim.graph_expect(
        200,
        "GET",
        &format!("servicePrincipals/{}", service_principal_id(&doc)),
        None,
    );
    assert_eq!(sp["tags"], json!([tag]));
    let policy = sim.graph_expect(
        200,
        "GET",
        &format!(
            "policies/homeRealmDiscoveryPolicies/{}",
            str_at(&doc, "/hrd_policy/policy_id")
        ),
        None,
    );
    assert!(
        policy["description"].as_str().unwrap().contains(&mark),
        "{policy}"
    );
    for entity in ["lead", "contact"] {
        let (s, c) = column(&sim, entity);
        assert_eq!(s, 200);
        assert!(
            c["Description"]["LocalizedLabels"][0]["Label"]
                .as_str()
                .unwrap()
                .contains(&mark),
            "{c}"
        );
    }
    // What carries no mark is recorded as made by the setup.
    assert_eq!(doc["consent"]["created"], json!(true));
    assert_eq!(doc["dynamics"]["application_user_created"], json!(true));
    assert_eq!(doc["dynamics"]["roles"][0]["added"], json!(true));
    assert_eq!(
        doc["sync_filter"]["entities"][0]["status"],
        json!("created")
    );

    // The whole chain again on its own document: no write, and the records stay.
    sim.clear();
    let mut again = doc.clone();
    for (tool, args) in chain_steps(sim.path("marketo.secret").to_str().unwrap()) {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        again = sim.run(tool, &a, &again).ok().doc;
    }
    let again = sim.run("add-sync-filter", &[], &again).ok().doc;
    sim.assert_no_writes();
    for key in [
        "/setup",
        "/consent/created",
        "/dynamics/application_user_created",
        "/dynamics/roles",
        "/sync_filter/entities",
    ] {
        assert_eq!(again.pointer(key), doc.pointer(key), "{key}");
    }
}

// ---- the admin's own app and user ----------------------------------------------------------

#[test]
fn a_document_naming_the_admins_own_client_id_leaves_the_admins_user_enabled_with_its_roles() {
    let sim = sim();
    let doc = sim.setup_chain(&[]);
    let admin_client = sim.server.admin_client_id();
    let admin_user = dv_get(&sim, "WhoAmI")["UserId"]
        .as_str()
        .unwrap()
        .to_string();
    let before = user(&sim, &admin_user);
    assert_eq!(before["isdisabled"], json!(false));
    let admin_roles: Vec<Value> = role_ids(&before)
        .into_iter()
        .map(|id| json!({"id": id, "name": "System Administrator", "added": true}))
        .collect();
    assert!(!admin_roles.is_empty());
    // A document (typed by hand, or mixed up) that names the admin's own app and user as the
    // setup's, adopted, with everything "created" by the setup.
    let hostile = json!({
        "tenant": doc["tenant"],
        "setup": doc["setup"],
        "app": {"client_id": admin_client, "adopted": true},
        "dynamics": {"url": doc["dynamics"]["url"], "application_user_id": admin_user,
                     "application_user_created": true, "roles": admin_roles},
        "marketo_config": doc["marketo_config"],
    });
    sim.clear();
    let r = sim.run("teardown", &["--yes"], &hostile).ok();
    sim.assert_no_writes();
    r.assert_stderr("it is the app this teardown signs in with (the admin's own)");
    // The same with --client-id on the setup's own document, minus its app ids.
    let mut named = doc.clone();
    named["app"] = json!({"display_name": doc["app"]["display_name"]});
    named["dynamics"]["application_user_id"] = json!(admin_user);
    sim.run("teardown", &["--yes", "--client-id", &admin_client], &named)
        .ok();
    sim.assert_no_writes();
    let after = user(&sim, &admin_user);
    assert_eq!(after["isdisabled"], json!(false));
    assert_eq!(role_ids(&after), role_ids(&before));
    // The setup itself still works: nothing of it was touched either.
    sim.run("verify-sync", &[], &doc).ok();
}

/// register-app never takes the app the tools sign in as (the admin's automation app,
/// registered in this tenant) for Marketo's: not by `--client-id`, not with `--share-app`.
#[test]
fn register_app_refuses_the_admins_own_app_and_changes_nothing() {
    let sim = sim_with(tenant_sim::Options {
        admin_app_in_tenant: true,
        ..Default::default()
    });
    let admin_client = sim.server.admin_client_id();
    let before = sim.applications();
    assert_eq!(before.len(), 1, "{before:#?}");
    for args in [
        vec!["--client-id", admin_client.as_str()],
        vec!["--client-id", admin_client.as_str(), "--share-app"],
    ] {
        sim.clear();
        let r = sim.run("register-app", &args, &Value::Null).code_is(4);
        r.assert_stderr("is the app these tools are signed in as");
        sim.assert_no_writes();
    }
    assert_eq!(sim.applications(), before);
}

// ---- a newer connection that reused the name ------------------------------------------------

#[test]
fn a_rerun_of_a_finished_teardown_leaves_a_newer_connection_with_the_same_name_working() {
    let sim = federated();
    let first = sim.setup_chain(&[]);
    let first = sim.run("add-sync-filter", &[], &first).ok().doc;
    let torn = sim.run("teardown", &["--yes"], &first).ok().doc;
    // A new connection, from a new document, with the same (default) name, in the same org:
    // it finds the first one's sync-filter columns and uses them.
    let newer = sim.setup_chain(&[]);
    let newer = sim.run("add-sync-filter", &[], &newer).ok().doc;
    assert_ne!(client_id(&newer), str_at(&torn, "/teardown/client_id"));
    assert_eq!(
        newer["sync_filter"]["entities"][0]["status"],
        json!("exists")
    );
    sim.run("verify-sync", &[], &newer).ok();

    // The finished teardown again (cron, CI, habit), even with --remove-sync-filter.
    for args in [vec!["--yes"], vec!["--yes", "--remove-sync-filter"]] {
        sim.clear();
        let r = sim.run("teardown", &args, &torn).ok();
        sim.assert_no_writes();
        r.assert_stderr(&format!(
            "kept app registration \"Marketo Integration\" (client id {}): it carries the mark of setup {}",
            client_id(&newer),
            str_at(&newer, "/setup/id")
        ));
    }
    sim.run("verify-sync", &[], &newer).ok();
}

// ---- two folders in one tenant -------------------------------------------------------------

#[test]
fn a_second_folder_with_the_default_name_does_not_share_the_first_ones_app() {
    let sim = sim();
    let first = sim.setup_chain(&[]);
    sim.clear();
    let r = sim.run("register-app", &[], &Value::Null).code_is(4);
    sim.assert_no_writes();
    r.assert_stderr(&format!(
        "the application \"Marketo Integration\" (client id {}) found by unique name \"marketo-integration\"",
        client_id(&first)
    ))
    .assert_stderr(&format!("belongs to another connection (setup {})", str_at(&first, "/setup/id")))
    .assert_stderr("created 20")
    .assert_stderr("1 client secret(s)")
    .assert_stderr("register-app --name '<another name>'")
    .assert_stderr("register-app --share-app");
    // The document handed on (a failed step passes it on) names no app: nothing was adopted.
    assert!(r.doc["app"]["client_id"].is_null(), "{}", r.stdout);
    assert_eq!(
        r.doc["steps"]["register-app"]["error"]["exit_code"],
        json!(4)
    );
    // Its own name: its own app.
    let second = sim
        .run(
            "register-app",
            &["--name", "Marketo Integration (sandbox)"],
            &Value::Null,
        )
        .ok()
        .doc;
    assert_ne!(client_id(&second), client_id(&first));
    assert_ne!(second["setup"]["id"], first["setup"]["id"]);
}

#[test]
fn with_share_app_a_teardown_of_one_folder_leaves_the_other_working() {
    let sim = federated();
    let a = sim.setup_chain(&[]);
    // The second folder shares the app on purpose, with its own secret file.
    let secret_b = sim.path("b.secret");
    let mut b = Value::Null;
    for (tool, mut args) in chain_steps(secret_b.to_str().unwrap()) {
        if tool == "register-app" {
            args.push("--share-app".into());
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        b = sim.run(tool, &a, &b).ok().doc;
    }
    assert_eq!(client_id(&a), client_id(&b));
    assert_ne!(a["setup"]["id"], b["setup"]["id"]);
    let object = str_at(&a, "/app/object_id").to_string();
    let sp = service_principal_id(&a);
    let tags = |path: &str| sim.graph_expect(200, "GET", path, None)["tags"].clone();
    assert_eq!(
        tags(&format!("applications/{object}")),
        json!([tag_of(&a), tag_of(&b)])
    );
    assert_eq!(
        tags(&format!("servicePrincipals/{sp}")),
        json!([tag_of(&a), tag_of(&b)])
    );
    let policy = str_at(&a, "/hrd_policy/policy_id").to_string();
    let description = |sim: &Sim| {
        sim.graph_expect(
            200,
            "GET",
            &format!("policies/homeRealmDiscoveryPolicies/{policy}"),
            None,
        )["description"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        description(&sim).contains(&mark_of(&b)),
        "the second setup marks the policy it uses"
    );
    sim.run(
        "verify-sync",
        &["--secret-file", secret_b.to_str().unwrap()],
        &b,
    )
    .ok();

    // Folder A is torn down: the app, its service principal, consent and policy stay for B.
    let r = sim.run("teardown", &["--yes"], &a).ok();
    r.assert_stderr("removed this setup's tag from app registration")
        .assert_stderr("removed this setup's tag from service principal")
        .assert_stderr("removed this setup's mark from Home Realm Discovery policy");
    assert_eq!(tags(&format!("applications/{object}")), json!([tag_of(&b)]));
    assert_eq!(
        tags(&format!("servicePrincipals/{sp}")),
        json!([tag_of(&b)])
    );
    assert!(!description(&sim).contains(&mark_of(&a)));
    sim.run(
        "verify-sync",
        &["--secret-file", secret_b.to_str().unwrap()],
        &b,
    )
    .ok();
    // A's re-run sends nothing; B, the last, removes the app.
    sim.clear();
    sim.run("teardown", &["--yes"], &r.doc).ok();
    sim.assert_no_writes();
    sim.run("teardown", &["--yes"], &b)
        .ok()
        .assert_stderr("deleted app registration");
    sim.graph_expect(404, "GET", &format!("applications/{object}"), None);
    sim.graph_expect(
        404,
        "GET",
        &format!("policies/homeRealmDiscoveryPolicies/{policy}"),
        None,
    );
}

// ---- an adopted app ------------------------------------------------------------------------

#[test]
fn an_adopted_apps_portal_secret_and_pre_existing_application_user_are_kept() {
    let sim = sim();
    // A portal app with its own service principal, a secret of its own and an application user
    // someone set up before.
    let portal = sim.graph_expect(
        201,
        "POST",
        "applications",
        Some(json!({"displayName": "Payroll Connector", "signInAudience": "AzureADMyOrg"})),
    );
    let client = portal["appId"].as_str().unwrap().to_string();
    let object = portal["id"].as_str().unwrap().to_string();
    sim.graph_expect(
        201,
        "POST",
        "servicePrincipals",
        Some(json!({"appId": client})),
    );
    let portal_secret = sim.graph_expect(
        200,
        "POST",
        &format!("applications/{object}/addPassword"),
        Some(json!({"passwordCredential": {"displayName": "payroll job"}})),
    )["keyId"]
        .as_str()
        .unwrap()
        .to_string();
    let before = sim
        .run("assign-role", &["--client-id", &client], &json!({}))
        .ok()
        .doc;
    let their_user = app_user_id(&before);

    // The setup adopts it; its document names the portal secret (make-secret adopted a file of
    // it, or a person edited the document).
    let doc = sim
        .run("register-app", &["--client-id", &client], &Value::Null)
        .ok()
        .doc;
    let doc = sim.run("grant-consent", &[], &doc).ok().doc;
    let mut doc = sim.run("assign-role", &[], &doc).ok().doc;
    let records = doc["dynamics"].clone();
    doc["secret"] = json!({"key_id": portal_secret});
    assert_eq!(doc["app"]["adopted"], json!(true));

    sim.clear();
    let r = sim.run("teardown", &["--yes"], &doc).ok();
    sim.assert_no_writes();
    r.assert_stderr(&format!("kept client secret {portal_secret}"))
        .assert_stderr("its name carries no mark of this setup")
        .assert_stderr("kept app registration \"Payroll Connector\"")
        .assert_stderr("it was there before the setup adopted the app");
    let app = sim.graph_expect(200, "GET", &format!("applications/{object}"), None);
    assert_eq!(app["passwordCredentials"][0]["keyId"], json!(portal_secret));
    let u = user(&sim, &their_user);
    assert_eq!(u["isdisabled"], json!(false));
    assert_eq!(
        u["systemuserroles_association"].as_array().unwrap().len(),
        1
    );
    // assign-role recorded that the setup found both the user and its role.
    assert_eq!(records["application_user_created"], json!(false));
    assert_eq!(records["roles"][0]["added"], json!(false));
}

// ---- another team's HRD policy; a hand-made sync-filter column -------------------------------

#[test]
fn another_teams_unassigned_hrd_policy_named_by_the_document_is_kept() {
    let sim = federated();
    let mut doc = sim.setup_chain(&[]);
    let ours = str_at(&doc, "/hrd_policy/policy_id").to_string();
    let theirs = sim.graph_expect(
        201,
        "POST",
        "policies/homeRealmDiscoveryPolicies",
        Some(json!({"definition": ["{\"HomeRealmDiscoveryPolicy\":{\"AllowCloudPasswordValidation\":true}}"],
                    "displayName": "Contoso HR - AllowCloudPasswordValidation", "isOrganizationDefault": false,
                    "description": "HR team's policy"})),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The document names the other team's policy (a copy-paste, or a hand edit).
    doc["hrd_policy"] = json!({"status": "assigned", "policy_id": theirs,
                               "display_name": "Contoso HR - AllowCloudPasswordValidation"});
    let r = sim.run("teardown", &["--yes"], &doc).ok();
    r.assert_stderr(&format!(
        "kept Home Realm Discovery policy \"Contoso HR - AllowCloudPasswordValidation\" ({theirs}): it carries no mark of this setup"
    ));
    sim.graph_expect(
        200,
        "GET",
        &format!("policies/homeRealmDiscoveryPolicies/{theirs}"),
        None,
    );
    // The setup's own policy, found on its service principal, went.
    sim.graph_expect(
        404,
        "GET",
        &format!("policies/homeRealmDiscoveryPolicies/{ours}"),
        None,
    );
}

#[test]
fn remove_sync_filter_keeps_a_hand_made_column_and_its_values_and_the_dry_run_says_the_same() {
    let sim = sim();
    // Someone made lead's new_synctomkto by hand and uses it.
    sim.dataverse_expect(
        204,
        "POST",
        "EntityDefinitions(LogicalName='lead')/Attributes",
        Some(json!({
            "@odata.type": "Microsoft.Dynamics.CRM.BooleanAttributeMetadata",
            "SchemaName": "new_SyncToMkto",
            "DisplayName": {"LocalizedLabels": [{"Label": "Sync?", "LanguageCode": 1033}]},
            "Description": {"LocalizedLabels": [{"Label": "made by the CRM team", "LanguageCode": 1033}]},
            "OptionSet": {"TrueOption": {"Value": 1}, "FalseOption": {"Value": 0}},
        })),
    );
    sim.dataverse_expect(
        204,
        "POST",
        "leads",
        Some(json!({"fullname": "Kept Out", "new_synctomkto": false})),
    );
    let doc = sim.setup_chain(&[]);
    let doc = sim.run("add-sync-filter", &[], &doc).ok().doc;
    assert_eq!(
        doc["sync_filter"]["entities"],
        json!([{"entity": "lead", "status": "exists"}, {"entity": "contact", "status": "created"}])
    );
    let args = ["--remove-sync-filter", "--yes"];
    let plan = sim
        .run("teardown", &["--remove-sync-filter", "--dry-run"], &doc)
        .ok();
    let r = sim.run("teardown", &args, &doc).ok();
    let kept = |run: &Run| -> Vec<String> {
        run.stderr
            .lines()
            .filter(|l| l.starts_with("teardown:   kept "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        kept(&plan),
        kept(&r),
        "the dry run and the run keep the same"
    );
    r.assert_stderr("kept the sync-filter column new_synctomkto on lead and its values: it carries no mark of this setup")
        .assert_stderr("deleted the sync-filter column new_synctomkto on contact");
    assert_eq!(column(&sim, "lead").0, 200);
    assert_eq!(column(&sim, "contact").0, 404);
    let leads = dv_get(&sim, "leads?$select=fullname,new_synctomkto");
    assert!(
        leads["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["fullname"] == "Kept Out" && l["new_synctomkto"] == json!(false)),
        "{leads}"
    );
}

// ---- documents of an earlier version ---------------------------------------------------------

#[test]
fn an_earlier_versions_document_is_kept_until_register_app_marks_its_app() {
    let sim = sim();
    let doc = sim.setup_chain(&[]);
    let object = str_at(&doc, "/app/object_id").to_string();
    let sp = service_principal_id(&doc);
    // As an earlier version left it: no setup id, no tags.
    sim.graph_expect(
        204,
        "PATCH",
        &format!("applications/{object}"),
        Some(json!({"tags": []})),
    );
    sim.graph_expect(
        204,
        "PATCH",
        &format!("servicePrincipals/{sp}"),
        Some(json!({"tags": []})),
    );
    let mut legacy = doc.clone();
    legacy.as_object_mut().unwrap().remove("setup");
    let state = sim.path("legacy.state.json");
    std::fs::write(&state, legacy.to_string()).unwrap();
    let st = state.to_str().unwrap();

    sim.clear();
    let r = sim
        .run("teardown", &["--yes", "--state", st], &Value::Null)
        .ok();
    sim.assert_no_writes();
    r.assert_stderr("it carries no setup mark")
        .assert_stderr(&format!("register-app --state {st}"));
    // The pasteable way on: register-app marks the app the document names, then teardown.
    let m = sim.run("register-app", &["--state", st], &Value::Null).ok();
    m.assert_stderr("marking application \"Marketo Integration\"")
        .assert_stderr("this document names it by object id and client id")
        .assert_stderr("added setup");
    let marked: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(
        sim.graph_expect(200, "GET", &format!("applications/{object}"), None)["tags"],
        json!([tag_of(&marked)])
    );
    sim.run("teardown", &["--yes", "--state", st], &Value::Null)
        .ok()
        .assert_stderr("deleted app registration");
    sim.graph_expect(404, "GET", &format!("applications/{object}"), None);
}

#[test]
fn a_register_app_run_that_did_not_finish_is_continued_by_the_next_one() {
    // A run made the app (with its tag) and was killed before the service principal; its
    // document was never written. The next run from nothing continues that setup.
    let sim = sim();
    let first = sim.run("register-app", &[], &Value::Null).ok().doc;
    sim.graph_expect(
        204,
        "DELETE",
        &format!("servicePrincipals/{}", service_principal_id(&first)),
        None,
    );
    let r = sim.run("register-app", &[], &Value::Null).ok();
    r.assert_stderr("that did not finish (no service principal, no credential)");
    assert_eq!(r.doc["setup"], first["setup"]);
    assert_eq!(client_id(&r.doc), client_id(&first));
}

// ---- Marketo User before the setup -------------------------------------------------------------

#[test]
fn restore_sync_user_puts_the_recorded_marketo_user_back_only_when_asked() {
    let sim = sim();
    let mut doc = sim.setup_chain(&[]);
    let record = str_at(&doc, "/marketo_config/record_id").to_string();
    let admin_user = dv_get(&sim, "WhoAmI")["UserId"]
        .as_str()
        .unwrap()
        .to_string();
    // configure-marketo replaced this user (it records whom, when asked to replace one).
    doc["marketo_config"]["previous_user_id"] = json!(admin_user);
    doc["marketo_config"]["previous_user"] = json!("Legacy Sync User");
    let marketo_user = |sim: &Sim| {
        dv_get(
            sim,
            &format!("mkto_marketoconfigs({record})?$select=_mkto_marketouser_value"),
        )["_mkto_marketouser_value"]
            .clone()
    };
    let state = sim.path("s.json");
    std::fs::write(&state, doc.to_string()).unwrap();
    let st = state.to_str().unwrap();
    let r = sim
        .run("teardown", &["--yes", "--state", st], &Value::Null)
        .ok();
    assert!(
        marketo_user(&sim).is_null(),
        "cleared, not restored unasked"
    );
    r.assert_stderr(&format!(
        "before this setup, Marketo User was Legacy Sync User ({admin_user})"
    ))
    .assert_stderr(&format!("teardown --state {st} --restore-sync-user --yes"));
    // The pasted command puts them back (the lookup is empty now, and the document keeps whom).
    let again = sim
        .run(
            "teardown",
            &["--state", st, "--restore-sync-user", "--yes"],
            &Value::Null,
        )
        .ok();
    again.assert_stderr("back at Legacy Sync User");
    assert_eq!(marketo_user(&sim), json!(admin_user));
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(
        saved["marketo_config"].get("previous_user_id").is_none(),
        "{saved}"
    );
    assert_eq!(saved["marketo_config"]["sync_user_id"], json!(admin_user));
}

// ---- "not confirmed" is one exit code ------------------------------------------------------------

/// Runs `command` on a pseudo-terminal (util-linux `script`), typing `answer` at its prompt.
fn on_a_terminal(sim: &Sim, command: &str, answer: &str) -> Option<Run> {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux script (a pseudo-terminal) is not installed");
        return None;
    }
    let mut c = assert_cmd::Command::new("script");
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", sim.dir())
        .env("XDG_CACHE_HOME", sim.dir().join(".cache"))
        .envs(sim.env())
        .current_dir(sim.dir())
        .timeout(std::time::Duration::from_secs(60))
        .args(["-qec", command, "/dev/null"])
        .write_stdin(format!("{answer}\n"));
    Some(Run::from_output(c.output().unwrap()))
}

#[test]
fn declining_at_the_prompt_is_exit_2_in_teardown_and_make_secret() {
    let sim = sim();
    let doc = sim.setup_chain(&[]);
    let state = sim.path("state.json");
    std::fs::write(&state, doc.to_string()).unwrap();
    // A second credential of this setup (its mark in the name), so make-secret has one to remove.
    let setup = s2s_core::setup::SetupId::parse(str_at(&doc, "/setup/id")).unwrap();
    sim.graph_expect(
        200,
        "POST",
        &format!(
            "applications/{}/addPassword",
            str_at(&doc, "/app/object_id")
        ),
        Some(json!({"passwordCredential": {
            "displayName": format!("marketo-s2s make-secret 2026-12-03 {} [run 5ba2e000]", setup.name_mark())
        }})),
    );
    let make_secret = format!(
        "{} --state {} --secret-file {} --revoke-others",
        env!("CARGO_BIN_EXE_make-secret"),
        state.display(),
        sim.path("marketo.secret").display()
    );
    let teardown = format!(
        "{} --state {}",
        env!("CARGO_BIN_EXE_teardown"),
        state.display()
    );
    for command in [make_secret, teardown] {
        sim.clear();
        let Some(r) = on_a_terminal(&sim, &command, "no") else {
            return;
        };
        let r = r.code_is(2);
        assert!(
            r.stdout.contains("not confirmed: nothing was"),
            "{}",
            r.stdout
        );
        sim.assert_no_writes();
    }
    let r = on_a_terminal(
        &sim,
        &format!(
            "{} --state {}",
            env!("CARGO_BIN_EXE_teardown"),
            state.display()
        ),
        "no",
    )
    .unwrap();
    // The question names the tenant and the org.
    assert!(
        r.stdout.contains(&format!(
            "from tenant contoso.onmicrosoft.com ({})",
            sim.server.tenant_id()
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("and org http://127.0.0.1:"),
        "{}",
        r.stdout
    );
}

// ---- --share-app on an app no setup marked ------------------------------------------------

#[test]
fn share_app_on_an_unmarked_app_adopts_it_and_a_teardown_leaves_the_other_connection_working() {
    let sim = sim();
    // Connection C, set up by an earlier version: its app and service principal carry no tag.
    let c = sim.setup_chain(&[]);
    let object = str_at(&c, "/app/object_id").to_string();
    let sp = service_principal_id(&c);
    for path in [
        format!("applications/{object}"),
        format!("servicePrincipals/{sp}"),
    ] {
        sim.graph_expect(204, "PATCH", &path, Some(json!({"tags": []})));
    }
    let c_user = app_user_id(&c);
    let c_key = str_at(&c, "/secret/key_id").to_string();
    // Setup B meets C's app, is stopped (exit 4), and follows the hint: --share-app.
    sim.run("register-app", &[], &Value::Null)
        .code_is(4)
        .assert_stderr("register-app --share-app");
    let r = sim.run("register-app", &["--share-app"], &Value::Null).ok();
    r.assert_stderr(&format!(
        "adopting application \"Marketo Integration\" (client id {})",
        client_id(&c)
    ))
    .assert_stderr("teardown keeps it");
    let mut b = r.doc;
    assert_eq!(client_id(&b), client_id(&c));
    assert_eq!(b["app"]["adopted"], json!(true));
    let tags = |path: &str| sim.graph_expect(200, "GET", path, None)["tags"].clone();
    assert_eq!(tags(&format!("applications/{object}")), json!([]));
    assert_eq!(tags(&format!("servicePrincipals/{sp}")), json!([]));
    let secret_b = sim.path("b.secret");
    let steps: [(&str, Vec<&str>); 3] = [
        ("grant-consent", vec![]),
        (
            "make-secret",
            vec!["--secret-file", secret_b.to_str().unwrap()],
        ),
        ("assign-role", vec![]),
    ];
    for (tool, args) in steps {
        b = sim.run(tool, &args, &b).ok().doc;
    }
    // A re-run of register-app on B's document sends nothing: the app stays adopted.
    sim.clear();
    let again = sim.run("register-app", &[], &b).ok().doc;
    sim.assert_no_writes();
    assert_eq!(again["app"]["adopted"], json!(true));

    // B's teardown: C's app, service principal, grant and user stay; only B's secret goes.
    let r = sim.run("teardown", &["--yes"], &b).ok();
    r.assert_stderr("kept app registration \"Marketo Integration\"")
        .assert_stderr("register-app adopted it");
    sim.graph_expect(200, "GET", &format!("applications/{object}"), None);
    sim.graph_expect(200, "GET", &format!("servicePrincipals/{sp}"), None);
    assert_eq!(user(&sim, &c_user)["isdisabled"], json!(false));
    let keys: Vec<Value> = credentials(&sim, &c)
        .iter()
        .map(|k| k["keyId"].clone())
        .collect();
    assert_eq!(keys, vec![json!(c_key)]);
    sim.run("verify-sync", &[], &c).ok();
}

// ---- a look-alike setup id ------------------------------------------------------------------

#[test]
fn a_document_naming_another_setups_app_with_a_look_alike_setup_id_removes_none_of_its_secrets() {
    let sim = sim();
    let b = sim.setup_chain(&[]);
    let b_id = str_at(&b, "/setup/id").to_string();
    // The first eight hex digits are B's (its tags and its secrets' names show them); the rest
    // is not. The document also claims the app was adopted.
    let forged = format!("{}-0000-4000-8000-000000000000", &b_id[..8]);
    assert_ne!(forged, b_id);
    let hostile = json!({
        "tenant": b["tenant"],
        "setup": {"id": forged},
        "app": {"object_id": b["app"]["object_id"], "client_id": b["app"]["client_id"], "adopted": true},
        "dynamics": {"url": b["dynamics"]["url"]},
    });
    let before = credentials(&sim, &b);
    assert_eq!(before.len(), 1);
    let file = sim.path("forged.secret");
    sim.clear();
    let r = sim
        .run(
            "make-secret",
            &[
                "--revoke-others",
                "--yes",
                "--secret-file",
                file.to_str().unwrap(),
            ],
            &hostile,
        )
        .code_is(4);
    r.assert_stderr(&format!("it carries the tag of setup {b_id}"))
        .assert_stderr("no credential is removed");
    sim.assert_no_writes();
    assert!(!file.exists());

    let r = sim.run("teardown", &["--yes"], &hostile).ok();
    sim.assert_no_writes();
    r.assert_stderr(&format!("it carries the mark of setup {b_id}"));
    assert_eq!(credentials(&sim, &b), before);
    sim.run("verify-sync", &[], &b).ok();
}
