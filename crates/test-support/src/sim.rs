//! [`Sim`]: an in-process emulator and a temporary folder for one test, and what the test reads
//! of the emulated tenant (its request log, its state, Graph and Dataverse as the admin).

use std::path::{Path, PathBuf};

use serde_json::Value;
use tenant_sim::{Options, TestServer};

use crate::http;
use crate::token;

/// One test's emulator (`tenant_sim::TestServer` on 127.0.0.1:0, stopped when dropped) and its
/// own folder, the working directory and home of every tool the test runs.
pub struct Sim {
    pub server: TestServer,
    pub dir: tempfile::TempDir,
}

/// An emulator with the default options.
pub fn sim() -> Sim {
    sim_with(Options::default())
}

pub fn sim_with(opts: Options) -> Sim {
    Sim {
        server: TestServer::start(opts),
        dir: tempfile::tempdir().expect("temp dir"),
    }
}

/// An emulator whose tenant has a federated domain (AD FS), as set-hrd-policy acts on.
pub fn federated() -> Sim {
    sim_with(Options {
        federated: true,
        ..Default::default()
    })
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
    #[track_caller]
    pub fn assert_no_requests(&self) {
        let r = self.requests();
        assert!(r.is_empty(), "expected no requests, got {r:#?}");
    }
    pub fn api_requests(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r["service"] != "login")
            .count()
    }

    /// The whole emulated tenant (`GET /_sim/state`; secrets only as hashes).
    pub fn state(&self) -> Value {
        self.server.state()
    }

    /// Objects of one kind in the emulated tenant, from `GET /_sim/state` at JSON pointer `key`.
    pub fn state_list(&self, key: &str) -> Vec<Value> {
        let s = self.state();
        let v = s.pointer(key).cloned().unwrap_or(Value::Null);
        match v {
            Value::Array(a) => a,
            Value::Object(m) => m.into_iter().map(|(_, v)| v).collect(),
            _ => Vec::new(),
        }
    }

    /// The objects of one kind in the emulated tenant as Graph would show them (the `data` of
    /// each entry of `GET /_sim/state`'s `kind`, e.g. `oauth2_permission_grants`).
    pub fn state_objects(&self, kind: &str) -> Vec<Value> {
        self.state_list(&format!("/{kind}"))
            .into_iter()
            .map(|o| o["data"].clone())
            .collect()
    }

    /// A client-credentials token for `resource` (the Graph url or the Dynamics url): the
    /// status and the answer (`Null` when it is not JSON); status 0 when the connection closed
    /// without an answer (a fault the emulator was asked to make).
    pub fn token_for(&self, client_id: &str, secret: &str, resource: &str) -> (u16, Value) {
        match token::try_client_credentials(&self.server, client_id, secret, resource) {
            Ok(r) => (r.status, r.json()),
            Err(_) => (0, Value::Null),
        }
    }

    /// The admin's access token for `resource`.
    #[track_caller]
    pub fn admin_token(&self, resource: &str) -> String {
        token::admin_token(&self.server, resource)
    }

    /// Calls Graph as the admin: `graph("GET", "applications", None)`.
    pub fn graph(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let auth = format!("Bearer {}", self.admin_token(&self.url()));
        let body = body.map(|v| v.to_string());
        let r = http::send(
            method,
            &format!("{}/v1.0/{path}", self.url()),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("Accept", "application/json"),
            ],
            body.as_deref().map(str::as_bytes),
        )
        .expect("an answer from Graph");
        (r.status, r.json())
    }

    /// Calls the Dataverse org as the admin: `dataverse("GET", "systemusers", None)`.
    pub fn dataverse(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let org = self.server.dynamics_url();
        let auth = format!("Bearer {}", self.admin_token(&org));
        let body = body.map(|v| v.to_string());
        let r = http::send(
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
            body.as_deref().map(str::as_bytes),
        )
        .expect("an answer from Dataverse");
        (r.status, r.json())
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

    /// The applications in the emulated tenant, read through Graph.
    #[track_caller]
    pub fn applications(&self) -> Vec<Value> {
        let (s, v) = self.graph("GET", "applications", None);
        assert_eq!(s, 200, "{v}");
        v["value"].as_array().cloned().unwrap_or_default()
    }
}
