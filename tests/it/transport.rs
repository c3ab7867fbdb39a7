//! What leaves the machine: no redirect is ever followed — a token endpoint, a managed-identity
//! endpoint or an API that answers 3xx gets nothing re-sent to the host it names —, an
//! `IDENTITY_HEADER` that cannot be a header is bad input at once; HTTPS with `--ca-file` (an
//! unknown certificate refused, a file with no certificate bad input before any request) and
//! the CA bundle variables Azure tooling users already set, honoured after `--ca-file`; an
//! answer is read only up to a cap, so an endless one cannot fill memory.
//!
//! The redirecting endpoints are loopback fakes (one connection, one canned answer each), and the
//! redirect target is a second loopback listener that records every byte that reaches it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tenant_sim::Options;

use crate::common::*;

/// A listener on its own thread that records each request it gets and answers `answer`.
struct Fake {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn start(ip: &str, answer: impl Fn(&str) -> String + Send + 'static) -> Fake {
        let listener = TcpListener::bind((ip, 0))
            .or_else(|_| TcpListener::bind(("127.0.0.1", 0)))
            .expect("bind a loopback port");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { return };
                let req = read_request(&mut s);
                log.lock().unwrap().push(req.clone());
                let _ = s.write_all(answer(&req).as_bytes());
            }
        });
        Fake { addr, seen }
    }

    /// The redirect target: answers 400, so a client that follows gets an answer (not a hang).
    fn target() -> Fake {
        Fake::start("127.0.0.2", |_| {
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
        })
    }

    /// Answers every request with `status` and a `Location` on `to`.
    fn redirecting(status: u16, to: &Fake) -> Fake {
        let location = format!("http://{}/stolen", to.addr);
        Fake::start("127.0.0.1", move |_| {
            format!(
                "HTTP/1.1 {status} Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        // A follow-up would come right after the redirect; give it time to arrive.
        std::thread::sleep(Duration::from_millis(300));
        self.seen.lock().unwrap().clone()
    }
}

/// The request head and its body (by Content-Length), as text.
fn read_request(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= len {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// register-app with only the given environment (on top of the scrubbed one), `< /dev/null`.
fn register(sim: &Sim, env: &[(&str, String)], args: &[&str]) -> Run {
    let mut c = bare_cmd("register-app", sim.dir());
    c.env("AZURE_TENANT_ID", sim.server.tenant_id())
        .env("MKTO_S2S_TIMEOUT", "60s")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .arg("-vv")
        .args(args)
        .write_stdin("");
    Run::from_output(c.output().expect("run register-app"))
}

#[test]
fn a_redirecting_token_endpoint_gets_no_secret_or_assertion_past_the_redirect() {
    let sim = sim();
    let token_file = sim.path("federated.jwt");
    std::fs::write(
        &token_file,
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.federated-assertion",
    )
    .unwrap();
    for status in [307, 308, 302] {
        for (what, proof) in [
            (
                "client secret",
                ("AZURE_CLIENT_SECRET", "redirected-secret-value".to_string()),
            ),
            (
                "federated assertion",
                (
                    "AZURE_FEDERATED_TOKEN_FILE",
                    token_file.display().to_string(),
                ),
            ),
        ] {
            let target = Fake::target();
            let login = Fake::redirecting(status, &target);
            let started = std::time::Instant::now();
            let r = register(
                &sim,
                &[
                    ("AZURE_CLIENT_ID", sim.server.admin_client_id()),
                    proof.clone(),
                    ("AZURE_AUTHORITY_HOST", login.url()),
                    ("MKTO_S2S_GRAPH_URL", sim.url()),
                ],
                &[],
            );
            assert_eq!(r.code, 3, "{what} {status}: {}", r.stderr);
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "a redirect is not retried"
            );
            let reached = target.requests();
            assert!(
                reached.is_empty(),
                "{what} {status}: the redirect was followed:\n{reached:#?}"
            );
            // One request, no retry; the error names the status and where it pointed.
            assert_eq!(login.requests().len(), 1, "{what} {status}");
            r.assert_stderr(&format!("answered {status}"))
                .assert_stderr(&format!("to {}", target.addr))
                .assert_stderr("follow no redirect");
            assert!(!r.all_output().contains("redirected-secret-value"));
            assert!(!r.all_output().contains("federated-assertion"));
        }
    }
    sim.assert_no_requests();
}

#[test]
fn a_redirecting_managed_identity_endpoint_gets_no_identity_header_past_the_redirect() {
    let sim = sim_with(Options {
        managed_identity: true,
        ..Default::default()
    });
    let target = Fake::target();
    let msi = Fake::redirecting(307, &target);
    let r = register(
        &sim,
        &[
            ("IDENTITY_ENDPOINT", format!("{}/msi/token", msi.url())),
            ("IDENTITY_HEADER", "identity-header-secret".into()),
            ("AZURE_AUTHORITY_HOST", sim.url()),
            ("MKTO_S2S_GRAPH_URL", sim.url()),
        ],
        &["--auth", "managed-identity"],
    )
    .code_is(3);
    let reached = target.requests();
    assert!(
        reached.is_empty(),
        "the redirect was followed:\n{reached:#?}"
    );
    let sent = msi.requests();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(sent[0].contains("identity-header-secret"), "{sent:#?}");
    r.assert_stderr("answered 307")
        .assert_stderr(&format!("to {}", target.addr));
    assert!(!r.all_output().contains("identity-header-secret"));
}

/// A stand-in `az` in the emulator's `bin` folder that hands out a fixed token (the emulator
/// signs in only for its own URLs, and these tests point Graph elsewhere); returns the folder.
fn az_stand_in(sim: &Sim) -> std::path::PathBuf {
    let bin = sim.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let az = bin.join("az");
    std::fs::write(
        &az,
        "#!/bin/sh\necho '{\"accessToken\": \"az-token-value\"}'\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", az.to_str().unwrap()])
        .status()
        .unwrap();
    bin
}

#[test]
fn a_redirecting_api_gets_no_token_past_the_redirect() {
    let sim = sim();
    let target = Fake::target();
    let graph = Fake::redirecting(307, &target);
    // The token comes from a stand-in `az` (the emulator signs in only for its own URLs).
    let bin = az_stand_in(&sim);
    let r = register(
        &sim,
        &[
            ("PATH", format!("{}:/usr/bin:/bin", bin.display())),
            ("MKTO_S2S_GRAPH_URL", graph.url()),
        ],
        &["--auth", "az"],
    )
    .code_is(4);
    let reached = target.requests();
    assert!(
        reached.is_empty(),
        "the redirect was followed:\n{reached:#?}"
    );
    let sent = graph.requests();
    assert_eq!(sent.len(), 1, "no retry: {sent:#?}");
    assert!(sent[0].contains("Bearer az-token-value"), "{}", sent[0]);
    r.assert_stderr("answered 307")
        .assert_stderr(&format!("to {}", target.addr));
}

#[test]
fn an_endless_answer_is_cut_off_at_the_cap_with_exit_1_and_not_retried() {
    let sim = sim();
    // A "Graph" that answers every request with a 200 whose body never ends (up to 256 MiB, so
    // the test ends even if the client read it all), counting what the client took.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let graph = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(0usize));
    let written = Arc::new(Mutex::new(0usize));
    {
        let (requests, written) = (requests.clone(), written.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { return };
                read_request(&mut s);
                *requests.lock().unwrap() += 1;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"value\":[\"";
                if s.write_all(head.as_bytes()).is_err() {
                    continue;
                }
                let chunk = vec![b'a'; 64 * 1024];
                for _ in 0..4096 {
                    if s.write_all(&chunk).is_err() {
                        break;
                    }
                    *written.lock().unwrap() += chunk.len();
                }
            }
        });
    }
    let bin = az_stand_in(&sim);
    let r = register(
        &sim,
        &[
            ("PATH", format!("{}:/usr/bin:/bin", bin.display())),
            ("MKTO_S2S_GRAPH_URL", graph),
        ],
        &["--auth", "az"],
    )
    .code_is(1);
    r.assert_stderr("larger than 16 MiB");
    assert_eq!(*requests.lock().unwrap(), 1, "not retried");
    let took = *written.lock().unwrap();
    assert!(
        took < 64 * 1024 * 1024,
        "the client read {took} bytes of an endless answer"
    );
}

#[test]
fn an_identity_header_with_a_line_break_is_exit_2_at_once_naming_the_variable() {
    let sim = sim_with(Options {
        managed_identity: true,
        ..Default::default()
    });
    let msi = Fake::target();
    for header in ["abc\r\nX-Injected: 1", "abc\n", "abc\rdef"] {
        let started = std::time::Instant::now();
        let r = register(
            &sim,
            &[
                ("IDENTITY_ENDPOINT", format!("{}/msi/token", msi.url())),
                ("IDENTITY_HEADER", header.into()),
                ("AZURE_AUTHORITY_HOST", sim.url()),
                ("MKTO_S2S_GRAPH_URL", sim.url()),
            ],
            &[],
        )
        .code_is(2);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
        r.assert_stderr("IDENTITY_HEADER");
    }
    assert!(msi.requests().is_empty());
    sim.assert_no_requests();
}

/// `REQUESTS_CA_BUNDLE` (the Azure CLI's, through Python requests) and `SSL_CERT_FILE`
/// (OpenSSL's) are trusted like `--ca-file`, which takes precedence over both.
#[test]
fn the_ca_bundle_variables_of_azure_tooling_are_honoured_after_ca_file() {
    let sim = sim_with(Options {
        tls: true,
        ..Default::default()
    });
    let ca = sim.server.ca_file().expect("ca file").display().to_string();
    let env_for = |extra: &[(&'static str, String)]| {
        let mut env: Vec<(&'static str, String)> = vec![
            ("AZURE_CLIENT_ID", sim.server.admin_client_id()),
            ("AZURE_CLIENT_SECRET", sim.server.admin_client_secret()),
            ("AZURE_AUTHORITY_HOST", sim.url()),
            ("MKTO_S2S_GRAPH_URL", sim.url()),
        ];
        env.extend(extra.iter().cloned());
        env
    };
    // Nothing trusted: the emulator's certificate is refused (exit 3).
    register(&sim, &env_for(&[]), &[]).code_is(3);
    // Each run a connection of its own (a run from nothing never uses another's app).
    for var in ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"] {
        let r = register(&sim, &env_for(&[(var, ca.clone())]), &["--name", var]);
        assert_eq!(r.code, 0, "{var}: {}", r.stderr);
    }
    // A bundle variable that names no file is exit 2 naming it, with nothing sent.
    sim.clear();
    register(
        &sim,
        &env_for(&[("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem".into())]),
        &[],
    )
    .code_is(2)
    .assert_stderr("REQUESTS_CA_BUNDLE");
    sim.assert_no_requests();
    // --ca-file wins over a broken bundle variable.
    let r = register(
        &sim,
        &env_for(&[("SSL_CERT_FILE", "/nonexistent/bundle.pem".into())]),
        &["--ca-file", &ca, "--name", "CA File"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn tools_work_over_https_with_ca_file_and_refuse_an_unknown_certificate() {
    let sim = sim_with(Options {
        tls: true,
        ..Default::default()
    });
    let ca = sim.server.ca_file().expect("ca file");
    assert!(sim.url().starts_with("https://"));
    let r = sim.run("register-app", &[], &Value::Null).code_is(3);
    r.assert_stderr("certificate");
    r.assert_stderr("--ca-file");
    let secret = sim.path("marketo.secret");
    let mut doc = Value::Null;
    for (tool, args) in chain_steps(secret.to_str().unwrap()) {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend(["--ca-file", ca.to_str().unwrap()]);
        let r = sim.run(tool, &a, &doc);
        assert_eq!(r.code, 0, "{tool} over https:\n{}", r.stderr);
        doc = r.doc;
    }
    sim.run("verify-sync", &["--ca-file", ca.to_str().unwrap()], &doc)
        .ok();
}

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
