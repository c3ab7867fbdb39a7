//! `verify-sync --fleet` for a monitoring system: the sign-in each state
//! file names, one token cache shared by parallel checks, statuses, Nagios and Prometheus output,
//! and quiet runs when everything passes.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::*;

/// A finished setup of its own app (named after the file) written to `name` in the emulator's
/// folder, its secret beside it.
fn connection(sim: &Sim, name: &str) -> (PathBuf, Value) {
    let secret = sim.path(&format!("{name}.secret"));
    let mut doc = Value::Null;
    for (tool, mut args) in chain_steps(secret.to_str().unwrap()) {
        if tool == "register-app" {
            args.extend(["--name".to_string(), format!("Marketo {name}")]);
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = sim.run(tool, &a, &doc);
        assert_eq!(r.code, 0, "{tool} failed\nstderr:\n{}", r.stderr);
        doc = r.doc;
    }
    let file = sim.path(name);
    std::fs::write(&file, doc.to_string()).unwrap();
    (file, doc)
}

/// A fleet run with nothing from the environment but what is given.
fn fleet(sim: &Sim, files: &[&Path], args: &[&str], env: &[(&str, String)]) -> Run {
    let mut c = bare_cmd("verify-sync", sim.dir());
    c.arg("--fleet").args(files).args(args);
    c.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    Run::from_output(c.output().unwrap())
}

fn read(file: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

fn rows(r: &Run) -> Vec<Value> {
    r.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A copy of `doc` whose secret file holds a secret Entra does not know: the live sign-in
/// Marketo would make fails (one org has one Marketo connection, so the broken one is a copy).
fn broken_copy(sim: &Sim, doc: &Value, name: &str) -> PathBuf {
    let secret = sim.path(&format!("{name}.secret"));
    std::fs::write(&secret, "not-the-secret").unwrap();
    let mut doc = doc.clone();
    doc["secret"]["file"] = json!(secret.display().to_string());
    let file = sim.path(name);
    std::fs::write(&file, doc.to_string()).unwrap();
    file
}

#[test]
fn a_document_naming_its_own_certificate_sign_in_is_checked_with_no_azure_variables() {
    let sim = sim();
    let (file, mut doc) = connection(&sim, "contoso.state.json");
    doc["sign_in"] = json!({
        "method": "certificate",
        "client_id": sim.server.admin_client_id(),
        "certificate_path": sim.server.admin_certificate_file().display().to_string(),
    });
    std::fs::write(&file, doc.to_string()).unwrap();
    sim.clear();
    // No AZURE_* at all: the authority and Graph as flags (they are the emulator's hosts).
    let args = ["--authority-host", &sim.url(), "--graph-url", &sim.url()];
    let r = fleet(&sim, &[&file], &args, &[]).ok();
    let rows = rows(&r);
    assert_eq!(rows[0]["status"], "ok", "{}", r.stdout);
    let assertions = sim
        .requests()
        .iter()
        .filter(|q| q["service"] == "login")
        .count();
    assert!(assertions >= 2, "Graph and the org each got a token");
    // The same document with a single run.
    let mut c = bare_cmd("verify-sync", sim.dir());
    c.args(["--state", file.to_str().unwrap(), "--settle", "0"])
        .args(args);
    Run::from_output(c.output().unwrap()).ok();
    // A secret in the document is refused before any request.
    doc["sign_in"]["client_secret"] = json!("do-not-keep-me-here");
    std::fs::write(&file, doc.to_string()).unwrap();
    sim.clear();
    let mut c = bare_cmd("verify-sync", sim.dir());
    c.args(["--state", file.to_str().unwrap()]).args(args);
    let r = Run::from_output(c.output().unwrap()).code_is(2);
    r.assert_stderr("sign_in.client_secret");
    assert!(!r.stderr.contains("do-not-keep-me-here"), "{}", r.stderr);
    sim.assert_no_requests();
}

#[test]
fn parallel_checks_with_one_token_cache_all_sign_in() {
    let sim = sim();
    let (first, _) = connection(&sim, "c0.json");
    let text = std::fs::read_to_string(&first).unwrap();
    let mut files = vec![first];
    for i in 1..8 {
        let f = sim.path(&format!("c{i}.json"));
        std::fs::write(&f, &text).unwrap();
        files.push(f);
    }
    let cache = sim.path("tokens.json");
    seed_token_cache(&sim, &cache);
    let env = [
        ("AZURE_AUTHORITY_HOST", sim.url()),
        ("MKTO_S2S_GRAPH_URL", sim.url()),
        ("MKTO_S2S_TOKEN_CACHE", cache.display().to_string()),
    ];
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let r = fleet(&sim, &refs, &["--jobs", "4"], &env);
    let rows = rows(&r);
    assert_eq!(rows.len(), 8, "{}", r.stderr);
    for row in &rows {
        assert!(row["error"].is_null(), "cannot check: {row}");
        assert_ne!(row["status"], "unknown", "{row}");
    }
}

#[test]
fn nagios_exits_1_for_an_expiring_secret_2_for_a_broken_connection_3_for_unknown() {
    let sim = sim();
    let (good, _) = connection(&sim, "good.json");
    let env = sim.env();
    // Every secret of the emulator lives two years: with --warn-days 800 it "expires soon".
    let r = fleet(
        &sim,
        &[&good],
        &["--format", "nagios", "--warn-days", "800"],
        &env,
    )
    .code_is(1);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    assert!(
        r.stdout.starts_with("MARKETO-S2S WARNING - "),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("secret expires in"), "{}", r.stdout);
    assert!(
        r.stdout.contains("| ok=0 warning=1 critical=0"),
        "{}",
        r.stdout
    );

    let r = fleet(&sim, &[&good], &["--format", "nagios"], &env).ok();
    assert!(
        r.stdout.starts_with("MARKETO-S2S OK - 1 of 1"),
        "{}",
        r.stdout
    );

    let missing = sim.path("missing.json");
    let r = fleet(&sim, &[&good, &missing], &["--format", "nagios"], &env).code_is(3);
    assert!(
        r.stdout
            .starts_with("MARKETO-S2S UNKNOWN - missing.json unknown: cannot check"),
        "{}",
        r.stdout
    );

    let broken = broken_copy(&sim, &read(&good), "broken.json");
    let r = fleet(
        &sim,
        &[&good, &broken, &missing],
        &["--format", "nagios"],
        &env,
    )
    .code_is(2);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    // The wrong secret fails the live sign-in (and the file check, which compares it with the
    // recorded one).
    assert!(
        r.stdout
            .starts_with("MARKETO-S2S CRITICAL - broken.json crit: ")
            && r.stdout.contains("live-login (fix: "),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("| ok=1 warning=0 critical=1 unknown=1"),
        "{}",
        r.stdout
    );
}

/// A metric sample: its name, its labels in order, its value.
type Sample = (String, Vec<(String, String)>, f64);

/// One sample line of the text exposition format: `name{label="value",...} number`.
fn parse_sample(line: &str) -> Option<Sample> {
    let (name, rest) = line.split_at(line.find('{')?);
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return None;
    }
    let close = rest.rfind('}')?;
    let (body, value) = (&rest[1..close], rest[close + 1..].strip_prefix(' ')?);
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next()? != '"' {
            return None;
        }
        let mut v = String::new();
        loop {
            match chars.next()? {
                '\\' => v.push(match chars.next()? {
                    'n' => '\n',
                    c => c,
                }),
                '"' => break,
                c => v.push(c),
            }
        }
        labels.push((key, v));
        match chars.next() {
            Some(',') | None => {}
            Some(_) => return None,
        }
    }
    Some((name.to_string(), labels, value.parse().ok()?))
}

#[test]
fn prometheus_writes_a_parseable_textfile_with_one_gauge_per_connection() {
    let sim = sim();
    // A torn-down connection is reported as removed, with no check sent.
    let (gone, _) = connection(&sim, "gone.json");
    sim.run(
        "teardown",
        &["--state", gone.to_str().unwrap(), "--yes"],
        &Value::Null,
    )
    .ok();
    let (good, doc) = connection(&sim, "good.json");
    let broken = broken_copy(&sim, &doc, "broken.json");
    let r = fleet(
        &sim,
        &[&good, &broken, &gone],
        &["--format", "prometheus"],
        &sim.env(),
    )
    .ok();
    let mut samples = Vec::new();
    let mut typed = Vec::new();
    for line in r.stdout.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            assert!(rest.ends_with(" gauge"), "{line}");
            typed.push(rest.trim_end_matches(" gauge").to_string());
        } else if line.starts_with("# HELP ") {
        } else {
            let s = parse_sample(line).unwrap_or_else(|| panic!("not a sample: {line:?}"));
            assert!(typed.contains(&s.0), "{} has no TYPE line", s.0);
            samples.push(s);
        }
    }
    let value = |name: &str, file: &Path| {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && l.iter()
                        .any(|(k, v)| k == "file" && v == file.to_str().unwrap())
            })
            .map(|s| s.2)
    };
    assert_eq!(value("marketo_s2s_connection_status", &good), Some(0.0));
    assert_eq!(value("marketo_s2s_connection_status", &broken), Some(2.0));
    assert_eq!(value("marketo_s2s_connection_status", &gone), None);
    assert_eq!(value("marketo_s2s_connection_removed", &gone), Some(1.0));
    let failing = value("marketo_s2s_connection_failing_checks", &broken).unwrap();
    assert!(failing >= 1.0, "{failing}");
    let expiry = value("marketo_s2s_secret_expiry_timestamp_seconds", &good).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    assert!(expiry > now + 700.0 * 86400.0, "{expiry}");
    let labels = &samples
        .iter()
        .find(|s| s.0 == "marketo_s2s_connection_status")
        .unwrap()
        .1;
    let keys: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["file", "tenant", "org", "client_id"]);
}

#[test]
fn quiet_when_all_pass_and_q_still_names_the_files_that_need_attention() {
    let sim = sim();
    let (good, _) = connection(&sim, "good.json");
    let env = sim.env();
    let r = fleet(&sim, &[&good], &[], &env).ok();
    assert_eq!(r.stderr, "", "cron mails any output");
    assert_eq!(rows(&r).len(), 1);
    let broken = broken_copy(&sim, &read(&good), "broken.json");
    let r = fleet(&sim, &[&good, &broken], &["-q"], &env).code_is(6);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert!(
        lines[0].starts_with("verify-sync: warning: broken.json: crit ")
            && lines[0].contains("live-login (fix: "),
        "{}",
        r.stderr
    );
    // --format table: the table on stdout.
    let r = fleet(&sim, &[&good, &broken], &["--format", "table"], &env).code_is(6);
    assert!(r.stdout.starts_with("FILE "), "{}", r.stdout);
    assert!(
        r.stdout.contains("good.json") && r.stdout.contains("CRIT"),
        "{}",
        r.stdout
    );
}

/// A secret that has expired — also within its last day, where whole days round to 0 — fails
/// as expired and makes the connection `crit`, never "expires in 0 day(s)" and `warn`, also
/// when its live sign-in is skipped because a vault keeps the secret.
#[test]
fn a_secret_that_expired_within_its_last_day_is_crit() {
    use time::format_description::well_known::Rfc3339;
    let sim = sim();
    let (file, doc) = connection(&sim, "vault.json");
    let state = file.to_str().unwrap();
    sim.run(
        "make-secret",
        &["--state", state, "--forget-file"],
        &Value::Null,
    )
    .ok();
    // The credential in use: one that ended an hour ago (made as an admin would in the portal).
    let now = time::OffsetDateTime::now_utc();
    let at = |d: time::Duration| (now + d).format(&Rfc3339).unwrap();
    let added = sim.graph_expect(
        200,
        "POST",
        &format!(
            "applications/{}/addPassword",
            doc["app"]["object_id"].as_str().unwrap()
        ),
        Some(json!({"passwordCredential": {
            "displayName": "expired",
            "startDateTime": at(-time::Duration::days(2)),
            "endDateTime": at(-time::Duration::hours(1)),
        }})),
    );
    let mut vault = read(&file);
    vault["secret"]["key_id"] = added["keyId"].clone();
    vault["secret"]["expires_at"] = added["endDateTime"].clone();
    std::fs::write(&file, vault.to_string()).unwrap();

    let r = sim.run(
        "verify-sync",
        &["--settle", "0", "--state", state],
        &Value::Null,
    );
    assert_eq!(r.code, 6, "{}", r.stderr);
    let doc = read(&file);
    let secret = doc["verify"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "secret")
        .cloned()
        .unwrap();
    assert_eq!(secret["status"], "fail", "{secret}");
    assert!(
        secret["detail"].as_str().unwrap().contains("expired on"),
        "{secret}"
    );
    let r = fleet(&sim, &[&file], &[], &sim.env());
    let row = &rows(&r)[0];
    assert_eq!(row["status"], "crit", "{row}");
}
