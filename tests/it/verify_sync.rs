//! verify-sync: green on a finished setup, each breakage caught by its own check (exit 6) —
//! unpublished Dataverse changes too —, and it never writes; `--offline` prints the step-3 block
//! and what is owed from the state file alone.

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

fn failing(doc: &Value) -> Vec<String> {
    doc["verify"]["checks"]
        .as_array()
        .expect("verify.checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn all_green_on_a_finished_setup_and_read_only() {
    let sim = federated();
    let doc = sim.setup_chain(&[]);
    sim.clear();
    let r = sim.run("verify-sync", &[], &doc).ok();
    assert_eq!(r.doc["verify"]["ok"], true, "{}", r.stderr);
    let ids: Vec<&str> = r.doc["verify"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    // The checklist, in its order (the checks run concurrently; the output does not show it).
    assert_eq!(
        ids,
        [
            "app",
            "service-principal",
            "consent",
            "secret",
            "hrd-policy",
            "org-access",
            "marketo-solution",
            "application-user",
            "sync-role",
            "role-holders",
            "marketo-config",
            "live-login",
            "published",
        ]
    );
    assert!(failing(&r.doc).is_empty());
    // The step-3 handoff: never the secret itself.
    assert!(r.stderr.contains("Marketo step 3"), "{}", r.stderr);
    assert!(r.stderr.contains(&client_id(&doc)));
    assert!(
        r.stderr
            .contains(doc["dynamics"]["username"].as_str().unwrap())
    );
    let secret = std::fs::read_to_string(sim.path("marketo.secret")).unwrap();
    assert!(!r.all_output().contains(secret.trim()));
    // Read-only: the only POSTs are token requests.
    sim.assert_no_writes();
    assert!(!r.changed("verify-sync"));
    // The app's service principal and Dynamics CRM's come in one request.
    let sp_reads: Vec<String> = method_paths(&sim.requests())
        .into_iter()
        .filter(|p| p.starts_with("GET /v1.0/servicePrincipals"))
        .collect();
    assert_eq!(
        sp_reads,
        vec![
            "GET /v1.0/servicePrincipals".to_string(),
            format!(
                "GET /v1.0/servicePrincipals/{}/homeRealmDiscoveryPolicies",
                service_principal_id(&doc)
            )
        ]
    );
}

fn broken(setup: impl FnOnce(&Sim, &Value), check: &str) {
    let sim = federated();
    let doc = sim.setup_chain(&[]);
    setup(&sim, &doc);
    sim.clear();
    // --settle 0: the breakage is real; do not wait for replication to heal it.
    let r = sim.run("verify-sync", &["--settle", "0"], &doc).code_is(6);
    assert_eq!(r.doc["verify"]["ok"], false);
    let f = failing(&r.doc);
    assert!(
        f.contains(&check.to_string()),
        "expected {check} to fail, failing: {f:?}\n{}",
        r.stderr
    );
    let c = r.doc["verify"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == check)
        .unwrap()
        .clone();
    assert!(
        c["fix"].as_str().is_some_and(|f| !f.is_empty()),
        "no fix for {check}: {c}"
    );
    assert!(r.stderr.contains("verify-sync: error:"), "{}", r.stderr);
    sim.assert_no_writes();
}

#[test]
fn detects_a_removed_role() {
    broken(
        |sim, doc| {
            let user = doc["dynamics"]["application_user_id"].as_str().unwrap();
            let role = doc["dynamics"]["roles"][0]["id"].as_str().unwrap();
            sim.dataverse_expect(
                204,
                "DELETE",
                &format!("systemusers({user})/systemuserroles_association/$ref?$id={}/api/data/v9.2/roles({role})", sim.server.dynamics_url()),
                None,
            );
        },
        "sync-role",
    );
}

#[test]
fn detects_removed_consent() {
    broken(
        |sim, doc| {
            let id = doc["consent"]["grant_id"].as_str().unwrap();
            sim.graph_expect(204, "DELETE", &format!("oauth2PermissionGrants/{id}"), None);
        },
        "consent",
    );
}

#[test]
fn detects_a_removed_secret() {
    broken(
        |sim, doc| {
            let app = doc["app"]["object_id"].as_str().unwrap();
            let key = doc["secret"]["key_id"].as_str().unwrap();
            sim.graph_expect(
                204,
                "POST",
                &format!("applications/{app}/removePassword"),
                Some(json!({"keyId": key})),
            );
        },
        "secret",
    );
}

#[test]
fn detects_config_pointing_elsewhere() {
    broken(
        |sim, doc| {
            let (_, who) = sim.dataverse("GET", "WhoAmI", None);
            let other = who["UserId"].as_str().unwrap();
            let set = doc["marketo_config"]["entity_set"].as_str().unwrap();
            let rec = doc["marketo_config"]["record_id"].as_str().unwrap();
            let nav = doc["marketo_config"]["nav_property"].as_str().unwrap();
            sim.dataverse_expect(
                204,
                "PATCH",
                &format!("{set}({rec})"),
                Some(json!({format!("{nav}@odata.bind"): format!("/systemusers({other})")})),
            );
        },
        "marketo-config",
    );
}

#[test]
fn detects_a_config_record_that_is_gone() {
    broken(
        |sim, doc| {
            let set = doc["marketo_config"]["entity_set"].as_str().unwrap();
            let rec = doc["marketo_config"]["record_id"].as_str().unwrap();
            sim.dataverse_expect(204, "DELETE", &format!("{set}({rec})"), None);
        },
        "marketo-config",
    );
}

#[test]
fn detects_a_disabled_user() {
    broken(
        |sim, doc| {
            let user = doc["dynamics"]["application_user_id"].as_str().unwrap();
            sim.dataverse_expect(
                204,
                "PATCH",
                &format!("systemusers({user})"),
                Some(json!({"isdisabled": true})),
            );
        },
        "application-user",
    );
}

#[test]
fn detects_a_missing_hrd_policy_on_a_federated_tenant() {
    broken(
        |sim, doc| {
            let sp = service_principal_id(doc);
            let pid = doc["hrd_policy"]["policy_id"].as_str().unwrap();
            sim.graph_expect(
                204,
                "DELETE",
                &format!("servicePrincipals/{sp}/homeRealmDiscoveryPolicies/{pid}/$ref"),
                None,
            );
        },
        "hrd-policy",
    );
}

#[test]
fn a_lost_secret_file_fails_the_secret_and_live_checks() {
    let sim = federated();
    let doc = sim.setup_chain(&[]);
    std::fs::remove_file(sim.path("marketo.secret")).unwrap();
    let r = sim.run("verify-sync", &["--settle", "0s"], &doc).code_is(6);
    let f = failing(&r.doc);
    assert!(
        f.contains(&"secret".to_string()) && f.contains(&"live-login".to_string()),
        "{f:?}"
    );
}

#[test]
fn needs_a_client_id() {
    let sim = sim();
    let r = sim.run("verify-sync", &[], &Value::Null).code_is(2);
    assert!(r.stderr.contains("app.client_id"), "{}", r.stderr);
    assert!(sim.requests().is_empty());
}

#[test]
fn right_after_setup_it_waits_out_replication_before_judging() {
    let sim = sim_with(Options {
        federated: true,
        replication_lag_ms: 1500,
        ..Default::default()
    });
    let doc = sim.setup_chain(&[]);
    sim.clear();
    // The HRD assignment made a moment ago is not visible yet; verify-sync re-checks until it is.
    let r = sim.run("verify-sync", &[], &doc).ok();
    assert_eq!(r.doc["verify"]["ok"], true, "{}", r.stderr);
    sim.assert_no_writes();
}

/// The requests a passing run sends: the checks run concurrently, yet nothing is read twice and
/// no one signs in twice (13 requests, as when the checks ran one after another).
#[test]
fn a_passing_run_reads_each_thing_once() {
    let sim = federated();
    let doc = sim.setup_chain(&[]);
    let sync_roles = sync_role_ids(&sim);
    sim.clear();
    sim.run("verify-sync", &["--settle", "0"], &doc).ok();
    let reqs = sim.requests();
    let mut got: Vec<String> = reqs
        .iter()
        .zip(method_paths(&reqs))
        .map(|(r, p)| format!("{} {p}", r["service"].as_str().unwrap_or("")))
        .collect();
    got.sort();
    let tenant = sim.server.tenant_id();
    let config = doc["marketo_config"]["entity_set"].as_str().unwrap();
    let record = doc["marketo_config"]["record_id"].as_str().unwrap();
    let mut want = vec![
        "dataverse GET /api/data/v9.2/WhoAmI".to_string(), // org-access
        "dataverse GET /api/data/v9.2/WhoAmI".to_string(), // live-login
        format!("dataverse GET /api/data/v9.2/{config}({record})"),
        "dataverse GET /api/data/v9.2/solutions".to_string(),
        "dataverse GET /api/data/v9.2/systemusers".to_string(),
        // role-holders: the Marketo Sync User role (one per business unit), and who holds each.
        "dataverse GET /api/data/v9.2/roles".to_string(),
        // The org's friendly name, once (the document keeps it).
        "dataverse GET /api/data/v9.2/RetrieveCurrentOrganization(AccessType=Microsoft.Dynamics.CRM.EndpointAccessType'Default')".to_string(),
        format!(
            "graph GET /v1.0/applications(appId=%27{}%27)",
            client_id(&doc)
        ),
        "graph GET /v1.0/domains".to_string(),
        "graph GET /v1.0/oauth2PermissionGrants".to_string(),
        "graph GET /v1.0/servicePrincipals".to_string(),
        format!(
            "graph GET /v1.0/servicePrincipals/{}/homeRealmDiscoveryPolicies",
            service_principal_id(&doc)
        ),
        // The admin's tokens for Graph and for the org, and the app's own (live-login).
        format!("login POST /{tenant}/oauth2/v2.0/token"),
        format!("login POST /{tenant}/oauth2/v2.0/token"),
        format!("login POST /{tenant}/oauth2/v2.0/token"),
    ];
    want.extend(
        sync_roles.iter().map(|r| {
            format!("dataverse GET /api/data/v9.2/roles({r})/systemuserroles_association")
        }),
    );
    want.sort();
    assert_eq!(got, want);
}

/// `--settle` re-runs only what fails: with the HRD assignment re-made a moment ago (not
/// replicated yet), each later round sends only hrd-policy's reads — the domains, the service
/// principals it takes the id from, the policies — and every other check's reads stay at one.
#[test]
fn settle_re_runs_only_the_failing_check() {
    let lag = 1500;
    let sim = sim_with(Options {
        federated: true,
        replication_lag_ms: lag,
        ..Default::default()
    });
    let doc = sim.setup_chain(&[]);
    // Everything the setup made is visible now; then the assignment is made again, fresh.
    std::thread::sleep(std::time::Duration::from_millis(lag + 200));
    let sp = service_principal_id(&doc);
    let pid = doc["hrd_policy"]["policy_id"].as_str().unwrap();
    sim.graph_expect(
        204,
        "DELETE",
        &format!("servicePrincipals/{sp}/homeRealmDiscoveryPolicies/{pid}/$ref"),
        None,
    );
    sim.graph_expect(
        204,
        "POST",
        &format!("servicePrincipals/{sp}/homeRealmDiscoveryPolicies/$ref"),
        Some(json!({
            "@odata.id": format!("{}/v1.0/policies/homeRealmDiscoveryPolicies/{pid}", sim.url())
        })),
    );
    sim.clear();
    let r = sim.run("verify-sync", &["--settle", "30s"], &doc).ok();
    assert_eq!(r.doc["verify"]["ok"], true, "{}", r.stderr);
    let reqs = method_paths(&sim.requests());
    let count = |p: &str| reqs.iter().filter(|r| *r == p).count();
    let rounds = count(&format!(
        "GET /v1.0/servicePrincipals/{sp}/homeRealmDiscoveryPolicies"
    ));
    assert!(rounds >= 2, "hrd-policy never failed: {reqs:#?}");
    // hrd-policy and the shared read it needs, once per round.
    assert_eq!(count("GET /v1.0/domains"), rounds, "{reqs:#?}");
    assert_eq!(count("GET /v1.0/servicePrincipals"), rounds, "{reqs:#?}");
    // Everything else, once: the first round's.
    let client = client_id(&doc);
    let set = doc["marketo_config"]["entity_set"].as_str().unwrap();
    let rec = doc["marketo_config"]["record_id"].as_str().unwrap();
    for (path, n) in [
        (format!("GET /v1.0/applications(appId=%27{client}%27)"), 1),
        ("GET /v1.0/oauth2PermissionGrants".to_string(), 1),
        ("GET /api/data/v9.2/WhoAmI".to_string(), 2), // org-access and live-login
        ("GET /api/data/v9.2/solutions".to_string(), 1),
        ("GET /api/data/v9.2/systemusers".to_string(), 1),
        ("GET /api/data/v9.2/roles".to_string(), 1),
        (format!("GET /api/data/v9.2/{set}({rec})"), 1),
    ] {
        assert_eq!(count(&path), n, "{path}: {reqs:#?}");
    }
    let reads = 9 + sync_role_ids(&sim).len(); // the org's name included
    assert_eq!(reqs.len(), 3 + reads + 3 * rounds, "{reqs:#?}"); // sign-ins + reads + rounds
    let hrd = r.doc["verify"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "hrd-policy")
        .unwrap()
        .clone();
    assert_eq!(hrd["ok"], true, "{hrd}");
    sim.assert_no_writes();
}

#[test]
fn the_secret_check_shows_the_end_date_and_the_days_left_rounded() {
    // A 90-day secret reads "in 90 days" right after it was made, not 89.
    let sim = federated();
    let doc = sim.setup_chain(&[]);
    let doc = sim
        .run("make-secret", &["--rotate", "--expires-in", "90d"], &doc)
        .ok()
        .doc;
    let r = sim.run("verify-sync", &[], &doc).ok();
    let secret = r.doc["verify"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "secret")
        .unwrap()
        .clone();
    let end = doc["secret"]["expires_at"].as_str().unwrap();
    let detail = secret["detail"].as_str().unwrap();
    assert!(detail.contains("(in 90 days)"), "{detail}");
    assert!(detail.contains(&end[..10]), "{detail} should name {end}");
}

/// The ids of the org's Marketo Sync User roles (one per business unit).
fn sync_role_ids(sim: &Sim) -> Vec<String> {
    dv_get(
        sim,
        "roles?$select=roleid&$filter=name%20eq%20%27Marketo%20Sync%20User%27",
    )["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["roleid"].as_str().unwrap().to_string())
        .collect()
}

/// The check of one id in a verify-sync document.
fn check<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["verify"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} check in {doc}"))
}

/// Marketo's step 2 (solution 4.0.0.14 and later): the Marketo Sync User role is for the sync
/// user alone. Another holder is a warning naming them (exit 0: the connection works).
#[test]
fn a_second_holder_of_marketo_sync_user_is_named_in_a_warning() {
    let sim = sim();
    let doc = sim.setup_chain(&[]);
    let r = sim.run("verify-sync", &["--settle", "0"], &doc).ok();
    assert_eq!(
        check(&r.doc, "role-holders")["status"],
        "ok",
        "{}",
        r.stderr
    );
    // The admin (a person would be the same) is given the role too.
    let me = dv_get(&sim, "WhoAmI");
    let admin = me["UserId"].as_str().unwrap();
    let role = doc["dynamics"]["roles"][0]["id"].as_str().unwrap();
    sim.dataverse_expect(
        204,
        "POST",
        &format!("systemusers({admin})/systemuserroles_association/$ref"),
        Some(json!({
            "@odata.id": format!("{}/api/data/v9.2/roles({role})", sim.server.dynamics_url())
        })),
    );
    let name = dv_get(&sim, &format!("systemusers({admin})?$select=fullname"))["fullname"]
        .as_str()
        .unwrap()
        .to_string();
    let r = sim.run("verify-sync", &["--settle", "0"], &doc).ok();
    let c = check(&r.doc, "role-holders");
    assert_eq!(c["status"], "warn", "{c}");
    assert_eq!(c["ok"], true);
    r.assert_stderr(&format!(
        "[warn] only the Marketo sync user holds Marketo Sync User: 1 other user(s) hold it: {name}"
    ));
    r.assert_stderr("Manage security roles");
    assert_eq!(r.doc["verify"]["ok"], true);
    // -q shows the warning, not the passing checks.
    let r = sim.run("verify-sync", &["--settle", "0", "-q"], &doc).ok();
    r.assert_stderr("[warn] only the Marketo sync user");
    assert!(!r.stderr.contains("[ok  ]"), "{}", r.stderr);
}

/// Before 4.0.0.14 every user who syncs needs the role: the solution is a warning that says so
/// and how to update; other holders are expected (skip), never a failure.
#[test]
fn an_older_solution_warns_that_every_user_needs_the_role_and_how_to_update() {
    let sim = sim_with(Options {
        marketo_version: Some("4.0.0.9".into()),
        ..Default::default()
    });
    let doc = sim.setup_chain(&[]);
    let r = sim.run("verify-sync", &["--settle", "0"], &doc).ok();
    let c = check(&r.doc, "marketo-solution");
    assert_eq!(c["status"], "warn", "{c}");
    assert!(
        c["detail"].as_str().unwrap().contains(
            "every Dynamics user who syncs with Marketo needs the Marketo Sync User role"
        ),
        "{c}"
    );
    assert!(c["fix"].as_str().unwrap().contains("Upgrade"), "{c}");
    assert_eq!(check(&r.doc, "role-holders")["status"], "skip");
    r.assert_stderr("[warn] Marketo solution installed");
    r.assert_stderr("[skip] only the Marketo sync user");
}

/// A check that does not apply says so (`skip`), and one this sign-in cannot read is a skip
/// that says why — never an `[ok]`.
#[test]
fn checks_that_do_not_apply_or_cannot_be_read_are_skips_not_oks() {
    let sim = sim();
    let doc = sim.setup_chain(&[]);
    let r = sim.run("verify-sync", &["--settle", "0"], &doc).ok();
    let hrd = check(&r.doc, "hrd-policy");
    assert_eq!(hrd["status"], "skip", "{hrd}");
    r.assert_stderr("[skip] Home Realm Discovery policy (federated tenants): not needed");
    // An admin without Domain.Read.All: the federated domains cannot be read.
    let sim = sim_with(Options {
        admin_permissions: vec![
            "Application.ReadWrite.All".into(),
            "DelegatedPermissionGrant.ReadWrite.All".into(),
        ],
        ..Default::default()
    });
    let mut doc = Value::Null;
    for (tool, args) in chain_steps(sim.path("s.secret").to_str().unwrap()) {
        if tool == "set-hrd-policy" {
            continue;
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        doc = sim.run(tool, &a, &doc).ok().doc;
    }
    let r = sim.run("verify-sync", &["--settle", "0"], &doc).ok();
    let hrd = check(&r.doc, "hrd-policy");
    assert_eq!(hrd["status"], "skip", "{hrd}");
    assert!(
        hrd["detail"]
            .as_str()
            .unwrap()
            .starts_with("not readable with this sign-in"),
        "{hrd}"
    );
}

#[test]
fn verify_sync_fails_until_the_dataverse_changes_are_published() {
    let sim = sim();
    let mut doc = Value::Null;
    let secret = sim.path("marketo.secret");
    for (tool, args) in chain_steps(secret.to_str().unwrap()) {
        if tool == "publish-customizations" {
            continue;
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        doc = sim.run(tool, &a, &doc).ok().doc;
    }
    let r = sim.run("verify-sync", &["--settle", "0"], &doc).code_is(6);
    let check = r.doc["verify"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "published")
        .cloned()
        .unwrap();
    assert_eq!(check["ok"], json!(false), "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("assign-role"),
        "{check}"
    );
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("publish-customizations")
    );
    let doc = sim
        .run("publish-customizations", &["--if-changed"], &r.doc)
        .ok()
        .doc;
    sim.run("verify-sync", &["--settle", "0"], &doc).ok();
}

#[test]
fn the_offline_status_prints_the_step3_block_with_the_network_unreachable() {
    let sim = sim();
    let state = finished_state(&sim);
    let s = state.to_str().unwrap();
    sim.run(
        "verify-sync",
        &["--state", s, "--settle", "0"],
        &Value::Null,
    )
    .ok();
    let doc = read_doc(&state);
    let before = std::fs::read(&state).unwrap();
    sim.clear();
    // Every endpoint points at a closed loopback port, and a proxy that is not there.
    let dead = "http://127.0.0.1:9";
    let tenant = sim.server.tenant_id();
    let env = [
        ("AZURE_TENANT_ID", tenant.as_str()),
        ("AZURE_AUTHORITY_HOST", dead),
        ("MKTO_S2S_GRAPH_URL", dead),
        ("MKTO_S2S_DYNAMICS_URL", dead),
        ("HTTPS_PROXY", dead),
        ("HTTP_PROXY", dead),
    ];
    let r = run_bare(
        "verify-sync",
        sim.dir(),
        &["--offline", "--state", s, "-q"],
        "",
        &env,
    )
    .ok();
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    sim.assert_no_requests();
    assert_eq!(
        std::fs::read(&state).unwrap(),
        before,
        "status wrote the file"
    );
    let text = |k: &str| doc.pointer(k).and_then(Value::as_str).unwrap().to_string();
    for want in [
        "verify-sync: Marketo step 3 (Admin > CRM > Microsoft Dynamics > Enter Credentials):"
            .to_string(),
        format!("verify-sync:   Tenant ID    : {}", sim.server.tenant_id()),
        format!("verify-sync:   Client ID    : {}", text("/app/client_id")),
        format!(
            "verify-sync:   Username     : {}",
            text("/dynamics/username")
        ),
        format!("key {}", text("/secret/key_id")),
        format!("expires {}", text("/secret/expires_at")),
        "last verify : passed (".to_string(),
        "publish     : nothing owed (last published".to_string(),
        "  register-app ".to_string(),
        "  publish-customizations ".to_string(),
    ] {
        r.assert_stderr(&want);
    }
    assert!(
        r.stderr
            .contains(&sim.path("marketo.secret").display().to_string()),
        "{}",
        r.stderr
    );

    // A Dataverse change after the last publish: owed, with the command that pays it.
    let mut owed = doc.clone();
    owed["steps"]["configure-marketo"]["changed"] = Value::Bool(true);
    owed["steps"]["configure-marketo"]["dataverse_changed"] = Value::Bool(true);
    owed["steps"]["configure-marketo"]["at"] = Value::from("2999-01-01T00:00:00.000Z");
    std::fs::write(&state, owed.to_string()).unwrap();
    let r = run_bare(
        "verify-sync",
        sim.dir(),
        &["--offline", "--state", s],
        "",
        &env,
    )
    .ok();
    r.assert_stderr(&format!(
        "publish     : owed: configure-marketo changed Dataverse after the last publish; run publish-customizations --state {s} --if-changed"
    ));
    // A missing file is exit 2 naming it.
    let r = run_bare(
        "verify-sync",
        sim.dir(),
        &["--offline", "--state", "nope.json"],
        "",
        &env,
    )
    .code_is(2);
    r.assert_stderr("nope.json does not exist");
    sim.assert_no_requests();
}

/// Fixes paste into what they fix: the sync-filter fix names its entity (add-sync-filter alone
/// does lead and contact), the role fix the roles checked (assign-role alone assigns its default);
/// role names match as Dataverse compares them, in any case; Marketo's step 3 gets the tenant's
/// id even when `--tenant` names its domain.
#[test]
fn fixes_name_what_they_fix_and_step3_gets_the_tenant_id() {
    let sim = sim();
    let doc = sim.setup_chain(&[]);
    sim.run(
        "verify-sync",
        &["--settle", "0", "--role", "marketo sync user"],
        &doc,
    )
    .ok();

    let r = sim
        .run(
            "verify-sync",
            &["--settle", "0", "--role", "Basic User"],
            &doc,
        )
        .code_is(6);
    let fix = check(&r.doc, "sync-role")["fix"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        fix.contains("assign-role") && fix.contains("--role 'Basic User'"),
        "{fix}"
    );

    let mut listed = doc.clone();
    listed["sync_filter"] = json!({"field": "new_synctomkto", "entities": [{"entity": "account", "status": "created"}]});
    let r = sim
        .run("verify-sync", &["--settle", "0"], &listed)
        .code_is(6);
    let fix = check(&r.doc, "sync-filter:account")["fix"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        fix.contains("add-sync-filter") && fix.contains("--entity account"),
        "{fix}"
    );

    let r = sim
        .run(
            "verify-sync",
            &["--settle", "0", "--tenant", "contoso.onmicrosoft.com"],
            &doc,
        )
        .ok();
    assert_eq!(
        r.doc["verify"]["marketo_step3"]["tenant_id"], doc["tenant"]["id"],
        "{}",
        r.stderr
    );
}
