//! Issue 13: the emulator enforces what real tenants enforce (permissions per call, the admin as
//! a Dataverse application user, duplicate and soft-deleted application users, labels that are
//! not Marketo's), and the tools say what is missing and how to fix it. `preflight` finds it all
//! before the first write.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

fn dataverse_writes(sim: &Sim) -> Vec<Value> {
    sim.writes()
        .into_iter()
        .filter(|r| r["service"] == "dataverse")
        .collect()
}

#[test]
fn preflight_passes_on_a_ready_tenant_and_writes_nothing() {
    let sim = sim();
    let r = sim.run("preflight", &[], &Value::Null).ok();
    assert_eq!(r.doc["preflight"]["ok"], json!(true), "{}", r.stderr);
    let ids: Vec<&str> = r.doc["preflight"]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    for id in [
        "graph-token",
        "graph-set-hrd-policy",
        "federation",
        "secret-lifetime",
        "dataverse-user",
        "dataverse-role",
        "marketo-solution",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    r.assert_stderr("preflight: [ok  ] Marketo solution (step 1): \"Marketo Lead Management\"");
    r.assert_stderr("version 5.0.2.1");
    // password hash sync has no application permission: reported, not guessed
    r.assert_stderr("password hash sync is not readable with this sign-in");
    sim.assert_no_writes();
}

#[test]
fn an_admin_without_the_policy_permission_is_stopped_by_preflight_and_set_hrd_policy() {
    let sim = sim_with(Options {
        admin_permissions: vec!["Application.ReadWrite.All".into()],
        ..Options::default()
    });
    let r = sim.run("preflight", &[], &Value::Null).code_is(6);
    r.assert_stderr("[FAIL] set-hrd-policy");
    r.assert_stderr("the token lacks Policy.ReadWrite.ApplicationConfiguration");
    r.assert_stderr("Grant admin consent");
    assert_eq!(r.doc["preflight"]["ok"], json!(false));
    sim.assert_no_writes();

    let doc = registered(&sim);
    sim.clear();
    let r = sim
        .run("set-hrd-policy", &["--mode", "always"], &doc)
        .code_is(4);
    r.assert_stderr("set-hrd-policy: error:");
    r.assert_stderr("403");
    r.assert_stderr("application permission Policy.ReadWrite.ApplicationConfiguration");
    sim.assert_no_writes();
    assert!(sim.state_list("/home_realm_discovery_policies").is_empty());
}

/// `Organization.Read.All` is what register-app needs to turn a tenant given as a domain into
/// its id, and nothing else: preflight on a tenant given as its id passes without it (it used to
/// fail, which stopped the runbook), and on a tenant given as a domain fails with a fix that
/// does not tell preflight's own reader to "run `preflight` first".
#[test]
fn preflight_asks_for_organization_read_only_when_the_tenant_is_a_domain() {
    let sim = sim_with(Options {
        admin_permissions: [
            "Application.ReadWrite.All",
            "DelegatedPermissionGrant.ReadWrite.All",
            "Domain.Read.All",
            "Policy.ReadWrite.ApplicationConfiguration",
        ]
        .map(String::from)
        .to_vec(),
        ..Options::default()
    });
    let tenant = sim.server.tenant_id();
    let r = sim
        .run("preflight", &["--tenant", &tenant], &Value::Null)
        .ok();
    assert_eq!(r.doc["preflight"]["ok"], json!(true), "{}", r.stderr);
    r.assert_stderr(
        "preflight: [skip] register-app: reading the tenant id of a tenant given as a domain: not needed",
    );
    sim.assert_no_writes();

    let r = sim
        .run(
            "preflight",
            &["--tenant", "contoso.onmicrosoft.com"],
            &Value::Null,
        )
        .code_is(6);
    r.assert_stderr("[FAIL] register-app: reading the tenant id of a tenant given as a domain")
        .assert_stderr("the token lacks Organization.Read.All")
        .assert_stderr("run preflight again");
    assert!(!r.stderr.contains("`preflight` first"), "{}", r.stderr);
    let failed: Vec<&Value> = r.doc["preflight"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == json!(false))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    sim.assert_no_writes();
}

#[test]
fn an_admin_app_that_is_no_application_user_is_named_by_preflight_and_assign_role() {
    let sim = sim_with(Options {
        admin_dataverse_role: None,
        ..Options::default()
    });
    let r = sim.run("preflight", &[], &Value::Null).code_is(6);
    r.assert_stderr("[FAIL] the admin's user in the Dynamics org");
    r.assert_stderr("0x80072560");
    r.assert_stderr("is not an application user");
    r.assert_stderr("New app user");

    let doc = registered(&sim);
    sim.clear();
    let r = sim.run("assign-role", &[], &doc).code_is(4);
    r.assert_stderr("assign-role: error:");
    r.assert_stderr("0x80072560");
    r.assert_stderr(&format!(
        "the admin's app (client id {}) is not an application user",
        sim.server.admin_client_id()
    ));
    assert!(dataverse_writes(&sim).is_empty());
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

/// The Graph permissions of each tool in the README's table.
fn readme_permissions() -> Vec<(String, BTreeSet<String>)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let section = readme
        .split("## Roles and permissions each tool needs")
        .nth(1)
        .expect("section")
        .split("\n## ")
        .next()
        .expect("section body");
    let mut out = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| ")) {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        if cols.len() < 5 || cols[1] == "tool" {
            continue;
        }
        let perms: BTreeSet<String> = cols[3]
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|p| p.starts_with(|c: char| c.is_ascii_uppercase()) && p.contains('.'))
            .map(str::to_string)
            .collect();
        for tool in cols[1].split(',').map(str::trim) {
            out.push((tool.to_string(), perms.clone()));
        }
    }
    out
}

#[test]
fn the_readme_permission_table_matches_the_emulator_and_the_tools() {
    let rows = readme_permissions();
    let mut seen = BTreeSet::new();
    for (tool, perms) in &rows {
        seen.insert(tool.clone());
        let sim: BTreeSet<String> = tenant_sim::permissions::tool_permissions(tool)
            .into_iter()
            .map(str::to_string)
            .collect();
        assert_eq!(perms, &sim, "README vs permissions.rs for {tool}");
        if tool != "preflight" {
            let tools: BTreeSet<String> = s2s_graph::needs::tool_permissions(tool)
                .into_iter()
                .map(str::to_string)
                .collect();
            assert_eq!(perms, &tools, "README vs s2s_graph::needs for {tool}");
        }
    }
    for tool in TOOLS {
        assert!(
            seen.contains(*tool),
            "{tool} has no row in the README table"
        );
    }
    // the default admin holds exactly what the tools need
    let all: BTreeSet<String> = rows.into_iter().flat_map(|(_, p)| p).collect();
    let default: BTreeSet<String> = tenant_sim::permissions::default_admin_permissions()
        .into_iter()
        .collect();
    assert_eq!(all, default);
}

/// Issue 24: Entra soft-deletes the service principal of a deleted app, restorable on its own
/// (Learn directory-deleteditems-restore). After teardown the setup's service principal is
/// listed under deletedItems/microsoft.graph.servicePrincipal, beside its application, and the
/// two come back one by one, the application first.
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
