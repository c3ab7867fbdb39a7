//! Input, for every tool: hostile and malformed documents and wrong types get the documented exit
//! code (2), a one-line error naming the problem, never a panic (exit 101), and not a single
//! request sent; OData special characters are escaped, a tenant that is not a tenant is refused
//! before the admin's secret is sent, and a Dynamics URL is taken as people type it.

use serde_json::{Value, json};

use crate::common::*;

/// The state-document keys each tool reads (its //! header documents the same list).
const READS: &[(&str, &[&str])] = &[
    (
        "register-app",
        &[
            "tenant.id",
            "tenant.cloud",
            "app.display_name",
            "app.unique_name",
            "app.client_id",
        ],
    ),
    ("grant-consent", &["tenant.id", "app.service_principal_id"]),
    (
        "make-secret",
        &[
            "tenant.id",
            "app.object_id",
            "app.client_id",
            "setup.id",
            "secret.key_id",
            "secret.hint",
            "secret.sha256",
            "secret.file",
            "secret.previous_key_id",
            "secret.lifetime",
            "secret.storage",
            "secret.pending",
        ],
    ),
    (
        "set-hrd-policy",
        &["tenant.id", "app.service_principal_id", "app.display_name"],
    ),
    (
        "assign-role",
        &["tenant.id", "app.client_id", "dynamics.url"],
    ),
    (
        "configure-marketo",
        &["tenant.id", "dynamics.url", "dynamics.application_user_id"],
    ),
    (
        "publish-customizations",
        &["tenant.id", "dynamics.url", "steps"],
    ),
    ("add-sync-filter", &["tenant.id", "dynamics.url"]),
    (
        "verify-sync",
        &[
            "tenant.id",
            "app.client_id",
            "app.object_id",
            "app.service_principal_id",
            "secret.key_id",
            "secret.file",
            "secret.sha256",
            "secret.storage",
            "dynamics.url",
            "dynamics.application_user_id",
            "sync_filter.entities",
        ],
    ),
];

/// Tools that can run from flags and the environment alone, so empty input is valid for them.
const NEED_NO_DOCUMENT: &[&str] = &["register-app", "publish-customizations", "add-sync-filter"];

fn set_path(doc: &mut Value, path: &str, v: Value) {
    let mut cur = doc;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        if !cur[*p].is_object() {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
    cur[parts[parts.len() - 1]] = v;
}

#[track_caller]
fn refused_without_request(sim: &Sim, tool: &str, args: &[&str], stdin: &str, needle: &str) {
    sim.clear();
    let mut c = sim.cmd(tool);
    c.env_remove("MKTO_S2S_DYNAMICS_URL")
        .env_remove("AZURE_TENANT_ID")
        .args(args)
        .write_stdin(stdin.to_string());
    let r = Run::from_output(c.output().unwrap());
    let shown: String = if stdin.len() > 1000 {
        format!("({} bytes)", stdin.len())
    } else {
        stdin.to_string()
    };
    assert_eq!(
        r.code, 2,
        "{tool} {args:?} with {shown:?}: exit {}\n{}",
        r.code, r.stderr
    );
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("{tool}: error: ")),
        "{tool}: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains(needle),
        "{tool} {args:?} {shown:?}: expected {needle:?} in\n{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("panicked"),
        "{tool} panicked:\n{}",
        r.stderr
    );
    // A document that could be read is handed on (a pipeline never loses it), with
    // nothing but this tool's error added; anything unreadable gives no output at all.
    if !r.stdout.is_empty() {
        let input: Value = serde_json::from_str(stdin).expect("only a read document is handed on");
        assert_handed_on_unchanged(&r, tool, &input);
    }
    assert!(
        sim.requests().is_empty(),
        "{tool} {args:?} sent requests on bad input: {:#?}",
        sim.requests()
    );
}

#[test]
fn malformed_documents() {
    let sim = sim();
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(10 * 1024 * 1024));
    for tool in tools::names() {
        refused_without_request(
            &sim,
            tool,
            unattended(tool),
            "{\"app\": {\"client_id\": \"",
            "not valid JSON",
        );
        refused_without_request(
            &sim,
            tool,
            unattended(tool),
            "[1, 2, 3]",
            "must be a JSON object",
        );
        refused_without_request(
            &sim,
            tool,
            unattended(tool),
            "\"just a string\"",
            "must be a JSON object",
        );
        refused_without_request(&sim, tool, unattended(tool), "42", "must be a JSON object");
        refused_without_request(&sim, tool, unattended(tool), &huge, "larger than");
        refused_without_request(
            &sim,
            tool,
            unattended(tool),
            "\u{feff}{}garbage",
            "not valid JSON",
        );
        if !NEED_NO_DOCUMENT.contains(&tool) {
            // An empty pipe is a failed previous step, not an empty document.
            refused_without_request(&sim, tool, unattended(tool), "", "produced no document");
            refused_without_request(&sim, tool, unattended(tool), "{}", "is needed");
        }
    }
}

#[test]
fn wrong_types_bad_guids_and_bad_urls_for_every_key_read() {
    let sim = sim();
    let base = json!({
        "tenant": {"id": sim.server.tenant_id(), "cloud": "public"},
        "app": {"display_name": "X", "unique_name": "x", "client_id": "11111111-2222-3333-4444-555555555555",
                "object_id": "11111111-2222-3333-4444-555555555556", "service_principal_id": "11111111-2222-3333-4444-555555555557"},
        "secret": {"key_id": "11111111-2222-3333-4444-555555555558", "file": "s.secret"},
        "dynamics": {"url": sim.server.dynamics_url(), "application_user_id": "11111111-2222-3333-4444-555555555559"},
        "sync_filter": {"entities": [{"entity": "lead", "status": "created"}]},
        "steps": {}
    });
    for (tool, keys) in READS {
        for key in *keys {
            for bad in [json!(42), json!(true), json!([1]), json!({"x": 1})] {
                let mut doc = base.clone();
                if *key == "steps" && (bad.is_object()) {
                    continue;
                }
                if *key == "sync_filter.entities" && bad.is_array() {
                    continue;
                }
                set_path(&mut doc, key, bad.clone());
                let args: &[&str] = if *key == "steps" {
                    &["--if-changed"]
                } else {
                    &[]
                };
                let top = key.split('.').next().unwrap();
                refused_without_request(&sim, tool, args, &doc.to_string(), top);
            }
            if key.ends_with("_id") && *key != "tenant.id" {
                let mut doc = base.clone();
                set_path(&mut doc, key, json!("not-a-guid"));
                refused_without_request(&sim, tool, &[], &doc.to_string(), key);
            }
        }
        for bad_url in [
            "http://contoso.crm.dynamics.com",
            "https://user:pw@contoso.crm.dynamics.com",
            "ftp://contoso",
            "not a url",
        ] {
            if keys.contains(&"dynamics.url") {
                let mut doc = base.clone();
                set_path(&mut doc, "dynamics.url", json!(bad_url));
                refused_without_request(&sim, tool, &[], &doc.to_string(), "dynamics.url");
                refused_without_request(
                    &sim,
                    tool,
                    &["--dynamics-url", bad_url],
                    &base.to_string(),
                    "--dynamics-url",
                );
            }
            refused_without_request(
                &sim,
                tool,
                &["--graph-url", bad_url],
                &base.to_string(),
                "--graph-url",
            );
            refused_without_request(
                &sim,
                tool,
                &["--authority-host", bad_url],
                &base.to_string(),
                "--authority-host",
            );
        }
        refused_without_request(&sim, tool, &["--cloud", "mars"], &base.to_string(), "mars");
        refused_without_request(
            &sim,
            tool,
            &["--tenant", "contoso'; drop"],
            &base.to_string(),
            "--tenant",
        );
        refused_without_request(
            &sim,
            tool,
            &["--timeout", "soon"],
            &base.to_string(),
            "soon",
        );
        refused_without_request(
            &sim,
            tool,
            &["--ca-file", "/no/such/ca.pem"],
            &base.to_string(),
            "--ca-file",
        );
    }
}

#[test]
fn odata_special_characters_are_escaped_not_injected() {
    let sim = sim();
    let doc = sim.setup_chain(&[]);
    let nasty = "O'Brien % #1 / x";
    sim.clear();
    let r = sim.run("assign-role", &["--role", nasty], &doc).code_is(4);
    assert!(
        r.stderr.contains(nasty),
        "the error names the role: {}",
        r.stderr
    );
    let filters: Vec<String> = sim
        .requests()
        .iter()
        .filter(|q| q["path"].as_str().unwrap_or("").ends_with("/roles"))
        .map(|q| q["query"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(!filters.is_empty());
    for q in &filters {
        assert!(
            q.contains("%27O%27%27Brien%20%25%20%231%20%2F%20x%27") || q.contains("O''Brien"),
            "not escaped: {q}"
        );
    }
    sim.assert_no_writes();

    sim.clear();
    let r = sim
        .run("configure-marketo", &["--record-name", nasty], &doc)
        .code_is(4);
    r.assert_stderr(nasty);
    sim.assert_no_writes();

    // A new application user goes to --business-unit, looked up by name.
    let fresh = crate::common::sim();
    let app = fresh.run("register-app", &[], &Value::Null).ok();
    fresh.clear();
    let r = fresh
        .run("assign-role", &["--business-unit", nasty], &app.doc)
        .code_is(4);
    r.assert_stderr(nasty);
    fresh.assert_no_writes();
}

#[test]
fn a_tenant_that_is_not_a_tenant_is_refused_before_the_admin_secret_is_sent() {
    let sim = sim();
    for bad in ["..", ".", "a..b", "contoso", "../x"] {
        sim.clear();
        let mut c = sim.null_stdin_cmd("register-app");
        c.env("AZURE_TENANT_ID", bad);
        let r = Run::from_output(c.output().unwrap()).code_is(2);
        r.assert_stderr("neither a tenant id");
        sim.assert_no_requests();
    }
}

#[test]
fn a_dynamics_url_is_taken_as_people_type_it() {
    let sim = sim();
    let doc = registered(&sim);
    // The emulator serves plain http on loopback, so the scheme-less form is checked on its
    // own (it becomes https) and the pasted browser address against the emulator.
    let pasted = format!(
        "{}/main.aspx?appid=5c8a&pagetype=entitylist&etn=lead",
        sim.server.dynamics_url()
    );
    let r = sim
        .run("assign-role", &["--dynamics-url", &pasted], &doc)
        .ok();
    r.assert_stderr("looks like a browser address");
    assert_eq!(
        r.doc["dynamics"]["url"].as_str(),
        Some(sim.server.dynamics_url().as_str())
    );
    // No scheme: https. The document names no app, so the run stops before any request (and
    // never reaches for a host outside this machine).
    sim.clear();
    let r = sim
        .run(
            "assign-role",
            &["--dynamics-url", "127.0.0.1:9"],
            &serde_json::json!({}),
        )
        .code_is(2);
    r.assert_stderr("no scheme: using https://127.0.0.1:9");
    sim.assert_no_requests();
}

#[test]
fn a_password_in_a_url_is_never_echoed_nor_written_to_the_document() {
    let sim = sim();
    let doc = registered(&sim);
    let secret = "S3cretPw";
    let with_password = format!("https://admin:{secret}@contoso.crm.dynamics.com");
    let mut doc_url = doc.clone();
    doc_url["dynamics"]["url"] = json!(with_password);
    for (what, args, env, stdin) in [
        (
            "--dynamics-url",
            vec!["--dynamics-url", with_password.as_str()],
            vec![],
            &doc,
        ),
        (
            "--graph-url",
            vec!["--graph-url", with_password.as_str()],
            vec![],
            &doc,
        ),
        (
            "AZURE_AUTHORITY_HOST",
            vec![],
            vec![("AZURE_AUTHORITY_HOST", with_password.clone())],
            &doc,
        ),
        (
            "IDENTITY_ENDPOINT",
            vec!["--auth", "managed-identity"],
            vec![
                ("IDENTITY_ENDPOINT", with_password.clone()),
                ("IDENTITY_HEADER", "h".to_string()),
            ],
            &doc,
        ),
        ("dynamics.url", vec![], vec![], &doc_url),
    ] {
        sim.clear();
        let mut c = sim.cmd("assign-role");
        c.args(&args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .write_stdin(stdin.to_string());
        let r = Run::from_output(c.output().unwrap());
        assert_eq!(r.code, 2, "{what}: {}", r.stderr);
        assert!(!r.stderr.contains(secret), "{what}: {}", r.stderr);
        r.assert_stderr("contoso.crm.dynamics.com");
        // The document handed on records the error; only the caller's own copy of the value
        // (the document's dynamics.url) may still hold it.
        let message = r.doc["steps"]["assign-role"]["error"]["message"].to_string();
        assert!(message.contains("user info removed"), "{what}: {message}");
        if what != "dynamics.url" {
            assert!(!r.stdout.contains(secret), "{what}: {}", r.stdout);
        }
        sim.assert_no_requests();
    }
}
