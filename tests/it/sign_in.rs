//! Sign-in, every source of the credential chain against the emulator that checks it as Entra
//! does: a certificate, a workload identity federation token and a managed identity as pipelines
//! use them; a person's device-code sign-in on a terminal, then the token cache serving the next
//! tool (one prompt per sign-in, the cache rotated, 0600, never printed); the Azure CLI, stopped at
//! the deadline when it hangs; no credential at all off a terminal; an outlandish `expires_in`.
//! At `-vv`, nothing secret (key, assertion, identity header, token) on any output.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenant_sim::Options;

use crate::common::*;

/// A tool run with only the given sign-in variables (plus the emulator's URLs), at `-vv`.
fn signin_run(sim: &Sim, tool: &str, env: &[(&str, String)], args: &[&str]) -> Run {
    let mut c = bare_cmd(tool, sim.dir());
    c.env("AZURE_TENANT_ID", sim.server.tenant_id())
        .env("AZURE_AUTHORITY_HOST", sim.url())
        .env("MKTO_S2S_GRAPH_URL", sim.url())
        .env("MKTO_S2S_DYNAMICS_URL", sim.server.dynamics_url())
        .env("MKTO_S2S_TIMEOUT", "60s")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .arg("-vv")
        .args(args)
        .write_stdin("");
    Run::from_output(c.output().expect("run tool"))
}

/// No secret in anything the tool printed: the given values, any JWT-shaped text, a PEM key.
#[track_caller]
fn assert_nothing_secret(r: &Run, secrets: &[&str]) {
    let all = r.all_output();
    for s in secrets {
        assert!(
            !s.is_empty() && !all.contains(s),
            "a secret ({}...) was printed:\n{all}",
            &s[..s.len().min(12)]
        );
    }
    assert!(!all.contains("eyJ"), "a JWT was printed:\n{all}");
    assert!(!all.contains("PRIVATE KEY"), "a key was printed:\n{all}");
}

/// The base64 lines of the PEM's private key block: none may ever be printed.
fn key_lines(pem: &str) -> Vec<String> {
    pem.split("-----BEGIN PRIVATE KEY-----")
        .nth(1)
        .and_then(|k| k.split("-----END").next())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.len() > 20)
        .map(str::to_string)
        .collect()
}

fn token_posts(sim: &Sim) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/token"))
        .count()
}

#[track_caller]
fn assert_registered(sim: &Sim, r: &Run) {
    let id = client_id(&r.doc);
    assert!(
        sim.applications().iter().any(|a| a["appId"] == id.as_str()),
        "the app {id} is not in the tenant"
    );
}

#[test]
fn register_app_signs_in_with_only_a_certificate_file() {
    let sim = sim();
    let cert = sim.server.admin_certificate_file();
    let pem = std::fs::read_to_string(&cert).unwrap();
    let r = signin_run(
        &sim,
        "register-app",
        &[
            ("AZURE_CLIENT_ID", sim.server.admin_client_id()),
            ("AZURE_CLIENT_CERTIFICATE_PATH", cert.display().to_string()),
        ],
        &["--name", "Marketo Integration"],
    )
    .ok();
    assert_eq!(token_posts(&sim), 1, "{:#?}", sim.requests());
    assert_registered(&sim, &r);
    // The assertion went in the form, redacted in the trace.
    r.assert_stderr("client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    r.assert_stderr("client_assertion=(redacted)");
    let lines = key_lines(&pem);
    assert!(!lines.is_empty());
    assert_nothing_secret(&r, &lines.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn register_app_signs_in_with_only_a_federated_token_file() {
    let sim = sim();
    let file = sim.server.admin_federated_token_file();
    let assertion = std::fs::read_to_string(&file).unwrap();
    let r = signin_run(
        &sim,
        "register-app",
        &[
            ("AZURE_CLIENT_ID", sim.server.admin_client_id()),
            ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
        ],
        &["--name", "Marketo Integration"],
    )
    .ok();
    assert_eq!(token_posts(&sim), 1);
    assert_registered(&sim, &r);
    r.assert_stderr("client_assertion=(redacted)");
    assert_nothing_secret(&r, &[assertion.trim()]);
}

#[test]
fn the_federated_token_file_is_read_at_sign_in_so_a_rotated_token_is_used() {
    let sim = sim();
    let file = sim.path("federated-token");
    let env = [
        ("AZURE_CLIENT_ID", sim.server.admin_client_id()),
        ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
    ];
    // An expired token: refused by the token endpoint, with what to do.
    std::fs::write(&file, sim.server.federated_assertion(-600)).unwrap();
    let r = signin_run(&sim, "register-app", &env, &[]).code_is(3);
    r.assert_stderr("AADSTS700024");
    r.assert_stderr("re-run the job");
    // The platform rotates the file; the next sign-in reads the new token.
    std::fs::write(&file, sim.server.federated_assertion(600)).unwrap();
    signin_run(&sim, "register-app", &env, &[]).ok();
}

#[test]
fn managed_identity_through_identity_endpoint_joins_the_default_chain() {
    let sim = sim_with(Options {
        managed_identity: true,
        ..Default::default()
    });
    let header = sim.server.identity_header().unwrap();
    let r = signin_run(
        &sim,
        "register-app",
        &[
            ("IDENTITY_ENDPOINT", sim.server.identity_endpoint().unwrap()),
            ("IDENTITY_HEADER", header.clone()),
        ],
        &[],
    )
    .ok();
    let mi: Vec<Value> = sim
        .requests()
        .into_iter()
        .filter(|q| q["path"] == "/msi/token")
        .collect();
    assert_eq!(mi.len(), 1, "{:#?}", sim.requests());
    let query = mi[0]["query"].as_str().unwrap();
    assert!(query.contains("api-version=2019-08-01"), "{query}");
    assert!(query.contains("resource="), "{query}");
    assert_eq!(token_posts(&sim), 0);
    r.assert_stderr("X-IDENTITY-HEADER: (redacted)");
    assert_nothing_secret(&r, &[&header]);
    assert_registered(&sim, &r);
}

/// A proxy on loopback that records every connection and answers each request 400, so a
/// request sent through it fails at once.
fn recording_proxy() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            s.set_read_timeout(Some(Duration::from_secs(2))).ok();
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = s.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (url, seen)
}

#[test]
fn managed_identity_requests_never_go_through_a_proxy() {
    let sim = sim_with(Options {
        managed_identity: true,
        ..Default::default()
    });
    let header = sim.server.identity_header().unwrap();
    // The identity endpoint is named `localhost`, the services `127.0.0.1`, which NO_PROXY
    // exempts: only a managed-identity request could reach the proxy.
    let endpoint = sim
        .server
        .identity_endpoint()
        .unwrap()
        .replace("127.0.0.1", "localhost");
    assert!(endpoint.contains("localhost"), "{endpoint}");
    let (proxy, seen) = recording_proxy();
    for imds in [false, true] {
        let mut env = vec![
            ("HTTP_PROXY", proxy.clone()),
            ("http_proxy", proxy.clone()),
            ("NO_PROXY", "127.0.0.1".to_string()),
            ("no_proxy", "127.0.0.1".to_string()),
        ];
        if imds {
            env.push((
                "MKTO_S2S_IMDS_URL",
                sim.url().replace("127.0.0.1", "localhost"),
            ));
        } else {
            env.push(("IDENTITY_ENDPOINT", endpoint.clone()));
            env.push(("IDENTITY_HEADER", header.clone()));
        }
        // A second app for the second run (the first one's belongs to its own setup).
        let name = if imds {
            "Marketo IMDS"
        } else {
            "Marketo App Service"
        };
        let args = ["--auth", "managed-identity", "--name", name];
        let r = signin_run(&sim, "register-app", &env, &args).ok();
        assert_registered(&sim, &r);
        let through: Vec<String> = seen.lock().unwrap().clone();
        assert!(
            through.is_empty(),
            "imds {imds}: went through the proxy:\n{through:#?}"
        );
    }
}

#[test]
fn the_vm_metadata_endpoint_is_used_only_when_asked_for() {
    let sim = sim_with(Options {
        managed_identity: true,
        ..Default::default()
    });
    let imds = [("MKTO_S2S_IMDS_URL", sim.url())];
    // Unasked, the chain never tries the metadata endpoint: no credential, exit 3, no request.
    let r = signin_run(&sim, "register-app", &imds, &[]).code_is(3);
    r.assert_stderr("no credential");
    r.assert_stderr("--auth managed-identity");
    sim.assert_no_requests();

    let r = signin_run(&sim, "register-app", &imds, &["--auth", "managed-identity"]).ok();
    let mi: Vec<Value> = sim
        .requests()
        .into_iter()
        .filter(|q| q["path"] == "/metadata/identity/oauth2/token")
        .collect();
    assert_eq!(mi.len(), 1, "{:#?}", sim.requests());
    assert!(
        mi[0]["query"]
            .as_str()
            .unwrap()
            .contains("api-version=2018-02-01")
    );
    assert_eq!(token_posts(&sim), 0);
    r.assert_stderr("Metadata: true");
    assert_nothing_secret(&r, &[]);
    assert_registered(&sim, &r);
}

#[test]
fn the_metadata_url_override_is_for_loopback_only() {
    let sim = sim();
    for url in ["http://169.254.169.254", "https://imds.example.com"] {
        let r = signin_run(
            &sim,
            "register-app",
            &[("MKTO_S2S_IMDS_URL", url.to_string())],
            &["--auth", "managed-identity"],
        )
        .code_is(2);
        r.assert_stderr("MKTO_S2S_IMDS_URL");
    }
    sim.assert_no_requests();
}

#[test]
fn a_certificate_the_app_does_not_have_is_exit_3_naming_it() {
    let sim = sim();
    let other = tenant_sim::generate_client_certificate("not the admin").unwrap();
    let file = sim.path("other.pem");
    std::fs::write(&file, &other.pem).unwrap();
    let r = signin_run(
        &sim,
        "register-app",
        &[
            ("AZURE_CLIENT_ID", sim.server.admin_client_id()),
            ("AZURE_CLIENT_CERTIFICATE_PATH", file.display().to_string()),
        ],
        &[],
    )
    .code_is(3);
    r.assert_stderr("register-app: error: ");
    r.assert_stderr("AADSTS700027");
    r.assert_stderr(&other.x5t());
    r.assert_stderr("upload this certificate's public part to the app registration");
    let lines = key_lines(&other.pem);
    assert_nothing_secret(&r, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    sim.assert_no_writes();
}

#[test]
fn a_key_from_another_certificate_is_refused_before_any_request() {
    let sim = sim();
    let admin = std::fs::read_to_string(sim.server.admin_certificate_file()).unwrap();
    let other = tenant_sim::generate_client_certificate("other").unwrap();
    let cert_only = admin.split("-----BEGIN PRIVATE KEY-----").next().unwrap();
    let key_only = &other.pem[other.pem.find("-----BEGIN PRIVATE KEY-----").unwrap()..];
    let file = sim.path("mixed.pem");
    std::fs::write(&file, format!("{cert_only}{key_only}")).unwrap();
    let r = signin_run(
        &sim,
        "register-app",
        &[
            ("AZURE_CLIENT_ID", sim.server.admin_client_id()),
            ("AZURE_CLIENT_CERTIFICATE_PATH", file.display().to_string()),
        ],
        &[],
    )
    .code_is(3);
    r.assert_stderr("does not belong to the certificate");
    sim.assert_no_requests();
}

/// Replaces one claim of a JWT without re-signing it.
fn tampered(jwt: &str, claim: &str, value: Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.trim().split('.').collect();
    let mut claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims[claim] = value;
    format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(claims.to_string()),
        parts[2]
    )
}

#[test]
fn a_tampered_federated_assertion_is_exit_3_with_what_to_check() {
    let sim = sim();
    let genuine = sim.server.federated_assertion(600);
    let file = sim.path("token");
    let env = [
        ("AZURE_CLIENT_ID", sim.server.admin_client_id()),
        ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
    ];
    // Same issuer, subject and audience, a claim changed: the signature no longer verifies.
    let forged = tampered(&genuine, "exp", serde_json::json!(4_102_444_800u64));
    std::fs::write(&file, &forged).unwrap();
    let r = signin_run(&sim, "register-app", &env, &[]).code_is(3);
    r.assert_stderr("AADSTS700027");
    assert_nothing_secret(&r, &[&forged]);

    // Another subject: no federated credential of the app matches it.
    let other = tampered(
        &genuine,
        "sub",
        serde_json::json!("repo:mallory/fork:ref:refs/heads/x"),
    );
    std::fs::write(&file, &other).unwrap();
    let r = signin_run(&sim, "register-app", &env, &[]).code_is(3);
    r.assert_stderr("AADSTS70021");
    r.assert_stderr("federated credential");
    assert_nothing_secret(&r, &[&other]);
    sim.assert_no_writes();
}

#[test]
fn azure_client_id_alone_is_an_error_that_names_the_three_variables() {
    let sim = sim();
    let r = signin_run(
        &sim,
        "register-app",
        &[("AZURE_CLIENT_ID", sim.server.admin_client_id())],
        &[],
    )
    .code_is(3);
    for v in [
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_FEDERATED_TOKEN_FILE",
    ] {
        r.assert_stderr(v);
    }
    sim.assert_no_requests();
}

#[test]
fn explicit_sources_say_which_variable_is_missing() {
    let sim = sim();
    let id = [("AZURE_CLIENT_ID", sim.server.admin_client_id())];
    for (auth, needle) in [
        ("certificate", "AZURE_CLIENT_CERTIFICATE_PATH is not set"),
        ("workload-identity", "AZURE_FEDERATED_TOKEN_FILE is not set"),
    ] {
        let r = signin_run(&sim, "register-app", &id, &["--auth", auth]).code_is(3);
        r.assert_stderr(needle);
    }
    sim.assert_no_requests();
}

/// Posts a client-assertion token request for the admin straight to the emulator.
fn assertion_token(sim: &Sim, assertion: &str) -> (u16, Value) {
    let r = token::login(
        &sim.server,
        "token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &sim.server.admin_client_id()),
            ("client_assertion_type", s2s_core::assertion::JWT_BEARER),
            ("client_assertion", assertion),
            ("scope", &format!("{}/.default", sim.url())),
        ],
    );
    (r.status, r.json())
}

fn decode(part: &str) -> Value {
    use base64::Engine;
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&b).unwrap()
}

/// What the certificate credential sends, field by field, against the Microsoft identity
/// platform's "certificate credentials" page; and the emulator refusing each way it can be wrong.
#[test]
fn the_certificate_assertion_is_shaped_as_entra_expects_and_checked_claim_by_claim() {
    let sim = sim();
    let admin = sim.server.admin_client_id();
    let endpoint = format!("{}/{}/oauth2/v2.0/token", sim.url(), sim.server.tenant_id());
    let cert =
        s2s_core::assertion::ClientCertificate::load(&sim.server.admin_certificate_file()).unwrap();
    use secrecy::ExposeSecret;
    let jwt = cert.assertion(&admin, &endpoint).unwrap();
    let parts: Vec<&str> = jwt.expose_secret().split('.').collect();
    assert_eq!(parts.len(), 3);
    let (header, claims) = (decode(parts[0]), decode(parts[1]));
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["x5t"], cert.x5t().as_str());
    assert_eq!(claims["aud"], endpoint.as_str());
    assert_eq!(claims["iss"], admin.as_str());
    assert_eq!(claims["sub"], admin.as_str());
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
    let (nbf, exp) = (
        claims["nbf"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - nbf, 600);
    let (status, v) = assertion_token(&sim, jwt.expose_secret());
    assert_eq!(status, 200, "{v}");

    // Each wrong claim, signed properly with the trusted key: the emulator names the problem.
    let wrong_aud = cert
        .assertion(&admin, &format!("{}/common/oauth2/v2.0/token", sim.url()))
        .unwrap();
    let (status, v) = assertion_token(&sim, wrong_aud.expose_secret());
    assert_eq!(
        (status, v["error_codes"][0].as_u64()),
        (401, Some(700023)),
        "{v}"
    );
    let other_app = cert
        .assertion(&uuid::Uuid::new_v4().to_string(), &endpoint)
        .unwrap();
    let (status, v) = assertion_token(&sim, other_app.expose_secret());
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error_codes"][0].as_u64(), Some(70021), "{v}");
    // An unsigned token ("alg": "none") is never accepted.
    let none = format!(
        "{}.{}.",
        {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(br#"{"alg":"none","typ":"JWT"}"#)
        },
        parts[1]
    );
    let (status, v) = assertion_token(&sim, &none);
    assert_eq!(
        (status, v["error_codes"][0].as_u64()),
        (401, Some(700027)),
        "{v}"
    );
}

/// The emulator's managed-identity endpoints are as strict as Azure's: the secret header, the
/// `Metadata` header, an api-version, a known resource, an identity it has.
#[test]
fn the_managed_identity_endpoints_refuse_what_azure_refuses() {
    let sim = sim_with(Options {
        managed_identity: true,
        ..Default::default()
    });
    let resource = urlencode(&sim.url());
    let app_service = sim.server.identity_endpoint().unwrap();
    let header = sim.server.identity_header().unwrap();
    let get = |url: String, headers: &[(&str, &str)]| {
        let r = http::send("GET", &url, headers, None).expect("an answer");
        (r.status, r.json())
    };
    let ok = format!("{app_service}?api-version=2019-08-01&resource={resource}");
    let (s, v) = get(ok.clone(), &[("X-IDENTITY-HEADER", &header)]);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["client_id"], sim.server.admin_client_id().as_str());
    assert!(
        v["expires_on"].as_str().unwrap().parse::<u64>().is_ok(),
        "{v}"
    );
    assert_eq!(get(ok.clone(), &[("X-IDENTITY-HEADER", "guess")]).0, 401);
    assert_eq!(get(ok.clone(), &[]).0, 401);
    let no_version = format!("{app_service}?resource={resource}");
    assert_eq!(get(no_version, &[("X-IDENTITY-HEADER", &header)]).0, 400);
    let other = format!(
        "{app_service}?api-version=2019-08-01&resource={}",
        urlencode("https://vault.azure.net")
    );
    assert_eq!(get(other, &[("X-IDENTITY-HEADER", &header)]).0, 400);
    let stranger = format!("{ok}&client_id={}", uuid::Uuid::new_v4());
    let (s, v) = get(stranger, &[("X-IDENTITY-HEADER", &header)]);
    assert_eq!(
        (s, v["message"].as_str()),
        (400, Some("Identity not found")),
        "{v}"
    );

    let imds = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}",
        sim.url()
    );
    // how-to-use-vm-token, "HTTP response reference": no Metadata header is bad_request_102
    let (s, v) = get(imds.clone(), &[]);
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("bad_request_102")),
        "{v}"
    );
    let (s, v) = get(imds.clone(), &[("Metadata", "true")]);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["expires_in"], "3599");
    // Only the api-versions IMDS documents: none names the newest, another is refused too.
    for bad in ["", "&api-version=2099-01-01", "&api-version=latest"] {
        let url = format!(
            "{}/metadata/identity/oauth2/token?resource={resource}{bad}",
            sim.url()
        );
        let (s, v) = get(url, &[("Metadata", "true")]);
        assert_eq!(s, 400, "{bad}: {v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .starts_with("Bad request. api-version"),
            "{v}"
        );
        assert!(!v["newest-versions"].as_array().unwrap().is_empty(), "{v}");
    }
    let newer = imds.replace("2018-02-01", "2021-01-01");
    assert_eq!(get(newer, &[("Metadata", "true")]).0, 200);

    // Without the option there is no managed identity to ask.
    let plain = crate::common::sim();
    let (s, _) = get(
        format!(
            "{}/msi/token?api-version=2019-08-01&resource={resource}",
            plain.url()
        ),
        &[("X-IDENTITY-HEADER", &header)],
    );
    assert_eq!(s, 404);
}

#[test]
fn managed_identity_off_azure_fails_in_seconds_with_what_to_do() {
    let sim = sim();
    // A loopback port nobody listens on stands in for 169.254.169.254 off Azure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let started = std::time::Instant::now();
    let r = signin_run(
        &sim,
        "register-app",
        &[("MKTO_S2S_IMDS_URL", format!("http://{closed}"))],
        &["--auth", "managed-identity"],
    )
    .code_is(3);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    r.assert_stderr("after 3 attempt(s)");
    r.assert_stderr("--auth managed-identity works on Azure");
    sim.assert_no_requests();
}

/// Stops the `tenant-sim` process this test started, even when the test fails.
struct SimProcess(std::process::Child);

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `tenant-sim` binary's start-up line hands out a certificate file
/// and a federated token file (0600), register-app signs in with only one of them, and the
/// files are gone once the emulator stops.
#[test]
fn the_tenant_sim_start_up_line_gives_files_that_sign_register_app_in() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(bin("tenant-sim"))
        .args(["--port", "0", "--managed-identity"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut proc = SimProcess(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap().to_string();
    let cert = s("/admin/certificate_file");
    let token = s("/admin/federated_token_file");
    for f in [&cert, &token] {
        assert_eq!(
            s2s_core::fsutil::mode_of(std::path::Path::new(f)).unwrap(),
            0o600,
            "{f}"
        );
    }
    let base = [
        ("AZURE_TENANT_ID", s("/tenant_id")),
        ("AZURE_AUTHORITY_HOST", s("/url")),
        ("MKTO_S2S_GRAPH_URL", s("/url")),
        ("MKTO_S2S_TIMEOUT", "60s".to_string()),
    ];
    let admin = ("AZURE_CLIENT_ID", s("/admin/client_id"));
    let runs: [Vec<(&str, String)>; 3] = [
        vec![
            admin.clone(),
            ("AZURE_CLIENT_CERTIFICATE_PATH", cert.clone()),
        ],
        vec![admin, ("AZURE_FEDERATED_TOKEN_FILE", token.clone())],
        vec![
            (
                "IDENTITY_ENDPOINT",
                s("/managed_identity/identity_endpoint"),
            ),
            ("IDENTITY_HEADER", s("/managed_identity/identity_header")),
        ],
    ];
    let mut doc = String::new();
    for (i, creds) in runs.iter().enumerate() {
        let r = Run::from_output(
            bare_cmd("register-app", dir.path())
                .envs(base.iter().map(|(k, v)| (*k, v.as_str())))
                .envs(creds.iter().map(|(k, v)| (*k, v.as_str())))
                .write_stdin(doc.clone())
                .output()
                .unwrap(),
        )
        .ok();
        // The first run creates the app; the others find it from its document, signed in
        // another way.
        assert_eq!(r.changed("register-app"), i == 0, "{}", r.stderr);
        doc = r.stdout;
    }
    std::process::Command::new("kill")
        .args(["-TERM", &proc.0.id().to_string()])
        .status()
        .unwrap();
    assert!(proc.0.wait().unwrap().success());
    assert!(!std::path::Path::new(&cert).exists());
    assert!(!std::path::Path::new(&token).exists());
}

/// A certificate file whose key is not RSA names the key's kind with the right article ("an EC
/// PRIVATE KEY", not "a EC PRIVATE KEY"), before any request.
#[test]
fn a_key_that_is_not_rsa_is_named_with_the_right_article() {
    let sim = sim();
    let admin = std::fs::read_to_string(sim.server.admin_certificate_file()).unwrap();
    let cert_only = admin.split("-----BEGIN PRIVATE KEY-----").next().unwrap();
    for (label, said) in [
        ("EC PRIVATE KEY", "holds an EC PRIVATE KEY, not an RSA key"),
        ("DSA PRIVATE KEY", "holds a DSA PRIVATE KEY, not an RSA key"),
    ] {
        let file = sim.path("not-rsa.pem");
        std::fs::write(
            &file,
            format!("{cert_only}-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n"),
        )
        .unwrap();
        let r = signin_run(
            &sim,
            "register-app",
            &[
                ("AZURE_CLIENT_ID", sim.server.admin_client_id()),
                ("AZURE_CLIENT_CERTIFICATE_PATH", file.display().to_string()),
            ],
            &[],
        )
        .code_is(3);
        r.assert_stderr(said);
        sim.assert_no_requests();
    }
}

#[test]
fn device_code_on_a_terminal_then_the_cache_serves_the_next_tool() {
    let sim = sim();
    let cache = sim.path("cache/tokens.json");
    let state = sim.path("state.json");
    let env = [
        ("PATH", "/usr/bin:/bin".to_string()),
        ("HOME", sim.dir().display().to_string()),
        ("AZURE_TENANT_ID", sim.server.tenant_id()),
        ("AZURE_AUTHORITY_HOST", sim.url()),
        ("MKTO_S2S_GRAPH_URL", sim.url()),
        ("MKTO_S2S_TOKEN_CACHE", cache.display().to_string()),
        ("MKTO_S2S_TIMEOUT", "60s".to_string()),
    ];
    // script(1) gives the tool a pseudo-terminal, as an admin's shell would.
    let register = bin("register-app");
    let out = Command::new("script")
        .args([
            "-qec",
            &format!("{} --state {}", register.display(), state.display()),
            "/dev/null",
        ])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(sim.dir())
        .output()
        .expect("script(1)");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("enter the code"),
        "no device-code prompt on the terminal:\n{screen}"
    );
    assert!(!screen.contains("eyJ"), "a token reached the terminal");
    assert_eq!(s2s_core::fsutil::mode_of(&cache).unwrap(), 0o600);
    let logins: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r["service"] == "login")
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        logins.iter().any(|p| p.ends_with("/devicecode")),
        "{logins:?}"
    );

    // The next tool, not on a terminal, signs in from the cache without prompting.
    sim.clear();
    let r = Run::from_output(
        bare_cmd("grant-consent", sim.dir())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .args(["--state", state.to_str().unwrap()])
            .output()
            .unwrap(),
    )
    .ok();
    assert!(!r.stderr.contains("enter the code"), "{}", r.stderr);
    assert!(
        sim.requests()
            .iter()
            .all(|q| !q["path"].as_str().unwrap().ends_with("/devicecode"))
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(doc["consent"]["grant_id"].is_string());
}

#[test]
fn device_code_first_run_shows_one_prompt_and_reaches_both_graph_and_the_org() {
    let sim = sim();
    let state = finished_state(&sim);
    let cache = sim.path("cache/tokens.json");
    let env = [
        ("PATH", "/usr/bin:/bin".to_string()),
        ("HOME", sim.dir().display().to_string()),
        ("AZURE_TENANT_ID", sim.server.tenant_id()),
        ("AZURE_AUTHORITY_HOST", sim.url()),
        ("MKTO_S2S_GRAPH_URL", sim.url()),
        ("MKTO_S2S_TOKEN_CACHE", cache.display().to_string()),
        ("MKTO_S2S_TIMEOUT", "60s".to_string()),
        ("NO_COLOR", "1".to_string()),
        ("TERM", "xterm".to_string()),
    ];
    sim.clear();
    let verify = bin("verify-sync");
    let (ok, screen) = on_terminal(
        sim.dir(),
        &format!("{} --state {}", verify.display(), state.display()),
        &env,
    );
    assert!(ok, "the first run works:\n{screen}");
    assert_eq!(
        screen.matches("enter the code").count(),
        1,
        "one prompt per sign-in:\n{screen}"
    );
    let devicecodes = sim
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").ends_with("/devicecode"))
        .count();
    assert_eq!(devicecodes, 1);
    assert!(!screen.contains("0x80072561"), "{screen}");
    assert!(
        screen.contains("[ok  ] the org answers WhoAmI for the admin"),
        "{screen}"
    );
    assert!(screen.contains("signed in as "), "{screen}");
    // NO_COLOR on a terminal: not one escape byte (the spinner included).
    assert!(!screen.contains('\u{1b}'), "{screen:?}");
    assert!(!screen.contains("eyJ"), "a token reached the terminal");
}

#[test]
fn without_any_credential_off_a_terminal_it_says_how_to_sign_in() {
    let sim = sim();
    let r = Run::from_output(
        bare_cmd("register-app", sim.dir())
            .env("AZURE_TENANT_ID", sim.server.tenant_id())
            .env("AZURE_AUTHORITY_HOST", sim.url())
            .env("MKTO_S2S_GRAPH_URL", sim.url())
            .output()
            .unwrap(),
    )
    .code_is(3);
    assert!(
        r.stderr.contains("register-app: error: no credential"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("AZURE_CLIENT_SECRET") && r.stderr.contains("az login"),
        "{}",
        r.stderr
    );
    assert!(sim.requests().is_empty());
}

#[test]
fn the_token_cache_is_used_rotated_0600_and_never_printed() {
    let sim = sim();
    let cache = sim.path("tokens.json");
    let (refresh, key) = seed_token_cache(&sim, &cache);

    let mut c = sim.cmd("register-app");
    c.env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .env("MKTO_S2S_TOKEN_CACHE", &cache)
        .args(["--auth", "cache", "-vv"]);
    let r = Run::from_output(c.output().unwrap()).ok();
    assert!(r.doc["app"]["client_id"].is_string());
    let rotated: Value = serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    let new_refresh = rotated[&key]["refresh_token"].as_str().unwrap();
    assert_ne!(
        new_refresh, refresh,
        "the rotated refresh token was not saved"
    );
    let out = r.all_output();
    assert!(
        !out.contains(&refresh) && !out.contains(new_refresh),
        "a refresh token leaked"
    );
    assert!(!out.contains("eyJ"), "a token leaked");
    assert_eq!(s2s_core::fsutil::mode_of(&cache).unwrap(), 0o600);
}

#[test]
fn a_hanging_az_is_stopped_at_the_timeout_and_killed() {
    let sim = sim();
    let bin = sim.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let pid_file = sim.path("az.pid");
    let worker_file = sim.path("worker.pid");
    let script = bin.join("az");
    std::fs::write(
        &script,
        format!(
            // As the real launcher does, the shell runs the worker as its child (no exec).
            "#!/bin/sh\necho $$ > {}\nsleep 60 &\necho $! > {}\nwait\n",
            pid_file.display(),
            worker_file.display()
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
    // The launcher and the worker it started were killed: gone, or zombies waiting for their
    // new parent to reap them.
    std::thread::sleep(Duration::from_millis(200));
    for file in [&pid_file, &worker_file] {
        let pid = std::fs::read_to_string(file).unwrap().trim().to_string();
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false);
        assert!(!alive, "{} (pid {pid}) was left running", file.display());
    }
}

#[test]
fn an_azure_cli_token_is_kept_only_until_its_expires_on() {
    use std::os::unix::fs::PermissionsExt;
    let sim = sim();
    let token = sim.admin_token(&sim.url());
    let bin = sim.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let script = bin.join("az");
    let calls = sim.path("az.calls");
    // `life` seconds left on the token az prints, counted from now as az does.
    let az_calls = |life: u64, name: &str| {
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho x >> {}\necho \"{{\\\"accessToken\\\": \\\"{token}\\\", \\\"expires_on\\\": $(( $(date +%s) + {life} ))}}\"\n",
                calls.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let _ = std::fs::remove_file(&calls);
        let mut c = sim.cmd("register-app");
        c.env_remove("AZURE_CLIENT_ID")
            .env_remove("AZURE_CLIENT_SECRET")
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .args(["--auth", "az", "--name", name]);
        Run::from_output(c.output().unwrap()).ok();
        std::fs::read_to_string(&calls).unwrap().lines().count()
    };
    // An hour left: one az call serves the whole run.
    assert_eq!(az_calls(3600, "Marketo Long"), 1);
    // Thirty seconds left (az had it cached): less than the minute a token must still have,
    // so az is asked again for the next request instead of the token being used for 50 min.
    let short = az_calls(30, "Marketo Short");
    assert!(short > 1, "az was called {short} time(s)");
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
