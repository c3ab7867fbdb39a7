//! Issue 12: what an adversarial review broke, one test (or more) per class. Every test here
//! failed on the code before the fix; each says which finding it covers.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

/// `tool` as a plain std command signed in as the emulator's admin (the environment of
/// [`Sim::cmd`]), so a test can give it any file as stderr.
fn tool_command(sim: &Sim, tool: &str) -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin(tool));
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", sim.dir())
        .env("XDG_CACHE_HOME", sim.dir().join(".cache"))
        .current_dir(sim.dir())
        .envs(sim.env());
    c
}

fn domain_requests(sim: &Sim) -> Vec<Value> {
    sim.requests()
        .into_iter()
        .filter(|r| r["path"] == "/v1.0/domains")
        .collect()
}

// ---- finding 1: a bearer token goes only to the origin it was issued for --------------------

#[test]
fn a_graph_next_link_to_another_origin_is_refused_with_exit_4_and_gets_no_token() {
    let sim = federated();
    let doc = registered(&sim);
    let port = sim.url().rsplit(':').next().unwrap().to_string();
    for link in [
        // Another origin served by the same emulator: the Dynamics port.
        format!("{}/v1.0/domains?$skiptoken=x", sim.server.dynamics_url()),
        // The same server under another host name, and another scheme.
        format!("http://localhost:{port}/v1.0/domains?$skiptoken=x"),
        format!("https://127.0.0.1:{port}/v1.0/domains?$skiptoken=x"),
        "http://evil.example/v1.0/domains?$skiptoken=x".to_string(),
    ] {
        sim.clear();
        sim.server.add_fault(json!({
            "path_prefix": "/v1.0/domains", "method": "GET", "status": 200,
            "body": {"value": [], "@odata.nextLink": link},
        }));
        let r = sim.run("set-hrd-policy", &[], &doc).code_is(4);
        r.assert_stderr("next-page link for domains");
        r.assert_stderr("points outside");
        assert!(!r.stderr.contains("skiptoken"), "{}", r.stderr);
        // The first page only: the link was never followed, so no token went with it.
        assert_eq!(domain_requests(&sim).len(), 1, "{link}");
        assert!(
            sim.requests().iter().all(|q| q["service"] != "dataverse"),
            "{link}: a request reached the Dynamics origin"
        );
        sim.assert_no_writes();
    }
}

#[test]
fn a_dataverse_next_link_to_another_origin_is_refused_with_exit_4_and_gets_no_token() {
    let sim = sim();
    let doc = registered(&sim);
    sim.clear();
    // The Graph origin of the same emulator: another port, so another token audience.
    sim.server.add_fault(json!({
        "path_prefix": "/api/data/v9.2/solutions", "method": "GET", "status": 200,
        "body": {"value": [], "@odata.nextLink": format!("{}/api/data/v9.2/solutions?$skiptoken=x", sim.url())},
    }));
    let r = sim.run("assign-role", &[], &doc).code_is(4);
    r.assert_stderr("points outside");
    assert!(
        sim.requests().iter().all(
            |q| !q["path"].as_str().unwrap_or("").starts_with("/api/data")
                || q["service"] == "dataverse"
        ),
        "the link was followed: {:#?}",
        sim.requests()
    );
    sim.assert_no_writes();
}

#[test]
fn a_graph_next_link_that_loops_ends_at_once_with_exit_4() {
    let sim = federated();
    let doc = registered(&sim);
    sim.clear();
    sim.server.add_fault(json!({
        "path_prefix": "/v1.0/domains", "method": "GET", "status": 200, "count": 50,
        "body": {"value": [], "@odata.nextLink": format!("{}/v1.0/domains?$skiptoken=loop", sim.url())},
    }));
    let t0 = Instant::now();
    let r = sim.run("set-hrd-policy", &[], &doc).code_is(4);
    r.assert_stderr("repeats a page already read");
    assert_eq!(domain_requests(&sim).len(), 2);
    assert!(t0.elapsed() < Duration::from_secs(30));
}

// ---- finding 3: human output can never fail a run; no panic on outside numbers ---------------

#[test]
fn a_failed_write_to_stderr_never_loses_the_document() {
    for args in [vec![], vec!["-v"]] {
        // A tenant each: a second run from nothing would meet the first one's app (issue 20).
        let sim = sim();
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let out = tool_command(&sim, "register-app")
            .args(&args)
            .stdin(Stdio::null())
            .stderr(Stdio::from(full))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        let doc: Value = serde_json::from_slice(&out.stdout).expect("the document on stdout");
        assert!(doc["app"]["client_id"].is_string(), "{doc}");
    }
}

#[test]
fn a_huge_expires_in_from_the_token_endpoint_is_clamped_not_a_crash() {
    let sim = sim();
    let token = sim.admin_token(&sim.url());
    sim.server.add_fault(json!({
        "path_prefix": format!("/{}/oauth2/v2.0/token", sim.server.tenant_id()),
        "method": "POST", "status": 200,
        "body": {"token_type": "Bearer", "access_token": token, "expires_in": u64::MAX},
    }));
    let r = sim.run("register-app", &[], &Value::Null).ok();
    assert!(r.doc["app"]["client_id"].is_string());
}

// ---- finding 4: nothing from outside reaches the terminal raw ---------------------------------

#[test]
fn control_characters_from_the_document_are_escaped_in_the_step3_block() {
    let sim = sim();
    let mut doc = sim.setup_chain(&[]);
    doc["dynamics"]["username"] =
        json!("admin@contoso.com\n  Client ID    : forged\u{1b}]0;owned\u{7}\u{1b}[2J\r");
    let r = sim.run("verify-sync", &[], &doc);
    assert!(
        !r.stderr
            .chars()
            .any(|c| c != '\n' && (c.is_control() || c == '\u{202e}')),
        "a control character reached stderr:\n{:?}",
        r.stderr
    );
    assert!(
        !r.stderr
            .lines()
            .any(|l| l.trim_start().starts_with("Client ID    : forged")),
        "a forged line:\n{}",
        r.stderr
    );
}

#[test]
fn control_characters_in_a_service_error_are_escaped() {
    let sim = sim();
    sim.server.add_fault(json!({
        "path_prefix": "/v1.0/applications", "status": 403,
        "body": {"error": {
            "code": "Authorization_RequestDenied\u{1b}[8m",
            "message": "Insufficient privileges\u{1b}]0;owned\u{7}\rregister-app: done, all fine",
        }},
    }));
    let r = sim.run("register-app", &[], &Value::Null).code_is(4);
    assert!(
        !r.stderr.chars().any(|c| c != '\n' && c.is_control()),
        "a control character reached stderr:\n{:?}",
        r.stderr
    );
    r.assert_stderr("Insufficient privileges\\x1b]0;owned\\x07\\rregister-app");
}

// ---- finding 2: file-system targets the tool does not own -----------------------------------

#[test]
fn a_secret_file_that_is_a_symlink_to_a_device_is_never_replaced() {
    let sim = sim();
    let doc = registered(&sim);
    let link = sim.path("secret-link");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    let r = sim.run(
        "make-secret",
        &["--secret-file", link.to_str().unwrap()],
        &doc,
    );
    assert_ne!(r.code, 0, "{}", r.stderr);
    r.assert_stderr("not a regular file");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the symlink was replaced by a file holding the secret"
    );
    // Whatever was added was removed again: no credential is left that nobody can use.
    let (_, app) = sim.graph(
        "GET",
        &format!("applications/{}", doc["app"]["object_id"].as_str().unwrap()),
        None,
    );
    assert_eq!(app["passwordCredentials"], json!([]), "{app}");
}

#[test]
fn the_token_cache_never_chmods_a_directory_it_did_not_create() {
    use std::os::unix::fs::PermissionsExt;
    let sim = sim();
    let shared = sim.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cache = shared.join("tokens.json");
    seed_token_cache(&sim, &cache);
    let mut c = sim.cmd("register-app");
    c.env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .env("MKTO_S2S_TOKEN_CACHE", &cache)
        .args(["--auth", "cache"]);
    Run::from_output(c.output().unwrap()).ok();
    assert_eq!(s2s_core::fsutil::mode_of(&shared).unwrap(), 0o755);
    assert_eq!(s2s_core::fsutil::mode_of(&cache).unwrap(), 0o600);
}

#[test]
fn a_hanging_az_is_stopped_at_the_timeout_and_killed() {
    let sim = sim();
    let bin = sim.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let pid_file = sim.path("az.pid");
    let script = bin.join("az");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 60\n",
            pid_file.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = sim.cmd("register-app");
    c.env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .args(["--auth", "az", "--timeout", "2s"]);
    let t0 = Instant::now();
    let r = Run::from_output(c.output().unwrap()).code_is(5);
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    r.assert_stderr("Azure CLI");
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    // The child was killed: gone, or a zombie waiting for its new parent to reap it.
    std::thread::sleep(Duration::from_millis(200));
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false);
    assert!(!alive, "az (pid {pid}) was left running");
}

// ---- finding 5 (part): bad input is found before any request --------------------------------

#[test]
fn a_ca_file_without_a_certificate_is_exit_2_with_no_request() {
    let sim = sim();
    let empty = sim.path("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let r = sim
        .run(
            "register-app",
            &["--ca-file", empty.to_str().unwrap()],
            &Value::Null,
        )
        .code_is(2);
    r.assert_stderr("holds no PEM certificate");
    assert!(sim.requests().is_empty(), "{:#?}", sim.requests());
}

// ---- finding 7: different display names never share an app ----------------------------------

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
    // new document it is another connection's app (issue 20); from that connection's own
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

// ---- finding 8: racing runs on a federated tenant leave one policy --------------------------

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
