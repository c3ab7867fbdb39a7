//! What the admin may do: the emulator enforces the permissions of each call as a tenant does (the
//! Graph permission table, the admin as a Dataverse application user), `preflight` finds what is
//! missing before the first write and each tool names it and how to fix it, and the README's
//! permission table matches both the emulator's table and the tools' own.

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
/// its id, and nothing else: preflight on a tenant given as its id passes without it (a failure
/// there would stop the runbook), and on a tenant given as a domain fails with a fix that
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
    for tool in tools::names() {
        assert!(seen.contains(tool), "{tool} has no row in the README table");
    }
    // the default admin holds exactly what the tools need
    let all: BTreeSet<String> = rows.into_iter().flat_map(|(_, p)| p).collect();
    let default: BTreeSet<String> = tenant_sim::permissions::default_admin_permissions()
        .into_iter()
        .collect();
    assert_eq!(all, default);
}
