//! set-hrd-policy: skip on a managed tenant, create and assign on a federated one, reuse, a
//! conflicting policy and --replace, --mode remove, dry run, faults and lost answers, bad input;
//! racing runs end with one assigned policy, and a later run removes the duplicates they left.

use std::time::Duration;

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

const DEFINITION: &str = r#"{"HomeRealmDiscoveryPolicy":{"AllowCloudPasswordValidation":true}}"#;
const NAME: &str = "Marketo Integration - AllowCloudPasswordValidation";

/// Every HRD policy of the tenant, from the emulator's own state.
fn policies(sim: &Sim) -> Vec<Value> {
    sim.state_objects("home_realm_discovery_policies")
}

/// Ids of the policies assigned to a service principal.
fn assigned_to(sim: &Sim, sp: &str) -> Vec<String> {
    sim.state_list("/hrd_assignments")
        .into_iter()
        .filter(|a| a["sp_id"] == sp)
        .filter_map(|a| a["policy_id"].as_str().map(str::to_string))
        .collect()
}

fn make_policy(sim: &Sim, name: &str, definition: &str) -> String {
    let p = sim.graph_expect(
        201,
        "POST",
        "policies/homeRealmDiscoveryPolicies",
        Some(json!({"definition": [definition], "displayName": name, "isOrganizationDefault": false})),
    );
    p["id"].as_str().expect("policy id").to_string()
}

fn assign(sim: &Sim, sp: &str, policy: &str) {
    sim.graph_expect(
        204,
        "POST",
        &format!("servicePrincipals/{sp}/homeRealmDiscoveryPolicies/$ref"),
        Some(json!({"@odata.id": format!("{}/v1.0/policies/homeRealmDiscoveryPolicies/{policy}", sim.url())})),
    );
}

#[test]
fn a_tenant_without_a_federated_domain_is_skipped_and_says_why() {
    let sim = sim();
    let doc = registered(&sim);
    sim.clear();
    let r = sim.run("set-hrd-policy", &[], &doc).ok();
    assert_eq!(r.doc["hrd_policy"]["status"], "skipped-not-federated");
    assert!(r.doc["hrd_policy"]["policy_id"].is_null());
    assert!(
        r.stderr
            .contains("set-hrd-policy: no federated domain in this tenant"),
        "{}",
        r.stderr
    );
    assert!(!r.changed("set-hrd-policy"));
    sim.assert_no_writes();
    let paths: Vec<Value> = sim
        .requests()
        .iter()
        .filter(|q| q["service"] != "login")
        .map(|q| q["path"].clone())
        .collect();
    assert_eq!(paths, vec![json!("/v1.0/domains")]);
    assert!(policies(&sim).is_empty());
}

#[test]
fn a_federated_tenant_gets_the_policy_assigned_then_rerun_writes_nothing() {
    let sim = federated();
    let doc = registered(&sim);
    let sp = service_principal_id(&doc);
    sim.clear();
    let r = sim.run("set-hrd-policy", &[], &doc).ok();
    assert!(r.changed("set-hrd-policy"));
    assert_eq!(r.doc["hrd_policy"]["status"], "assigned");
    assert_eq!(r.doc["hrd_policy"]["display_name"], NAME);
    let all = policies(&sim);
    assert_eq!(all.len(), 1, "{all:#?}");
    let p = &all[0];
    assert_eq!(p["displayName"], NAME);
    assert_eq!(p["isOrganizationDefault"], false);
    let def: Value =
        serde_json::from_str(p["definition"][0].as_str().expect("definition")).expect("JSON");
    assert_eq!(
        def,
        json!({"HomeRealmDiscoveryPolicy": {"AllowCloudPasswordValidation": true}})
    );
    assert_eq!(r.doc["hrd_policy"]["policy_id"], p["id"]);
    assert_eq!(
        assigned_to(&sim, &sp),
        vec![p["id"].as_str().unwrap_or_default().to_string()]
    );
    assert!(r.stderr.contains("federated domain(s)"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("set-hrd-policy: assigned Home Realm Discovery policy"),
        "{}",
        r.stderr
    );
    assert_eq!(
        sim.writes().len(),
        2,
        "create + assign: {:#?}",
        sim.writes()
    );
    // The document names the service principal and the app: it is not read for its name.
    assert!(
        !method_paths(&sim.requests()).contains(&format!("GET /v1.0/servicePrincipals/{sp}")),
        "{:#?}",
        method_paths(&sim.requests())
    );

    sim.clear();
    let again = sim.run("set-hrd-policy", &[], &r.doc).ok();
    sim.assert_no_writes();
    assert!(!again.changed("set-hrd-policy"));
    assert_eq!(again.doc["hrd_policy"]["status"], "already-assigned");
    assert_eq!(again.doc["hrd_policy"]["policy_id"], p["id"]);
    assert_eq!(policies(&sim).len(), 1);
}

#[test]
fn always_mode_acts_on_a_managed_tenant_and_reuses_only_this_setups_policy() {
    let sim = sim();
    let doc = registered(&sim);
    let setup = doc["setup"]["id"].as_str().unwrap().to_string();
    // Another team's policy with our name and definition: not ours, never reused.
    let theirs = make_policy(&sim, NAME, DEFINITION);
    // Same name, but without the wrapper: Entra ignores it, so it must not be reused either.
    make_policy(&sim, NAME, r#"{"AllowCloudPasswordValidation":true}"#);
    // One this setup made and left unassigned (an interrupted run): reused.
    let ours = sim.graph_expect(
        201,
        "POST",
        "policies/homeRealmDiscoveryPolicies",
        Some(json!({"definition": [DEFINITION], "displayName": NAME, "isOrganizationDefault": false,
                    "description": format!("Created by marketo-s2s set-hrd-policy [marketo-s2s setup {setup}] [run 0badc0de]")})),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    sim.clear();
    let r = sim.run("set-hrd-policy", &["--mode", "always"], &doc).ok();
    assert_eq!(r.doc["hrd_policy"]["status"], "assigned");
    assert_eq!(r.doc["hrd_policy"]["policy_id"], json!(ours));
    assert_eq!(
        assigned_to(&sim, &service_principal_id(&doc)),
        vec![ours.clone()]
    );
    assert_eq!(policies(&sim).len(), 3, "no new policy");
    let writes = sim.writes();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert!(
        writes[0]["path"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/homeRealmDiscoveryPolicies/$ref")
    );
    r.assert_stderr("reusing Home Realm Discovery policy");
    // The other team's policy is untouched.
    let p = sim.graph_expect(
        200,
        "GET",
        &format!("policies/homeRealmDiscoveryPolicies/{theirs}"),
        None,
    );
    assert!(p["description"].is_null(), "{p}");
}

#[test]
fn a_policy_it_creates_carries_the_setups_mark_and_a_hand_made_one_is_not_reused() {
    let sim = federated();
    let doc = registered(&sim);
    let setup = doc["setup"]["id"].as_str().unwrap().to_string();
    let hand_made = make_policy(&sim, NAME, DEFINITION);
    let r = sim.run("set-hrd-policy", &[], &doc).ok();
    let id = r.doc["hrd_policy"]["policy_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(id, hand_made, "a hand-made policy was reused");
    let p = sim.graph_expect(
        200,
        "GET",
        &format!("policies/homeRealmDiscoveryPolicies/{id}"),
        None,
    );
    let description = p["description"].as_str().unwrap();
    assert!(
        description.contains(&format!("[marketo-s2s setup {setup}]")),
        "{description}"
    );
    // The hand-made one is still there, unassigned and unmarked.
    let h = sim.graph_expect(
        200,
        "GET",
        &format!("policies/homeRealmDiscoveryPolicies/{hand_made}"),
        None,
    );
    assert!(h["description"].is_null(), "{h}");
    sim.clear();
    sim.run("set-hrd-policy", &[], &r.doc).ok();
    sim.assert_no_writes();
}

#[test]
fn an_earlier_versions_policy_gets_the_mark_once() {
    // A setup of an earlier version: its policy says set-hrd-policy made it, but carries no mark.
    let sim = federated();
    let doc = registered(&sim);
    let setup = doc["setup"]["id"].as_str().unwrap().to_string();
    let sp = service_principal_id(&doc);
    let legacy = sim.graph_expect(
        201,
        "POST",
        "policies/homeRealmDiscoveryPolicies",
        Some(json!({"definition": [DEFINITION], "displayName": NAME, "isOrganizationDefault": false,
                    "description": "Lets Entra ID validate passwords of federated users signing in to Marketo Integration (Marketo S2S). Created by marketo-s2s set-hrd-policy [run 1234abcd]"})),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    assign(&sim, &sp, &legacy);
    let r = sim.run("set-hrd-policy", &[], &doc).ok();
    r.assert_stderr("added setup")
        .assert_stderr("made by an earlier version of set-hrd-policy");
    let p = sim.graph_expect(
        200,
        "GET",
        &format!("policies/homeRealmDiscoveryPolicies/{legacy}"),
        None,
    );
    assert!(
        p["description"]
            .as_str()
            .unwrap()
            .ends_with(&format!("[marketo-s2s setup {setup}]")),
        "{p}"
    );
    sim.clear();
    sim.run("set-hrd-policy", &[], &r.doc).ok();
    sim.assert_no_writes();
}

#[test]
fn another_assigned_policy_exits_4_naming_it_unless_replace() {
    let sim = federated();
    let doc = registered(&sim);
    let sp = service_principal_id(&doc);
    let theirs = make_policy(
        &sim,
        "Contoso default HRD Policy",
        r#"{"HomeRealmDiscoveryPolicy":{"AccelerateToFederatedDomain":true}}"#,
    );
    assign(&sim, &sp, &theirs);
    sim.clear();

    let r = sim.run("set-hrd-policy", &[], &doc).code_is(4);
    assert!(
        r.stderr.contains("set-hrd-policy: error:")
            && r.stderr.contains("Contoso default HRD Policy"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&theirs) && r.stderr.contains("--replace"),
        "{}",
        r.stderr
    );
    sim.assert_no_writes();
    assert_eq!(policies(&sim).len(), 1);

    let r = sim.run("set-hrd-policy", &["--replace"], &doc).ok();
    assert_eq!(r.doc["hrd_policy"]["status"], "assigned");
    let ours = r.doc["hrd_policy"]["policy_id"]
        .as_str()
        .expect("policy id")
        .to_string();
    assert_ne!(ours, theirs);
    assert_eq!(assigned_to(&sim, &sp), vec![ours]);
    assert_eq!(
        r.doc["hrd_policy"]["replaced"][0]["policy_id"],
        json!(theirs)
    );
    assert!(r.stderr.contains("(--replace)"), "{}", r.stderr);
    // Their policy object is left in place (other apps may use it), only unassigned.
    assert_eq!(policies(&sim).len(), 2);
}

#[test]
fn remove_mode_unassigns_ours_and_a_rerun_finds_nothing_to_do() {
    let sim = federated();
    let doc = registered(&sim);
    let sp = service_principal_id(&doc);
    let set = sim.run("set-hrd-policy", &[], &doc).ok();
    let policy = set.doc["hrd_policy"]["policy_id"].clone();

    let r = sim
        .run("set-hrd-policy", &["--mode", "remove"], &set.doc)
        .ok();
    assert_eq!(r.doc["hrd_policy"]["status"], "removed");
    assert_eq!(r.doc["hrd_policy"]["policy_id"], policy);
    assert!(assigned_to(&sim, &sp).is_empty());
    assert!(
        r.stderr
            .contains("set-hrd-policy: unassigned Home Realm Discovery policy"),
        "{}",
        r.stderr
    );

    sim.clear();
    let again = sim
        .run("set-hrd-policy", &["--mode", "remove"], &r.doc)
        .ok();
    sim.assert_no_writes();
    assert_eq!(again.doc["hrd_policy"]["status"], "not-assigned");
}

#[test]
fn dry_run_lists_the_plan_and_writes_nothing() {
    let sim = federated();
    let doc = registered(&sim);
    sim.clear();
    let r = sim.run("set-hrd-policy", &["--dry-run"], &doc).ok();
    sim.assert_no_writes();
    let plan = r.doc["plan"].as_array().expect("plan");
    assert_eq!(plan.len(), 2, "{plan:#?}");
    assert!(
        plan[0]["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/v1.0/policies/homeRealmDiscoveryPolicies")
    );
    assert_eq!(plan[0]["body"]["isOrganizationDefault"], false);
    assert_eq!(plan[0]["body"]["definition"], json!([DEFINITION]));
    assert!(
        plan[1]["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/homeRealmDiscoveryPolicies/$ref")
    );
    assert!(policies(&sim).is_empty());
    assert!(
        r.stderr.contains("would create") && r.stderr.contains("would assign"),
        "{}",
        r.stderr
    );
}

#[test]
fn throttling_and_unavailability_are_retried() {
    let sim = federated();
    let doc = registered(&sim);
    sim.server.add_fault(json!({"path_prefix": "/v1.0/policies", "method": "POST", "status": 429, "retry_after": "0.2", "count": 1}));
    sim.server
        .add_fault(json!({"path_prefix": "/v1.0/domains", "status": 503, "count": 1}));
    sim.server.add_fault(json!({"path_prefix": "/v1.0/servicePrincipals", "method": "POST", "status": 504, "count": 1}));
    sim.clear();
    let r = sim.run("set-hrd-policy", &[], &doc).ok();
    let statuses: Vec<Value> = sim.requests().iter().map(|q| q["status"].clone()).collect();
    for s in [429, 503, 504] {
        assert!(
            statuses.contains(&json!(s)),
            "{s} missing from {statuses:?}"
        );
    }
    assert_eq!(r.doc["hrd_policy"]["status"], "assigned");
    assert_eq!(policies(&sim).len(), 1);
}

#[test]
fn a_lost_answer_on_create_leaves_one_policy() {
    let sim = sim_with(Options {
        federated: true,
        replication_lag_ms: 200,
        ..Default::default()
    });
    let doc = registered(&sim);
    sim.server.add_fault(json!({"path_prefix": "/v1.0/policies/homeRealmDiscoveryPolicies", "method": "POST", "kind": "lost_response"}));
    let r = sim.run("set-hrd-policy", &[], &doc).ok();
    let all = policies(&sim);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(r.doc["hrd_policy"]["policy_id"], all[0]["id"]);
    assert_eq!(
        assigned_to(&sim, &service_principal_id(&doc)),
        vec![all[0]["id"].as_str().unwrap_or_default().to_string()]
    );
    assert!(
        r.stderr
            .contains("deleted unassigned duplicate Home Realm Discovery policy"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_lost_answer_on_assign_is_accepted() {
    let sim = federated();
    let doc = registered(&sim);
    sim.server.add_fault(json!({"path_prefix": "/v1.0/servicePrincipals", "method": "POST", "kind": "lost_response"}));
    let r = sim.run("set-hrd-policy", &[], &doc).ok();
    assert_eq!(r.doc["hrd_policy"]["status"], "assigned");
    assert_eq!(assigned_to(&sim, &service_principal_id(&doc)).len(), 1);
}

#[test]
fn password_hash_sync_off_is_warned_about() {
    let sim = federated();
    let doc = registered(&sim);
    // The setting is readable only by a signed-in administrator (Graph supports no application
    // permission for it), so the admin signs in with device code through a public client
    // registered in the tenant, whose scopes include OnPremDirectorySynchronization.Read.All.
    let (s, client) = sim.graph(
        "POST",
        "applications",
        Some(json!({"displayName": "Admin tools", "isFallbackPublicClient": true})),
    );
    assert_eq!(s, 201, "{client}");
    let login_client = client["appId"].as_str().unwrap().to_string();
    let cache = sim.path("tokens.json");
    seed_token_cache_for(&sim, &cache, &login_client);
    // The emulator always reports sync on; a scripted answer says it is off.
    sim.server.add_fault(json!({
        "path_prefix": "/v1.0/directory/onPremisesSynchronization", "method": "GET", "status": 200,
        "body": {"value": [{"id": sim.server.tenant_id(), "features": {"passwordSyncEnabled": false}}]}
    }));
    let mut c = sim.cmd("set-hrd-policy");
    c.env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .env("MKTO_S2S_TOKEN_CACHE", &cache)
        .args(["--auth", "cache", "--login-client-id", &login_client])
        .write_stdin(doc.to_string());
    let r = Run::from_output(c.output().unwrap()).ok();
    assert!(
        r.stderr
            .contains("set-hrd-policy: warning: password hash sync is off"),
        "{}",
        r.stderr
    );
    assert_eq!(r.doc["hrd_policy"]["status"], "assigned");
}

#[test]
fn an_app_only_admin_does_not_ask_for_the_password_hash_sync_setting() {
    // "Application: Not supported" (onpremisesdirectorysynchronization-get): the request would
    // be a 403 on every run, so an app-only token does not send it.
    let sim = federated();
    let doc = registered(&sim);
    sim.clear();
    let r = sim.run("set-hrd-policy", &[], &doc).ok();
    assert_eq!(r.doc["hrd_policy"]["status"], "assigned");
    let asked = method_paths(&sim.requests())
        .into_iter()
        .filter(|p| p.contains("onPremisesSynchronization"))
        .count();
    assert_eq!(asked, 0);
}

#[test]
fn a_service_principal_that_does_not_exist_is_not_assigned_anything() {
    let sim = federated();
    let doc = json!({"app": {"service_principal_id": "11111111-2222-3333-4444-555555555555",
                             "display_name": "Marketo Integration"}});
    sim.clear();
    // Replication is waited out (up to two minutes); the deadline here ends it sooner.
    let r = sim
        .run("set-hrd-policy", &["--timeout", "2s"], &doc)
        .code_is(5);
    r.assert_stderr("reading the app's service principal");
    sim.assert_no_writes();
    assert!(policies(&sim).is_empty());
}

#[test]
fn bad_input_exits_2_before_any_request() {
    let sim = federated();
    sim.clear();
    sim.assert_needs(
        "set-hrd-policy",
        "--service-principal-id",
        "app.service_principal_id",
    );
    let app = json!({"app": {"service_principal_id": "11111111-1111-1111-1111-111111111111"}});
    for args in [
        vec!["--mode", "remove", "--replace"],
        vec!["--mode", "sometimes"],
        vec!["--policy-name", ""],
        vec!["--service-principal-id", "x'y"],
    ] {
        let r = sim.run("set-hrd-policy", &args, &app);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    }
    sim.run("set-hrd-policy", &[], &json!({"app": {"service_principal_id": "11111111-1111-1111-1111-111111111111", "display_name": 3}}))
        .code_is(2);
    sim.run("set-hrd-policy", &[], &json!({"app": {"service_principal_id": "11111111-1111-1111-1111-111111111111"}, "hrd_policy": {"policy_id": "nope"}}))
        .code_is(2);
    sim.assert_no_requests();
}

fn our_policies(sim: &Sim) -> Vec<Value> {
    sim.state_objects("home_realm_discovery_policies")
}

#[test]
fn racing_set_hrd_policy_runs_end_with_one_assigned_policy() {
    for lag in [100, 0, 100] {
        let sim = sim_with(tenant_sim::Options {
            federated: true,
            replication_lag_ms: lag,
            ..Default::default()
        });
        let doc = registered(&sim);
        std::thread::sleep(Duration::from_millis(lag + 50));
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| sim.run("set-hrd-policy", &[], &doc));
            let b = s.spawn(|| sim.run("set-hrd-policy", &[], &doc));
            (a.join().unwrap(), b.join().unwrap())
        });
        let a = a.code_is(0);
        let b = b.code_is(0);
        assert_eq!(
            a.doc["hrd_policy"]["policy_id"], b.doc["hrd_policy"]["policy_id"],
            "lag {lag}: the runs ended on different policies\n{}\n{}",
            a.stderr, b.stderr
        );
        std::thread::sleep(Duration::from_millis(lag + 50));
        let policies = our_policies(&sim);
        assert_eq!(policies.len(), 1, "lag {lag}: {policies:#?}");
        assert_eq!(policies[0]["id"], a.doc["hrd_policy"]["policy_id"]);
    }
}

#[test]
fn a_later_run_removes_our_unassigned_duplicates_and_nothing_else() {
    let sim = federated();
    let doc = registered(&sim);
    let r = sim.run("set-hrd-policy", &[], &doc).ok();
    let kept = r.doc["hrd_policy"]["policy_id"].clone();
    let name = r.doc["hrd_policy"]["display_name"]
        .as_str()
        .unwrap()
        .to_string();
    let definition =
        json!([r#"{"HomeRealmDiscoveryPolicy":{"AllowCloudPasswordValidation":true}}"#]);
    let ours = |tag: &str| {
        json!({
            "displayName": name, "definition": definition, "isOrganizationDefault": false,
            "description": format!("Lets Entra ID validate passwords of federated users signing in to Marketo Integration (Marketo S2S). Created by marketo-s2s set-hrd-policy [run {tag}]"),
        })
    };
    // Two duplicates as racing runs left them, and a policy with the same name that the admin
    // made (not ours: no marketo-s2s description), which must stay.
    let dup1 = sim.graph_expect(
        201,
        "POST",
        "policies/homeRealmDiscoveryPolicies",
        Some(ours("aaaaaaaa")),
    );
    let dup2 = sim.graph_expect(
        201,
        "POST",
        "policies/homeRealmDiscoveryPolicies",
        Some(ours("bbbbbbbb")),
    );
    let admins = sim.graph_expect(
        201,
        "POST",
        "policies/homeRealmDiscoveryPolicies",
        Some(
            json!({"displayName": name, "definition": definition, "isOrganizationDefault": false}),
        ),
    );
    sim.clear();
    let again = sim.run("set-hrd-policy", &[], &r.doc).ok();
    assert_eq!(again.doc["hrd_policy"]["policy_id"], kept);
    again.assert_stderr("deleted unassigned duplicate");
    let left: Vec<Value> = our_policies(&sim).iter().map(|p| p["id"].clone()).collect();
    assert!(
        left.contains(&kept) && left.contains(&admins["id"]),
        "{left:?}"
    );
    assert!(
        !left.contains(&dup1["id"]) && !left.contains(&dup2["id"]),
        "{left:?}"
    );
    // And then nothing is left to do.
    sim.clear();
    sim.run("set-hrd-policy", &[], &again.doc).ok();
    sim.assert_no_writes();
}
