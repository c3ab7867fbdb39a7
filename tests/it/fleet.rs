//! `verify-sync --fleet`: many customers' state files, each its own tenant and org,
//! checked concurrently; one JSON object per file, a table on stderr, exit 6 when any fails.

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

/// What login.microsoftonline.com and graph.microsoft.com are for the tools: one host for every
/// tenant. Each emulator is one tenant, so this router sends a token request to the emulator of
/// the tenant in its path and a Graph call to the emulator whose tenant issued its bearer token
/// (the `tid` claim). One request per connection (`Connection: close`), which reqwest handles.
struct TenantRouter {
    url: String,
}

impl TenantRouter {
    fn start(sims: &[Sim]) -> TenantRouter {
        use std::io::{Read, Write};
        let routes: Vec<(String, String)> = sims
            .iter()
            .map(|s| {
                let addr = s.url().trim_start_matches("http://").to_string();
                (s.server.tenant_id(), addr)
            })
            .collect();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let own_url = url.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut client) = conn else { return };
                let routes = routes.clone();
                let own_url = own_url.clone();
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        let Ok(n) = client.read(&mut chunk) else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let Ok(n) = client.read(&mut chunk) else {
                            return;
                        };
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let tid = head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        if !k.eq_ignore_ascii_case("authorization") {
                            return None;
                        }
                        let token = v.trim().strip_prefix("Bearer ")?;
                        let claims = token.split('.').nth(1)?;
                        use base64::Engine;
                        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .decode(claims.trim_end_matches('='))
                            .ok()?;
                        let v: Value = serde_json::from_slice(&bytes).ok()?;
                        v["tid"].as_str().map(str::to_string)
                    });
                    let target = routes.iter().find(|(t, _)| {
                        path.starts_with(&format!("/{t}/")) || tid.as_deref() == Some(t)
                    });
                    let Some((_, addr)) = target else { return };
                    // Graph's scope is the same for every tenant (`https://graph.microsoft.com/
                    // .default`); each emulator knows its own URL as Graph's, so a token
                    // request's scope is made that emulator's.
                    let mut body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
                    if path.contains("/oauth2/") {
                        let enc = |u: &str| u.replace(':', "%3A").replace('/', "%2F");
                        let sim_url = format!("http://{addr}");
                        body = body
                            .replace(&enc(&own_url), &enc(&sim_url))
                            .replace(&own_url, &sim_url);
                    }
                    let length = format!("Content-Length: {}", body.len());
                    let mut head_lines: Vec<&str> = head
                        .trim_end()
                        .lines()
                        .filter(|l| {
                            let l = l.to_ascii_lowercase();
                            !l.starts_with("connection:") && !l.starts_with("content-length:")
                        })
                        .collect();
                    head_lines.push("Connection: close");
                    head_lines.push(&length);
                    let mut out = head_lines.join("\r\n").into_bytes();
                    out.extend_from_slice(b"\r\n\r\n");
                    out.extend_from_slice(body.as_bytes());
                    let Ok(mut upstream) = std::net::TcpStream::connect(addr) else {
                        return;
                    };
                    if upstream.write_all(&out).is_err() {
                        return;
                    }
                    let mut answer = Vec::new();
                    let _ = upstream.read_to_end(&mut answer);
                    let _ = client.write_all(&answer);
                });
            }
        });
        TenantRouter { url }
    }
}

/// The JSON rows of a fleet run (written as each connection finishes, so in any order), in the
/// order of `files`; panics when a file has no row or two.
fn rows_in_order(stdout: &str, files: &[String]) -> Vec<Value> {
    let rows: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), files.len(), "{stdout}");
    files
        .iter()
        .map(|f| {
            let mine: Vec<&Value> = rows.iter().filter(|r| r["file"] == f.as_str()).collect();
            assert_eq!(mine.len(), 1, "{f}: {stdout}");
            mine[0].clone()
        })
        .collect()
}

/// Three customers: three tenants that consented to one multi-tenant admin app.
fn customers() -> Vec<Sim> {
    let admin = (
        uuid::Uuid::new_v4().to_string(),
        "shared-admin-secret-for-the-fleet-test".to_string(),
    );
    (0..3)
        .map(|_| {
            sim_with(Options {
                shared_admin: Some(admin.clone()),
                ..Default::default()
            })
        })
        .collect()
}

#[test]
fn three_customers_one_broken_are_reported_one_line_each_and_exit_6() {
    let sims = customers();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, sim) in sims.iter().enumerate() {
        let doc = sim.setup_chain(&[]);
        let file = dir.path().join(format!("customer-{i}.json"));
        std::fs::write(&file, doc.to_string()).unwrap();
        files.push((file, doc));
    }
    // Customer 1's application user loses its role.
    let (_, broken) = &files[1];
    let user = broken["dynamics"]["application_user_id"].as_str().unwrap();
    let role = broken["dynamics"]["roles"][0]["id"].as_str().unwrap();
    sims[1].dataverse_expect(
        204,
        "DELETE",
        &format!(
            "systemusers({user})/systemuserroles_association/$ref?$id={}/api/data/v9.2/roles({role})",
            sims[1].server.dynamics_url()
        ),
        None,
    );
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|(f, _)| std::fs::read(f).unwrap())
        .collect();
    for s in &sims {
        s.clear();
    }

    // Another customer's variables in the environment do not matter: each file names its own.
    let router = TenantRouter::start(&sims);
    let mut c = sims[0].cmd("verify-sync");
    c.env("AZURE_AUTHORITY_HOST", &router.url)
        .env("MKTO_S2S_GRAPH_URL", &router.url)
        .arg("--fleet");
    for (f, _) in &files {
        c.arg(f);
    }
    c.args(["--jobs", "2"]);
    let r = Run::from_output(c.output().unwrap()).code_is(6);
    let lines = rows_in_order(
        &r.stdout,
        &files
            .iter()
            .map(|(f, _)| f.display().to_string())
            .collect::<Vec<_>>(),
    );
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["file"], json!(files[i].0.display().to_string()));
        assert_eq!(line["tenant"], json!(sims[i].server.tenant_id()));
        assert_eq!(line["client_id"], files[i].1["app"]["client_id"]);
        assert!(line["secret_days_left"].as_i64().unwrap() > 700, "{line}");
    }
    assert_eq!(lines[0]["ok"], json!(true), "{}", r.stderr);
    assert_eq!(lines[2]["ok"], json!(true), "{}", r.stderr);
    assert_eq!(lines[1]["ok"], json!(false));
    // Monitoring fields: a status, when, and the org, for every row.
    assert_eq!(lines[0]["status"], "ok");
    assert_eq!(lines[1]["status"], "crit");
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line["checked_at"].as_str().unwrap().ends_with('Z'),
            "{line}"
        );
        assert_eq!(
            line["org"],
            json!(sims[i].server.dynamics_url().trim_end_matches('/'))
        );
    }
    let failing = lines[1]["failing"].as_array().unwrap();
    assert_eq!(failing.len(), 1, "{failing:?}");
    assert_eq!(failing[0]["id"], "sync-role");
    assert!(failing[0]["fix"].as_str().unwrap().contains("assign-role"));
    r.assert_stderr("customer-1.json").assert_stderr("CRIT");
    r.assert_stderr("1 of 3 connection(s) need attention");
    // Read-only: no write anywhere, no file rewritten.
    for s in &sims {
        s.assert_no_writes();
    }
    for (i, (f, _)) in files.iter().enumerate() {
        assert_eq!(std::fs::read(f).unwrap(), before[i]);
    }
}

#[test]
fn an_unreadable_file_is_a_failing_line_not_a_crash() {
    let sims = customers();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, sims[0].setup_chain(&[]).to_string()).unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"app\": ").unwrap();
    let missing = dir.path().join("missing.json");
    let mut c = sims[0].cmd("verify-sync");
    c.arg("--fleet").args([&good, &bad, &missing]);
    let r = Run::from_output(c.output().unwrap()).code_is(6);
    let lines = rows_in_order(
        &r.stdout,
        &[&good, &bad, &missing].map(|p| p.display().to_string()),
    );
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["ok"], json!(true), "{}", r.stderr);
    assert_eq!(lines[1]["status"], "unknown");
    assert_eq!(lines[1]["error"]["exit_code"], 2);
    assert!(
        lines[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    assert_eq!(lines[2]["ok"], json!(false));
}

/// A FIFO, a pipe (`/dev/stdin`) or a device given as a state file is refused at once as "not a
/// regular file", without blocking the other files (nor hanging the run past --timeout);
/// a 0-byte file says the state file is empty (not "the previous step produced no document");
/// and two files with one name in different folders are told apart in the table.
#[test]
fn a_fifo_a_pipe_or_an_empty_file_is_a_line_of_its_own_and_same_names_are_told_apart() {
    let sim = sim();
    let doc = sim.setup_chain(&[]).to_string();
    for sub in ["a", "b"] {
        std::fs::create_dir(sim.path(sub)).unwrap();
        std::fs::write(sim.path(sub).join("st.json"), &doc).unwrap();
    }
    let fifo = sim.path("f.json");
    mkfifo(&fifo);
    std::fs::write(sim.path("empty.json"), "").unwrap();
    sim.clear();

    // stdin is a pipe whose writer stays open (as `sleep 30 | verify-sync ... /dev/stdin`); the
    // run is bounded by `timeout` so a regression fails instead of hanging the suite.
    let mut writer = std::process::Command::new("sleep")
        .arg("30")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = writer.stdout.take().unwrap();
    let tool = sim.null_stdin_cmd("verify-sync");
    let mut c = std::process::Command::new("timeout");
    c.env_clear()
        .envs(tool.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(sim.dir())
        .stdin(pipe)
        .arg("25")
        .arg(tool.get_program())
        .args([
            "--fleet",
            "a/st.json",
            "b/st.json",
            "f.json",
            "/dev/stdin",
            "empty.json",
            "/dev/null",
            "--timeout",
            "5s",
        ]);
    let t0 = std::time::Instant::now();
    let r = Run::from_output(c.output().unwrap());
    let _ = writer.kill();
    let _ = writer.wait();
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}\n{}",
        t0.elapsed(),
        r.stderr
    );
    let r = r.code_is(6);
    let order = [
        "a/st.json",
        "b/st.json",
        "f.json",
        "/dev/stdin",
        "empty.json",
        "/dev/null",
    ]
    .map(String::from);
    let lines = rows_in_order(&r.stdout, &order);
    assert_eq!(lines.len(), 6, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(lines[0]["ok"], json!(true), "{}", r.stderr);
    assert_eq!(lines[1]["ok"], json!(true), "{}", r.stderr);
    for (i, needle) in [
        (2, "a FIFO, not a regular file"),
        (3, "not a regular file"),
        (4, "the state file empty.json is empty"),
        (5, "a device, not a regular file"),
    ] {
        let l = &lines[i];
        assert_eq!(l["ok"], json!(false), "{l}");
        assert_eq!(l["error"]["exit_code"], 2, "{l}");
        let msg = l["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{i}: {msg}");
        assert!(!msg.contains("previous step"), "{msg}");
        assert!(
            !l["error"]["hint"]
                .as_str()
                .unwrap_or("")
                .contains("previous step"),
            "{l}"
        );
    }
    // The table tells the two st.json apart.
    let rows: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains(" ok ") || l.contains(" UNKNOWN "))
        .collect();
    assert!(rows.iter().any(|l| l.contains("a/st.json")), "{}", r.stderr);
    assert!(rows.iter().any(|l| l.contains("b/st.json")), "{}", r.stderr);
    r.assert_stderr("4 of 6 connection(s) need attention");
    sim.assert_no_writes();
}

/// The table's FILE column is the shortest trailing part of each path that no other file shares.
#[test]
fn the_table_names_each_file_by_its_shortest_distinguishing_path() {
    let sim = sim();
    let mut c = sim.cmd("verify-sync");
    c.args([
        "--fleet",
        "x/a/st.json",
        "y/a/st.json",
        "b/st.json",
        "c.json",
    ]);
    let r = Run::from_output(c.output().unwrap()).code_is(6);
    for shown in ["x/a/st.json", "y/a/st.json", "b/st.json", "c.json"] {
        assert!(
            r.stderr
                .lines()
                .any(|l| l.starts_with(&format!("verify-sync: {shown} "))),
            "{shown}:\n{}",
            r.stderr
        );
    }
    sim.assert_no_requests();
}
