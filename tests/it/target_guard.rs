//! Which tenant and org a run acts on: a writing tool names them first, before anything else it
//! says (tenant domain and id, org, sign-in, state file); a document of another tenant or org is
//! refused before any request, with where the other value came from; a tenant given by its
//! domain is resolved before any write; `--retarget` moves a document to another tenant (and
//! with the tenant's own domain moves nothing); the org's name, once known (preflight learns it
//! and the tenant's domain for the next steps), is named in words.

use serde_json::{Value, json};

use crate::common::*;

/// The emulated tenant's first domain (what a consultant types as `--tenant`).
pub fn tenant_domain(sim: &Sim) -> String {
    let domains = sim.graph_expect(200, "GET", "domains", None);
    domains["value"][0]["id"].as_str().unwrap().to_string()
}

#[test]
fn a_writing_tool_names_tenant_domain_and_id_org_sign_in_and_state_first() {
    let sim = sim();
    let domain = tenant_domain(&sim);
    let state = sim.path("contoso.state.json");
    let s = state.to_str().unwrap();
    // The tenant given by its domain: register-app resolves it, core keeps the domain.
    let r = sim
        .run(
            "register-app",
            &["--state", s, "--tenant", &domain],
            &Value::Null,
        )
        .ok();
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("register-app: target: tenant {domain}")),
        "{}",
        r.stderr
    );
    let doc = read_doc(&state);
    assert_eq!(doc["tenant"]["domain"], domain.as_str());
    assert_eq!(doc["tenant"]["id"], sim.server.tenant_id().as_str());

    // The next tool names both from the document, the org, who signs in and the file.
    let r = sim.run("assign-role", &["--state", s], &Value::Null).ok();
    let first = r.stderr.lines().next().unwrap_or_default();
    let want = format!(
        "assign-role: target: tenant {domain} ({}); org {}; sign-in: service principal {} with its client secret; state: {s}",
        sim.server.tenant_id(),
        sim.server.dynamics_url().trim_end_matches('/'),
        sim.server.admin_client_id(),
    );
    assert_eq!(first, want, "{}", r.stderr);

    // A read-only tool and a bad input do not: the error stays the first line.
    let r = sim
        .run("grant-consent", &[], &serde_json::json!({}))
        .code_is(2);
    assert!(
        r.stderr.starts_with("grant-consent: error:"),
        "{}",
        r.stderr
    );
    // -q keeps it quiet.
    let r = sim
        .run("assign-role", &["--state", s, "-q"], &Value::Null)
        .ok();
    assert!(!r.stderr.contains("target:"), "{}", r.stderr);
}

#[test]
fn another_tenant_or_org_is_refused_and_the_state_file_stays_byte_identical() {
    let sim = sim();
    let state = finished_state_with_setup_id(&sim);
    let before = std::fs::read(&state).unwrap();
    let s = state.to_str().unwrap();
    let other = "0b5e8d4e-7c4a-4c39-9b7e-8e3f1f6f2a10";
    for tool in tools::names() {
        sim.clear();
        let mut c = sim.cmd(tool);
        c.args(["--state", s])
            .args(unattended(tool))
            .env("AZURE_TENANT_ID", other);
        let r = Run::from_output(c.output().unwrap()).code_is(2);
        r.assert_stderr(other)
            .assert_stderr(&sim.server.tenant_id());
        r.assert_stderr("--retarget");
        sim.assert_no_requests();
        assert_eq!(
            std::fs::read(&state).unwrap(),
            before,
            "{tool} changed the file"
        );
    }
    // The same for an org: localhost and 127.0.0.1 are different origins to the tools.
    let elsewhere = sim.server.dynamics_url().replace("127.0.0.1", "localhost");
    for tool in ["assign-role", "publish-customizations", "verify-sync"] {
        sim.clear();
        let r = sim
            .run(
                tool,
                &["--state", s, "--dynamics-url", &elsewhere],
                &Value::Null,
            )
            .code_is(2);
        r.assert_stderr("dynamics.url").assert_stderr("--retarget");
        sim.assert_no_requests();
        assert_eq!(
            std::fs::read(&state).unwrap(),
            before,
            "{tool} changed the file"
        );
    }
}

#[test]
fn a_guard_message_names_the_domain_and_where_the_other_tenant_came_from() {
    let sim = sim();
    let domain = tenant_domain(&sim);
    let state = sim.path("state.json");
    let s = state.to_str().unwrap();
    sim.run(
        "register-app",
        &["--state", s, "--tenant", &domain],
        &Value::Null,
    )
    .ok();
    let other = "0b5e8d4e-7c4a-4c39-9b7e-8e3f1f6f2a10";
    sim.clear();
    let mut c = sim.cmd("grant-consent");
    c.args(["--state", s]).env("AZURE_TENANT_ID", other);
    let r = Run::from_output(c.output().unwrap()).code_is(2);
    r.assert_stderr(&format!(
        "AZURE_TENANT_ID in the environment names tenant {other} but this document belongs to tenant {domain} ({})",
        sim.server.tenant_id()
    ));
    sim.assert_no_requests();
    // The same value on the command line is named as the flag.
    let r = sim
        .run(
            "grant-consent",
            &["--state", s, "--tenant", other],
            &Value::Null,
        )
        .code_is(2);
    r.assert_stderr(&format!("--tenant names tenant {other}"));
}

#[test]
fn a_tenant_domain_is_resolved_before_any_write() {
    let sim = sim();
    let state = finished_state_with_setup_id(&sim);
    let domains = sim.graph_expect(200, "GET", "domains", None);
    let domain = domains["value"][0]["id"].as_str().unwrap().to_string();
    sim.clear();
    // The document's own tenant, named by its domain: accepted, and the re-run writes nothing.
    let r = sim
        .run(
            "make-secret",
            &["--state", state.to_str().unwrap(), "--tenant", &domain],
            &Value::Null,
        )
        .ok();
    assert!(r.stderr.contains("client secret"), "{}", r.stderr);
    sim.assert_no_writes();
    // A document of another tenant, with this tenant's domain: refused after the sign-in
    // tells the tenant id, before any write.
    let mut doc = read_doc(&state);
    let other = "0b5e8d4e-7c4a-4c39-9b7e-8e3f1f6f2a10";
    doc["tenant"]["id"] = json!(other);
    std::fs::write(&state, doc.to_string()).unwrap();
    let before = std::fs::read(&state).unwrap();
    sim.clear();
    let r = sim
        .run(
            "make-secret",
            &[
                "--state",
                state.to_str().unwrap(),
                "--tenant",
                &domain,
                "--rotate",
            ],
            &Value::Null,
        )
        .code_is(2);
    r.assert_stderr(other);
    sim.assert_no_writes();
    assert_eq!(std::fs::read(&state).unwrap(), before);
}

#[test]
fn retarget_moves_the_document_to_another_tenant_and_drops_the_old_ids() {
    let a = sim();
    let state = finished_state_with_setup_id(&a);
    let s = state.to_str().unwrap();
    let old = read_doc(&state);
    // Customer B's environment on customer A's file.
    let b = sim();
    let run_b = |args: &[&str]| {
        let mut c = a.null_stdin_cmd("register-app");
        c.envs(b.env()).args(args);
        Run::from_output(c.output().unwrap())
    };
    run_b(&["--state", s])
        .code_is(2)
        .assert_stderr(&b.server.tenant_id());
    assert!(b.applications().is_empty(), "nothing was created in B");
    let r = run_b(&["--state", s, "--retarget"]).ok();
    r.assert_stderr("--retarget: moving this document");
    let doc = read_doc(&state);
    assert_eq!(doc["tenant"]["id"], json!(b.server.tenant_id()));
    assert_eq!(doc["dynamics"]["url"], json!(b.server.dynamics_url()));
    assert_eq!(doc["app"]["display_name"], old["app"]["display_name"]);
    assert_ne!(doc["app"]["client_id"], old["app"]["client_id"]);
    assert_eq!(b.applications().len(), 1);
    for key in ["secret", "consent", "marketo_config", "publish"] {
        assert!(doc[key].is_null(), "{key} of tenant A kept: {doc}");
    }
    assert!(doc["steps"]["make-secret"].is_null(), "{doc}");
}

#[test]
fn retarget_with_the_tenants_own_domain_keeps_every_id() {
    let sim = sim();
    let state = finished_state(&sim);
    let s = state.to_str().unwrap();
    let domain = tenant_domain(&sim);
    let before = read_doc(&state);
    sim.clear();
    let r = sim
        .run(
            "make-secret",
            &["--state", s, "--tenant", &domain, "--retarget"],
            &Value::Null,
        )
        .ok();
    r.assert_stderr("nothing to move");
    sim.assert_no_writes();
    let after = read_doc(&state);
    for key in [
        "app",
        "consent",
        "secret",
        "hrd_policy",
        "dynamics",
        "marketo_config",
        "publish",
    ] {
        assert_eq!(after[key], before[key], "{key} changed:\n{}", r.stderr);
    }
    assert_eq!(after["tenant"]["id"], before["tenant"]["id"]);
    assert_eq!(after["tenant"]["domain"], domain.as_str());
    for step in before["steps"].as_object().unwrap().keys() {
        assert!(after["steps"][step].is_object(), "steps.{step} was dropped");
    }
}

/// The org's friendly name, once verify-sync has read it, is kept in the document and named by
/// every later target line and by the offline status.
#[test]
fn the_org_is_named_in_words_once_known() {
    let sim = sim();
    let state = finished_state(&sim);
    let s = state.to_str().unwrap();
    sim.run(
        "verify-sync",
        &["--state", s, "--settle", "0"],
        &Value::Null,
    )
    .ok();
    assert_eq!(read_doc(&state)["dynamics"]["org_name"], "Contoso");
    let r = sim.run("make-secret", &["--state", s], &Value::Null).ok();
    let org = sim.server.dynamics_url();
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains(&format!("; org {} (Contoso);", org.trim_end_matches('/'))),
        "{first}"
    );
    let r = sim
        .run("verify-sync", &["--offline", "--state", s], &Value::Null)
        .ok();
    r.assert_stderr("(Contoso)");
    // Asked once: a later verify does not ask again.
    sim.clear();
    sim.run(
        "verify-sync",
        &["--state", s, "--settle", "0"],
        &Value::Null,
    )
    .ok();
    assert!(sim.requests().iter().all(|q| {
        !q["path"]
            .as_str()
            .unwrap()
            .contains("RetrieveCurrentOrganization")
    }));
}

/// preflight, the runbook's first step, learns the target in words (the tenant's default domain
/// and the org's friendly name) for a tenant given by its id, so the very next step's first line
/// already names both.
#[test]
fn preflight_learns_the_tenant_domain_and_org_name_for_the_next_steps() {
    let sim = sim();
    let state = sim.path("contoso.state.json");
    let s = state.to_str().unwrap();
    sim.run("preflight", &["--state", s], &Value::Null).ok();
    let doc = read_doc(&state);
    let domains = sim.graph_expect(200, "GET", "domains", None);
    let default = domains["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["isDefault"] == true)
        .expect("a default domain")["id"]
        .clone();
    assert_eq!(doc["tenant"]["domain"], default);
    assert_eq!(doc["dynamics"]["org_name"], "Contoso");
    let r = sim.run("register-app", &["--state", s], &Value::Null).ok();
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "register-app: target: tenant {} ({});",
            default.as_str().unwrap(),
            sim.server.tenant_id()
        )) && first.contains("(Contoso);"),
        "{}",
        r.stderr
    );
}

/// The target line is the first line even when the step says something before its first
/// request (add-sync-filter explains --default; publish-customizations says why it publishes).
#[test]
fn the_target_line_comes_before_anything_the_step_says() {
    let sim = sim();
    let state = finished_state(&sim);
    let s = state.to_str().unwrap();
    let r = sim
        .run(
            "add-sync-filter",
            &["--state", s, "--entity", "lead"],
            &Value::Null,
        )
        .ok();
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("add-sync-filter: target: "),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches("target: ").count(), 1, "{}", r.stderr);
}
