//! register-app: create, re-run without writes, adopt, faults, replication, bad input, secrets;
//! different display names derive different apps, and no other connection's app is renamed.

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

fn guid(v: &Value) -> String {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    assert_eq!(s.len(), 36, "not a GUID: {s}");
    s.to_string()
}

#[test]
fn creates_app_and_service_principal_then_rerun_writes_nothing() {
    let sim = sim();
    let first = sim
        .run(
            "register-app",
            &["--name", "Marketo Integration"],
            &Value::Null,
        )
        .ok();
    let d = &first.doc;
    assert_eq!(d["tenant"]["id"], json!(sim.server.tenant_id()));
    assert_eq!(d["app"]["display_name"], "Marketo Integration");
    assert_eq!(d["app"]["unique_name"], "marketo-integration");
    let client_id = guid(&d["app"]["client_id"]);
    guid(&d["app"]["object_id"]);
    let sp_id = guid(&d["app"]["service_principal_id"]);
    assert!(first.changed("register-app"));
    assert!(
        first
            .stderr
            .contains("register-app: created application \"Marketo Integration\""),
        "{}",
        first.stderr
    );

    // The emulator holds exactly one such app, single-tenant, asking for user_impersonation.
    let apps: Vec<Value> = sim
        .applications()
        .into_iter()
        .filter(|a| a["displayName"] == "Marketo Integration")
        .collect();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["appId"], json!(client_id));
    assert_eq!(apps[0]["signInAudience"], "AzureADMyOrg");
    let rra = &apps[0]["requiredResourceAccess"][0];
    assert_eq!(rra["resourceAppId"], "00000007-0000-0000-c000-000000000000");
    assert_eq!(rra["resourceAccess"][0]["type"], "Scope");
    let sp = sim.graph_expect(
        200,
        "GET",
        &format!("servicePrincipals(appId='{client_id}')"),
        None,
    );
    assert_eq!(sp["id"], json!(sp_id));

    // The same document piped back: nothing is written, and it says so.
    sim.clear();
    let second = sim.run("register-app", &[], &first.doc).ok();
    assert!(!second.changed("register-app"));
    assert_eq!(second.doc["app"], first.doc["app"]);
    assert!(second.stderr.contains("is up to date"), "{}", second.stderr);
    sim.assert_no_writes();
    assert_eq!(
        sim.applications()
            .iter()
            .filter(|a| a["displayName"] == "Marketo Integration")
            .count(),
        1
    );
}

#[test]
fn unknown_keys_pass_through_and_flags_override_the_document() {
    let sim = sim();
    let input = json!({"custom": {"keep": [1, 2]}, "app": {"display_name": "From Doc"}});
    let r = sim
        .run("register-app", &["--name", "From Flag"], &input)
        .ok();
    assert_eq!(r.doc["custom"], json!({"keep": [1, 2]}));
    assert_eq!(r.doc["app"]["display_name"], "From Flag");
    assert_eq!(r.doc["app"]["unique_name"], "from-flag");
}

#[test]
fn adopts_a_portal_app_by_client_id_and_fixes_it() {
    let sim = sim();
    let app = sim.graph_expect(
        201,
        "POST",
        "applications",
        Some(json!({"displayName": "Portal App", "signInAudience": "AzureADMultipleOrgs"})),
    );
    let client_id = app["appId"].as_str().unwrap().to_string();
    let r = sim
        .run(
            "register-app",
            &["--client-id", &client_id, "--name", "Portal App"],
            &Value::Null,
        )
        .ok();
    assert_eq!(r.doc["app"]["client_id"], json!(client_id));
    assert_eq!(r.doc["app"]["object_id"], app["id"]);
    assert!(r.doc["app"]["unique_name"].is_null());
    let (_, after) = sim.graph("GET", &format!("applications(appId='{client_id}')"), None);
    assert_eq!(after["signInAudience"], "AzureADMyOrg");
    assert_eq!(
        after["requiredResourceAccess"][0]["resourceAppId"],
        "00000007-0000-0000-c000-000000000000"
    );
    guid(&r.doc["app"]["service_principal_id"]);
    // Re-run from the document alone: still the adopted app, no write.
    sim.clear();
    let again = sim.run("register-app", &[], &r.doc).ok();
    assert_eq!(again.doc["app"]["client_id"], json!(client_id));
    sim.assert_no_writes();
    assert_eq!(sim.applications().len(), 1);
}

#[test]
fn an_adopted_app_keeps_its_name_unless_one_is_asked_for_and_is_marked_adopted() {
    let sim = sim();
    let app = sim.graph_expect(
        201,
        "POST",
        "applications",
        Some(json!({"displayName": "Contoso Portal App", "signInAudience": "AzureADMyOrg"})),
    );
    let client_id = app["appId"].as_str().unwrap().to_string();
    let r = sim
        .run("register-app", &["--client-id", &client_id], &Value::Null)
        .ok();
    let (_, after) = sim.graph("GET", &format!("applications(appId='{client_id}')"), None);
    assert_eq!(after["displayName"], "Contoso Portal App");
    assert_eq!(r.doc["app"]["display_name"], "Contoso Portal App");
    assert_eq!(r.doc["app"]["adopted"], true);
    // Asked for by name, it is renamed, and the line says what it was called.
    let r = sim
        .run(
            "register-app",
            &["--client-id", &client_id, "--name", "Marketo Integration"],
            &Value::Null,
        )
        .ok();
    r.assert_stderr("(was named \"Contoso Portal App\")");
    // A setup that made its own app is not marked.
    let own = sim
        .run("register-app", &["--name", "Own App"], &Value::Null)
        .ok();
    assert!(own.doc["app"].get("adopted").is_none(), "{}", own.doc);
}

#[test]
fn adopting_an_unknown_client_id_is_refused() {
    let sim = sim();
    let r = sim
        .run(
            "register-app",
            &["--client-id", "11111111-2222-3333-4444-555555555555"],
            &Value::Null,
        )
        .code_is(4);
    assert!(
        r.stderr
            .contains("register-app: error: no application with client id"),
        "{}",
        r.stderr
    );
}

#[test]
fn throttling_and_unavailability_are_retried() {
    let sim = sim();
    sim.server.add_fault(
        json!({"path_prefix": "/v1.0/applications", "status": 429, "retry_after": "1", "count": 1}),
    );
    sim.server
        .add_fault(json!({"path_prefix": "/v1.0/servicePrincipals", "status": 503, "count": 2}));
    let r = sim.run("register-app", &[], &Value::Null).ok();
    guid(&r.doc["app"]["service_principal_id"]);
    let statuses: Vec<u64> = sim
        .requests()
        .iter()
        .filter_map(|r| r["status"].as_u64())
        .collect();
    assert!(
        statuses.contains(&429) && statuses.contains(&503),
        "{statuses:?}"
    );
    assert_eq!(sim.applications().len(), 1);
}

#[test]
fn a_fault_that_never_ends_stops_at_the_timeout_with_exit_5() {
    let sim = sim();
    sim.server
        .add_fault(json!({"path_prefix": "/v1.0/", "status": 503, "count": 100000}));
    let started = std::time::Instant::now();
    let r = sim
        .run("register-app", &["--timeout", "2s"], &Value::Null)
        .code_is(5);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(
        r.stderr.contains("register-app: error: gave up"),
        "{}",
        r.stderr
    );
    // What it knew when it gave up goes on to the next tool of a pipeline.
    assert_eq!(r.doc["steps"]["register-app"]["error"]["exit_code"], 5);
    assert!(r.doc["app"]["client_id"].is_null(), "{}", r.stdout);
}

#[test]
fn replication_lag_is_waited_out() {
    let sim = sim_with(Options {
        replication_lag_ms: 1500,
        ..Default::default()
    });
    let r = sim.run("register-app", &[], &Value::Null).ok();
    guid(&r.doc["app"]["service_principal_id"]);
    // The service principal could only be created once the app had replicated.
    let sp_writes: Vec<Value> = sim
        .requests()
        .into_iter()
        .filter(|q| {
            q["method"] != "GET"
                && q["path"]
                    .as_str()
                    .unwrap_or("")
                    .contains("servicePrincipals")
        })
        .collect();
    assert!(
        sp_writes.iter().any(|q| q["status"] == 400),
        "expected a NoBackingApplicationObject answer first: {sp_writes:#?}"
    );
    assert!(sp_writes.iter().any(|q| q["status"] == 201));
}

#[test]
fn bad_input_sends_no_request_and_exits_2() {
    let sim = sim();
    let cases: &[(&[&str], &str, &str)] = &[
        (&[], "{\"app\": ", "not valid JSON"),
        (&[], "[1,2]", "must be a JSON object"),
        (&[], "{\"app\": {\"client_id\": 7}}", "app.client_id"),
        (&[], "{\"app\": \"x\"}", "app"),
        (&["--client-id", "not-a-guid"], "", "not a GUID"),
        (
            &["--graph-url", "http://graph.example.com"],
            "",
            "only https",
        ),
        (
            &["--graph-url", "https://user:pw@graph.example.com"],
            "",
            "user name or password",
        ),
        (&["--cloud", "mars"], "", "mars"),
        (&["--no-such-flag"], "", "--no-such-flag"),
    ];
    for (args, stdin, needle) in cases {
        sim.clear();
        let mut c = sim.cmd("register-app");
        c.args(*args).write_stdin(stdin.to_string());
        let r = Run::from_output(c.output().unwrap()).code_is(2);
        assert!(
            r.stderr.contains(needle),
            "{args:?} {stdin:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr.starts_with("register-app: error: "),
            "{}",
            r.stderr
        );
        if !r.stdout.is_empty() {
            assert_handed_on_unchanged(&r, "register-app", &serde_json::from_str(stdin).unwrap());
        }
        assert!(sim.requests().is_empty(), "{args:?} sent requests");
    }
}

#[test]
fn missing_tenant_names_flag_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_bare("register-app", dir.path(), &[], "", &[]).code_is(2);
    assert!(
        r.stderr.contains("--tenant") && r.stderr.contains("tenant.id"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_wrong_admin_secret_exits_3_naming_the_credential_source() {
    let sim = sim();
    let mut c = sim.cmd("register-app");
    c.env("AZURE_CLIENT_SECRET", "definitely-wrong");
    let r = Run::from_output(c.output().unwrap()).code_is(3);
    assert!(
        r.stderr.contains("AZURE_CLIENT_ID/AZURE_CLIENT_SECRET"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("AADSTS7000215"), "{}", r.stderr);
    assert!(sim.applications().is_empty());
}

#[test]
fn no_secret_or_token_at_vv() {
    let sim = sim();
    let r = sim.run("register-app", &["-vv"], &Value::Null).ok();
    let out = r.all_output();
    assert!(
        out.contains("Authorization: (redacted)"),
        "trace should show the header redacted"
    );
    assert!(
        !out.contains(&sim.server.admin_client_secret()),
        "admin secret leaked"
    );
    let token = sim.admin_token(&sim.url());
    // Tokens are unique per issue; check the shape instead: no JWT-looking string at all.
    assert!(!out.contains("eyJ"), "a token leaked:\n{out}");
    drop(token);
}

#[test]
fn dry_run_plans_and_writes_nothing() {
    let sim = sim();
    let r = sim.run("register-app", &["--dry-run"], &Value::Null).ok();
    sim.assert_no_writes();
    let plan = r.doc["plan"].as_array().expect("plan");
    assert_eq!(plan[0]["method"], "PATCH");
    assert!(
        plan[0]["url"]
            .as_str()
            .unwrap()
            .contains("applications(uniqueName=")
    );
    assert!(sim.applications().is_empty());
    assert!(!r.changed("register-app"));
}

#[test]
fn names_with_odata_special_characters_are_data_not_syntax() {
    let sim = sim();
    let name = "O'Brien % #1 / test";
    let r = sim
        .run(
            "register-app",
            &["--name", name, "--unique-name", name],
            &Value::Null,
        )
        .ok();
    assert_eq!(r.doc["app"]["unique_name"], json!(name));
    sim.clear();
    sim.run("register-app", &[], &r.doc).ok();
    sim.assert_no_writes();
    let apps = sim.applications();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["uniqueName"], json!(name));
}

#[test]
fn different_display_names_derive_different_apps_and_no_foreign_app_is_renamed() {
    let sim = sim();
    let names = [
        "Маркето Интеграция",
        "日本語",
        "Marketo Integration",
        "Marketo Integration!",
    ];
    let mut client_ids = Vec::new();
    let mut docs = Vec::new();
    for name in names {
        let r = sim
            .run("register-app", &["--name", name], &Value::Null)
            .ok();
        assert_eq!(r.doc["app"]["display_name"], json!(name));
        client_ids.push(client_id(&r.doc));
        docs.push(r.doc);
    }
    let mut unique = client_ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{client_ids:?}");
    // Every app still has the name it was created with.
    let mut shown: Vec<String> = sim
        .applications()
        .iter()
        .map(|a| a["displayName"].as_str().unwrap().to_string())
        .collect();
    shown.sort();
    let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    want.sort();
    assert_eq!(shown, want);

    // A name that still derives an existing key (letter case) never renames that app: from a
    // new document it is another connection's app; from that connection's own
    // document (its setup) without the app's ids, it was not named.
    sim.clear();
    let r = sim
        .run(
            "register-app",
            &["--name", "MARKETO INTEGRATION"],
            &Value::Null,
        )
        .code_is(4);
    r.assert_stderr("belongs to another connection");
    sim.assert_no_writes();
    let doc = docs[2].clone();
    assert_eq!(doc["app"]["display_name"], "Marketo Integration");
    let r = sim
        .run(
            "register-app",
            &["--name", "MARKETO INTEGRATION"],
            &json!({"setup": doc["setup"]}),
        )
        .code_is(4);
    r.assert_stderr("which this document did not name");
    r.assert_stderr("--unique-name");
    sim.assert_no_writes();

    // The document that named it may rename it, and a recorded unique name is kept.
    assert_eq!(doc["app"]["unique_name"], "marketo-integration");
    let renamed = sim
        .run(
            "register-app",
            &["--name", "Marketo Integration (prod)"],
            &doc,
        )
        .ok();
    assert_eq!(renamed.doc["app"]["unique_name"], "marketo-integration");
    assert_eq!(renamed.doc["app"]["client_id"], doc["app"]["client_id"]);
    assert_eq!(sim.applications().len(), names.len());
}
