//! Shared test helpers: an in-process emulator per test, tools run as real processes with a
//! scrubbed environment (no HOME, no token cache, no developer credentials — xh's rule), and
//! assertions on the emulator's request log and state.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;
use tenant_sim::{Options, TestServer};

pub struct Sim {
    pub server: TestServer,
    pub dir: tempfile::TempDir,
}

pub fn sim() -> Sim {
    sim_with(Options::default())
}

pub fn sim_with(opts: Options) -> Sim {
    Sim {
        server: TestServer::start(opts),
        dir: tempfile::tempdir().expect("temp dir"),
    }
}

/// What one tool run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// stdout parsed as JSON (Null when empty or not JSON).
    pub doc: Value,
}

impl Run {
    pub fn from_output(o: Output) -> Run {
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        let doc = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            doc,
        }
    }
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstderr:\n{}\nstdout:\n{}",
            self.stderr, self.stdout
        );
        self
    }
    #[track_caller]
    pub fn code_is(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstderr:\n{}\nstdout:\n{}",
            self.stderr, self.stdout
        );
        self
    }
    pub fn changed(&self, tool: &str) -> bool {
        self.doc["steps"][tool]["changed"]
            .as_bool()
            .expect("steps.<tool>.changed")
    }
    /// Every byte the tool printed.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A command for `tool` with nothing from the developer's environment.
pub fn bare_cmd(tool: &str, cwd: &Path) -> Command {
    let mut c = Command::cargo_bin(tool).expect("tool binary");
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", cwd)
        .env("XDG_CACHE_HOME", cwd.join(".cache"))
        .current_dir(cwd)
        .timeout(std::time::Duration::from_secs(120));
    c
}

impl Sim {
    pub fn url(&self) -> String {
        self.server.url()
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A command signed in as the emulator's admin through the environment service principal.
    pub fn cmd(&self, tool: &str) -> Command {
        let mut c = bare_cmd(tool, self.dir.path());
        c.envs(self.env());
        c
    }

    /// The environment of a tool signed in as the emulator's admin (on top of [`bare_cmd`]'s).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_TENANT_ID", self.server.tenant_id()),
            ("AZURE_CLIENT_ID", self.server.admin_client_id()),
            ("AZURE_CLIENT_SECRET", self.server.admin_client_secret()),
            ("AZURE_AUTHORITY_HOST", self.server.url()),
            ("MKTO_S2S_GRAPH_URL", self.server.url()),
            ("MKTO_S2S_DYNAMICS_URL", self.server.dynamics_url()),
            ("MKTO_S2S_TIMEOUT", "60s".to_string()),
        ]
    }

    /// Runs `tool args` with `stdin` (a document, or Null for no input: `< /dev/null`, the
    /// explicit "start from nothing"; an empty pipe means a failed previous step).
    pub fn run(&self, tool: &str, args: &[&str], stdin: &Value) -> Run {
        if stdin.is_null() {
            // assert_cmd always pipes stdin; `< /dev/null` needs a plain Command.
            let mut c = self.null_stdin_cmd(tool);
            c.args(args);
            return Run::from_output(c.output().expect("run tool"));
        }
        let mut c = self.cmd(tool);
        c.args(args).write_stdin(stdin.to_string());
        Run::from_output(c.output().expect("run tool"))
    }

    /// As [`Sim::cmd`], with stdin from `/dev/null` (the tool is bounded by MKTO_S2S_TIMEOUT).
    pub fn null_stdin_cmd(&self, tool: &str) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin(tool));
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.dir())
            .env("XDG_CACHE_HOME", self.dir().join(".cache"))
            .current_dir(self.dir())
            .envs(self.env())
            .stdin(std::process::Stdio::null());
        c
    }

    /// API requests logged since the last clear.
    pub fn requests(&self) -> Vec<Value> {
        self.server.requests()
    }
    pub fn clear(&self) {
        self.server.clear_requests()
    }
    /// Writes (anything but GET) to Graph or Dataverse since the last clear; token requests are
    /// sign-ins, not changes.
    pub fn writes(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["method"] != "GET" && r["service"] != "login")
            .collect()
    }
    #[track_caller]
    pub fn assert_no_writes(&self) {
        let w = self.writes();
        assert!(w.is_empty(), "expected no writes, got {w:#?}");
    }
    pub fn api_requests(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r["service"] != "login")
            .count()
    }
    pub fn state(&self) -> Value {
        self.server.state()
    }
}

/// Compares `text` with the snapshot file `tests/snapshots/<name>`; `SNAPSHOTS=overwrite`
/// rewrites it (review the diff, as with trycmd).
#[track_caller]
pub fn assert_snapshot(name: &str, text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var("SNAPSHOTS").as_deref() == Ok("overwrite") {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write snapshot");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}; run with SNAPSHOTS=overwrite",
            path.display()
        )
    });
    assert_eq!(
        text, want,
        "snapshot {name} differs; run with SNAPSHOTS=overwrite and review the diff"
    );
}

/// Every tool the product ships (tenant-sim aside).
pub const TOOLS: &[&str] = &[
    "preflight",
    "register-app",
    "grant-consent",
    "make-secret",
    "set-hrd-policy",
    "assign-role",
    "configure-marketo",
    "publish-customizations",
    "verify-sync",
    "add-sync-filter",
];

/// A minimal HTTP/1.1 client over std (the tests must not share the tools' HTTP stack, or a bug
/// there could hide itself): one request per connection.
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok();
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

impl Sim {
    /// A client-credentials token for `resource` (the Graph url or the Dynamics url).
    pub fn token_for(&self, client_id: &str, secret: &str, resource: &str) -> (u16, Value) {
        let form = format!(
            "grant_type=client_credentials&client_id={client_id}&client_secret={}&scope={}",
            urlencode(secret),
            urlencode(&format!("{resource}/.default"))
        );
        let (status, body) = http(
            "POST",
            &format!(
                "{}/{}/oauth2/v2.0/token",
                self.url(),
                self.server.tenant_id()
            ),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(&form),
        );
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    pub fn admin_token(&self, resource: &str) -> String {
        let (status, v) = self.token_for(
            &self.server.admin_client_id(),
            &self.server.admin_client_secret(),
            resource,
        );
        assert_eq!(status, 200, "admin token: {v}");
        v["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// Calls Graph as the admin: `graph("GET", "applications", None)`.
    pub fn graph(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let token = self.admin_token(&self.url());
        let auth = format!("Bearer {token}");
        let b = body.map(|v| v.to_string());
        let (status, text) = http(
            method,
            &format!("{}/v1.0/{path}", self.url()),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("Accept", "application/json"),
            ],
            b.as_deref(),
        );
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Calls the Dataverse org as the admin: `dataverse("GET", "systemusers", None)`.
    pub fn dataverse(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let org = self.server.dynamics_url();
        let token = self.admin_token(&org);
        let auth = format!("Bearer {token}");
        let b = body.map(|v| v.to_string());
        let (status, text) = http(
            method,
            &format!("{org}/api/data/v9.2/{path}"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("Accept", "application/json"),
                ("OData-MaxVersion", "4.0"),
                ("OData-Version", "4.0"),
                ("If-Match", "*"),
            ],
            b.as_deref(),
        );
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The applications in the emulated tenant, read through Graph.
    pub fn applications(&self) -> Vec<Value> {
        let (s, v) = self.graph("GET", "applications", None);
        assert_eq!(s, 200, "{v}");
        v["value"].as_array().cloned().unwrap_or_default()
    }
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs `cargo`-built tool with nothing but the given environment (for bad-input tests).
pub fn run_bare(tool: &str, cwd: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let mut c = bare_cmd(tool, cwd);
    c.args(args)
        .envs(env.iter().copied())
        .write_stdin(stdin.to_string());
    Run::from_output(c.output().expect("run tool"))
}

/// The Entra ID and Dynamics steps in runbook order, with the flags a test run needs.
pub fn chain_steps(secret_file: &str) -> Vec<(&'static str, Vec<String>)> {
    vec![
        ("register-app", vec![]),
        ("grant-consent", vec![]),
        (
            "make-secret",
            vec!["--secret-file".into(), secret_file.into()],
        ),
        ("set-hrd-policy", vec![]),
        ("assign-role", vec![]),
        ("configure-marketo", vec![]),
        ("publish-customizations", vec!["--if-changed".into()]),
    ]
}

impl Sim {
    /// Runs the whole setup chain, each tool fed the previous one's output; panics on failure.
    pub fn setup_chain(&self, extra: &[&str]) -> Value {
        let secret = self.path("marketo.secret");
        let mut doc = Value::Null;
        for (tool, args) in chain_steps(secret.to_str().unwrap()) {
            let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
            a.extend_from_slice(extra);
            let r = self.run(tool, &a, &doc);
            assert_eq!(r.code, 0, "{tool} failed\nstderr:\n{}", r.stderr);
            doc = r.doc;
        }
        doc
    }

    /// Objects of one kind in the emulated tenant, from `GET /_sim/state`.
    pub fn state_list(&self, key: &str) -> Vec<Value> {
        let s = self.state();
        let v = s.pointer(key).cloned().unwrap_or(Value::Null);
        match v {
            Value::Array(a) => a,
            Value::Object(m) => m.into_iter().map(|(_, v)| v).collect(),
            _ => Vec::new(),
        }
    }
}

// ---- Entra ID steps: set-up and the emulator's view (register-app, grant-consent, make-secret,
// ---- set-hrd-policy, verify-sync)

/// An emulator whose tenant has a federated domain (AD FS), as set-hrd-policy acts on.
pub fn federated() -> Sim {
    sim_with(Options {
        federated: true,
        ..Default::default()
    })
}

/// A document with a registered app (`register-app`), as the pipeline hands it on.
pub fn registered(sim: &Sim) -> Value {
    sim.run(
        "register-app",
        &["--name", "Marketo Integration"],
        &Value::Null,
    )
    .ok()
    .doc
}

/// `app.client_id` of a document.
pub fn client_id(doc: &Value) -> String {
    doc["app"]["client_id"]
        .as_str()
        .expect("app.client_id")
        .to_string()
}

/// `app.service_principal_id` of a document.
pub fn service_principal_id(doc: &Value) -> String {
    doc["app"]["service_principal_id"]
        .as_str()
        .expect("app.service_principal_id")
        .to_string()
}

impl Sim {
    /// The objects of one kind in the emulated tenant as Graph would show them (the `data` of
    /// each entry of `GET /_sim/state`'s `kind`, e.g. `oauth2_permission_grants`).
    pub fn state_objects(&self, kind: &str) -> Vec<Value> {
        self.state_list(&format!("/{kind}"))
            .into_iter()
            .map(|o| o["data"].clone())
            .collect()
    }

    /// Calls Graph as the admin and asserts the status; returns the body.
    #[track_caller]
    pub fn graph_expect(
        &self,
        status: u16,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (s, v) = self.graph(method, path, body);
        assert_eq!(s, status, "{method} {path}: {v}");
        v
    }

    /// Calls the Dataverse org as the admin and asserts the status; returns the body.
    #[track_caller]
    pub fn dataverse_expect(
        &self,
        status: u16,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (s, v) = self.dataverse(method, path, body);
        assert_eq!(s, status, "{method} {path}: {v}");
        v
    }

    /// `tool` on a document that names no app exits 2, naming the flag and the state key that
    /// would have given it.
    #[track_caller]
    pub fn assert_needs(&self, tool: &str, flag: &str, key: &str) {
        let doc = serde_json::json!({"tenant": {"id": self.server.tenant_id()}});
        let r = self.run(tool, &[], &doc).code_is(2);
        assert!(
            r.stderr.contains(flag) && r.stderr.contains(key),
            "{}",
            r.stderr
        );
    }

    #[track_caller]
    pub fn assert_no_requests(&self) {
        let r = self.requests();
        assert!(r.is_empty(), "expected no requests, got {r:#?}");
    }
}

// ---- Dynamics steps: set-up and the emulator's view (assign-role, configure-marketo,
// ---- publish-customizations, add-sync-filter)

/// A document after `register-app | assign-role`.
pub fn with_app_user(sim: &Sim) -> Value {
    let doc = registered(sim);
    sim.run("assign-role", &[], &doc).ok().doc
}

/// `dynamics.application_user_id` of a document.
pub fn app_user_id(doc: &Value) -> String {
    doc["dynamics"]["application_user_id"]
        .as_str()
        .expect("dynamics.application_user_id")
        .to_string()
}

/// `GET` through the emulator's Dataverse routes as the admin; asserts 200.
#[track_caller]
pub fn dv_get(sim: &Sim, path: &str) -> Value {
    sim.dataverse_expect(200, "GET", path, None)
}

/// The active application users for a client id, as Dataverse lists them.
pub fn app_users(sim: &Sim, client_id: &str) -> Vec<Value> {
    dv_get(
        sim,
        &format!("systemusers?$filter=applicationid%20eq%20{client_id}"),
    )["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|u| u["deletedstate"] != serde_json::json!(1))
        .collect()
}

/// `METHOD path` of each logged request, e.g. `PATCH /api/data/v9.2/systemusers(...)`.
pub fn method_paths(reqs: &[Value]) -> Vec<String> {
    reqs.iter()
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap_or(""),
                r["path"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Every publish the emulated org has run (`PublishAllXml`, `PublishXml`, async), oldest first.
pub fn publish_history(sim: &Sim) -> Vec<Value> {
    sim.state()["dataverse"]["publish_history"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

impl Run {
    /// Asserts that stderr contains `needle`, showing stderr when it does not.
    #[track_caller]
    pub fn assert_stderr(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "expected {needle:?} on stderr:\n{}",
            self.stderr
        );
        self
    }
}

impl Sim {
    /// Each `(args, stdin, needle)` run of `tool` exits 2 with `needle` on stderr, having sent
    /// no request: bad input is refused before anything reaches the tenant. Returns the runs.
    #[track_caller]
    pub fn assert_usage_errors(&self, tool: &str, cases: &[(Vec<&str>, Value, &str)]) -> Vec<Run> {
        let mut runs = Vec::new();
        for (args, stdin, needle) in cases {
            self.clear();
            let r = self.run(tool, args, stdin).code_is(2);
            assert!(
                r.stderr.contains(needle),
                "{args:?}: expected {needle:?} in\n{}",
                r.stderr
            );
            let sent = self.requests();
            assert!(sent.is_empty(), "{args:?} sent {sent:#?}");
            runs.push(r);
        }
        runs
    }
}

/// A device-code sign-in with the Azure CLI's client done by the test as a person would (in a
/// browser), saved as the tools' token cache at `cache`. Returns the refresh token and its
/// cache key.
pub fn seed_token_cache(sim: &Sim, cache: &Path) -> (String, String) {
    seed_token_cache_for(sim, cache, "04b07795-8ddb-461a-bbee-02f9e1bf7b46")
}

/// The same with another public client (`--login-client-id`), e.g. one registered in the tenant.
pub fn seed_token_cache_for(sim: &Sim, cache: &Path, cli_id: &str) -> (String, String) {
    let tenant = sim.server.tenant_id();
    let form = format!(
        "client_id={cli_id}&scope={}",
        urlencode(&format!("{}/.default offline_access", sim.url()))
    );
    let (s, body) = http(
        "POST",
        &format!("{}/{tenant}/oauth2/v2.0/devicecode", sim.url()),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(&form),
    );
    assert_eq!(s, 200, "{body}");
    let dc: Value = serde_json::from_str(&body).unwrap();
    let poll = format!(
        "grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id={cli_id}&device_code={}",
        urlencode(dc["device_code"].as_str().unwrap())
    );
    let mut tokens = Value::Null;
    for _ in 0..3 {
        let (s, body) = http(
            "POST",
            &format!("{}/{tenant}/oauth2/v2.0/token", sim.url()),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(&poll),
        );
        if s == 200 {
            tokens = serde_json::from_str(&body).unwrap();
            break;
        }
    }
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let key = format!("{}|{tenant}|{cli_id}", sim.url());
    std::fs::write(
        cache,
        serde_json::json!({ key.clone(): {"refresh_token": refresh} }).to_string(),
    )
    .unwrap();
    (refresh, key)
}

/// Makes a FIFO at `path` (for the tests that a named pipe never blocks a tool).
pub fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs")
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

/// A failed run on a pipe (issue 21): stdout is empty, or the document it read with nothing but
/// its own `steps.<tool>.error` (marked `handed_on`) added.
#[track_caller]
pub fn assert_handed_on_unchanged(r: &Run, tool: &str, input: &Value) {
    if r.stdout.is_empty() {
        return;
    }
    let mut out: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|_| panic!("{tool} printed something that is not a document"));
    if let Some(steps) = out["steps"].as_object_mut() {
        assert_eq!(
            steps[tool]["error"]["handed_on"], true,
            "{tool}: {}",
            r.stdout
        );
        assert_eq!(
            steps[tool]["error"]["exit_code"], r.code,
            "{tool}: {}",
            r.stdout
        );
        steps.remove(tool);
        if steps.is_empty() {
            out.as_object_mut().unwrap().remove("steps");
        }
    }
    let mut input = input.clone();
    if input["steps"].as_object().is_some_and(|s| s.is_empty()) {
        input.as_object_mut().unwrap().remove("steps");
    }
    assert_eq!(&out, &input, "{tool} changed the document it handed on");
}
