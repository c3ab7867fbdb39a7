//! `tenant-sim`: a strict local emulator of the three services the marketo-s2s tools talk to —
//! the Microsoft identity platform token endpoint, a Microsoft Graph v1.0 subset, and a Dataverse
//! org (Web API v9.2) with the Marketo Lead Management solution installed.
//!
//! # Strictness
//! It is not a happy-path mock: a request Graph or Dataverse would reject is rejected with the
//! service's status and error-body shape — unknown routes and properties, wrong verbs, missing or
//! wrong `Content-Type`, bad/expired/wrong-audience tokens, duplicate objects, OData key escaping
//! (`''`), quoted GUIDs in Dataverse filters. Graph bodies are validated against Microsoft's own
//! CSDL (trimmed copy in `src/graph_schema.json`, from microsoftgraph/msgraph-metadata
//! `schemas/v1.0-Prod.csdl` at commit f54f11b6, MIT licence; regenerate with
//! `scripts/trim-csdl.py`). Directory writes are eventually consistent (`replication_lag_ms`),
//! faults are injectable (scripted or seeded random: 429/503/504, dropped connections, lost
//! responses, stalls), and the Marketo schema prefix is configurable so tools must discover names.
//!
//! # TLS
//! With `Options::tls` / `--tls` both listeners serve https only: at start a throw-away CA and a
//! server certificate for `127.0.0.1`, `::1` and `localhost` are generated (rcgen), served with
//! rustls (ring provider); the CA's PEM is a temp file kept for the server's lifetime
//! (`TestServer::ca_file()`, `"ca_file"` in the CLI's JSON line) and URLs are `https://`. Faults
//! behave the same: `drop` and `lost_response` cut the TCP stream under TLS (no response, no
//! close_notify), `stall` and `latency_ms` hold the answer. Plain http to a TLS port fails the
//! handshake.
//!
//! # Fixture sources
//! Response shapes follow the fixtures in the project's reference notes: graph-docs
//! (microsoftgraph/microsoft-graph-docs-contrib) pages for application, servicePrincipal,
//! oauth2PermissionGrant, addPassword/removePassword, homeRealmDiscoveryPolicy; entra-docs for the
//! token endpoint and AADSTS error envelope; powerapps-docs for Dataverse WhoAmI, errors, paging,
//! metadata, associate/disassociate; microsoft/terraform-provider-power-platform for application
//! user creation and role association.
//!
//! # UNVERIFIED assumptions (chosen to be plausible; documented so nobody relies on them blindly)
//! - Graph 405 body (`Request_BadRequest`, "Specified HTTP method is not allowed for the request target.").
//! - Graph 415 for a missing/wrong `Content-Type` (`BadRequest`).
//! - Read-only property writes: 400 `Request_BadRequest` "Property 'x' is read-only and cannot be set.".
//! - Unknown `keyId` in removePassword: 404 `Request_ResourceNotFound`.
//! - Second HRD policy on one service principal: 409 `Request_MultipleObjectsWithSameKeyValue`.
//! - Grant with a clientId/resourceId that is not a (replicated) SP: 400 `Request_BadRequest`
//!   "Invalid value specified for property 'clientId' ...".
//! - Duplicate grant / duplicate SP / duplicate uniqueName: 409 `Request_MultipleObjectsWithSameKeyValue`.
//! - addPassword beyond `max_secret_days`: 400 `CredentialInvalidLifetimeAsPerAppPolicy` with
//!   details[0].code `InvalidKeyEndDate` (seen in third-party logs).
//! - Dataverse: application user for an unknown / not yet replicated app (or app without SP):
//!   400 `0x80041d2a` (ObjectNotFoundInAD); deleting an enabled user: 400 `0x80040203`;
//!   role of another business unit: 400 `0x80040203`; duplicate role association: 412 `0x80040237`;
//!   disabled caller: 403 `0x80040225`; not a member: 403 `0x80072560`; non-admin write: 403 `0x80040220`;
//!   duplicate column: 400 `0x80047013`; bad schema prefix: 400 `0x80040203`;
//!   PublishAllXml without a body: 411; disassociating a role that is not associated: 204.
//! - Application user e-mail/domainname: `<appId>@<initial domain>`; fullname: the app's display name.
//! - Tokens: HMAC-like SHA-256 signature instead of RS256; refresh tokens only with `offline_access`.
//! - Certificate, federated and managed-identity sign-in: see the list in `credentials.rs`
//!   (the federated assertion is signed in the emulator's token format, not RS256 from a JWKS).
//! - Notes #20, #21, #24, #25 of docs/real-service-notes.md: restoring a service principal
//!   before its application is 400 `NoBackingApplicationObject`; IMDS answers an unknown
//!   api-version like a missing one; instance discovery matches the host without the port; the
//!   tenant's `jwks_uri` is an empty key set; a deleted service principal's grants come back
//!   when it is restored.
//!
//! # Conformance
//! `tests/conformance/` (run by `scripts/conformance.sh` and CI) checks the emulator with
//! Microsoft's own clients: MSAL for Python, azure-identity, msgraph-sdk and the Dataverse client
//! for Python, unpatched. They first read `/{tenant}/v2.0/.well-known/openid-configuration`
//! (`discovery.rs`).
//!
//! # Sign-in
//! The admin signs in with its client secret, its certificate (`admin.certificate_file`: PEM
//! with an RSA certificate and key the emulator trusts; client assertions are verified as Entra
//! does), a workload identity federation token (`admin.federated_token_file`), or, with
//! `--managed-identity`, the App Service and VM metadata managed-identity protocols on the main
//! listener (`credentials.rs`).

mod access_token;
mod credentials;
mod dataverse;
mod discovery;
mod exchange;
mod faults;
mod graph;
mod jwt;
mod odata;
mod options;
pub mod permissions;
mod schema;
mod server;
mod state;
mod tls;
mod token;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use serde_json::{Value, json};

pub use credentials::{ClientCertificate, generate_client_certificate};
pub use options::Options;
pub use server::{app, dynamics_app};
pub use state::{SharedState, Sim};

/// An in-process emulator on its own thread and tokio runtime; stops when dropped.
pub struct TestServer {
    sim: SharedState,
    url: String,
    dynamics_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// With TLS: the CA certificate PEM file, removed when the server is dropped.
    ca_file: Option<tempfile::NamedTempFile>,
    /// The admin's certificate and key (PEM), made on first use: RSA key generation takes a
    /// second, which most tests need not pay.
    certificate_file: std::sync::Mutex<Option<tempfile::NamedTempFile>>,
    /// An assertion the admin's federated identity credential accepts (valid 24 hours).
    federated_token_file: tempfile::NamedTempFile,
}

/// How long the assertion in `admin.federated_token_file` is valid. Real platforms write
/// short-lived tokens and rotate them (AKS hourly); a day lets a by-hand session last.
const FEDERATED_TOKEN_TTL_S: i64 = 24 * 3600;

fn secret_temp_file(prefix: &str, text: &str) -> Result<tempfile::NamedTempFile, String> {
    use std::io::Write;
    // tempfile creates files 0600: the key and the assertion are secrets.
    let mut f = tempfile::Builder::new()
        .prefix(prefix)
        .tempfile()
        .map_err(|e| format!("{prefix} file: {e}"))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.flush())
        .map_err(|e| format!("{prefix} file: {e}"))?;
    Ok(f)
}

fn bind_pair(
    port: u16,
    dyn_port: u16,
) -> std::io::Result<(std::net::TcpListener, std::net::TcpListener)> {
    let a = std::net::TcpListener::bind(("127.0.0.1", port))?;
    let b = std::net::TcpListener::bind(("127.0.0.1", dyn_port))?;
    a.set_nonblocking(true)?;
    b.set_nonblocking(true)?;
    Ok((a, b))
}

impl TestServer {
    /// Start on two ephemeral loopback ports. Panics when that fails (a test helper).
    pub fn start(opts: Options) -> TestServer {
        let (a, b) = bind_pair(0, 0).expect("binding 127.0.0.1:0 must succeed");
        match Self::start_on(opts, a, b) {
            Ok(s) => s,
            Err(e) => panic!("tenant-sim cannot start: {e}"),
        }
    }

    fn start_on(
        opts: Options,
        a: std::net::TcpListener,
        b: std::net::TcpListener,
    ) -> Result<TestServer, String> {
        let tls = if opts.tls {
            Some(tls::generate()?)
        } else {
            None
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let addr = |l: &std::net::TcpListener| {
            l.local_addr().map_err(|e| format!("listener address: {e}"))
        };
        let url = format!("{scheme}://{}", addr(&a)?);
        let dynamics_url = format!("{scheme}://{}", addr(&b)?);
        let acceptor = tls.as_ref().map(|t| t.acceptor.clone());
        let sim = std::sync::Arc::new(Sim::new(opts));
        if let Ok(mut u) = sim.urls.write() {
            u.main = url.clone();
            u.dynamics = dynamics_url.clone();
        }
        let federation = state::Federation::new(&url);
        let federated_token_file = secret_temp_file(
            "tenant-sim-federated-token-",
            &federation.assertion(FEDERATED_TOKEN_TTL_S),
        )?;
        *util::lock(&sim.federation) = Some(federation);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let s2 = sim.clone();
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let (Ok(a), Ok(b)) = (
                    tokio::net::TcpListener::from_std(a),
                    tokio::net::TcpListener::from_std(b),
                ) else {
                    return;
                };
                let (n1, n2) = (std::future::pending::<()>(), std::future::pending::<()>());
                tokio::select! {
                    _ = server::serve(a, acceptor.clone(), app(s2.clone()), n1) => {}
                    _ = server::serve(b, acceptor, dynamics_app(s2.clone()), n2) => {}
                    _ = rx => {}
                }
                s2.save();
            });
            // dropping the runtime aborts in-flight (e.g. stalled) connections
            drop(rt);
        });
        Ok(TestServer {
            sim,
            url,
            dynamics_url,
            stop: Some(tx),
            thread: Some(thread),
            ca_file: tls.map(|t| t.ca_file),
            certificate_file: std::sync::Mutex::new(None),
            federated_token_file,
        })
    }

    /// Generates the admin's certificate now (if not yet) and trusts it for the admin's client.
    fn ensure_certificate(&self) -> Result<PathBuf, String> {
        let mut slot = util::lock(&self.certificate_file);
        if let Some(f) = slot.as_ref() {
            return Ok(f.path().to_path_buf());
        }
        let cert = credentials::generate_client_certificate("tenant-sim admin")?;
        let file = secret_temp_file("tenant-sim-admin-cert-", &cert.pem)?;
        util::lock(&self.sim.trusted_certs).push(cert.trusted_for(&self.admin_client_id()));
        let path = file.path().to_path_buf();
        *slot = Some(file);
        Ok(path)
    }

    /// A PEM file with the admin's certificate and private key, which the emulator trusts for
    /// the admin's client id (`AZURE_CLIENT_CERTIFICATE_PATH`). Made on the first call; panics
    /// when that fails (a test helper).
    pub fn admin_certificate_file(&self) -> PathBuf {
        match self.ensure_certificate() {
            Ok(p) => p,
            Err(e) => panic!("tenant-sim cannot make the admin certificate: {e}"),
        }
    }

    /// A file holding an assertion the admin's federated identity credential accepts
    /// (`AZURE_FEDERATED_TOKEN_FILE`).
    pub fn admin_federated_token_file(&self) -> PathBuf {
        self.federated_token_file.path().to_path_buf()
    }

    /// A fresh assertion from the emulated external issuer, valid for `ttl_s` seconds from now
    /// (negative: already expired).
    pub fn federated_assertion(&self, ttl_s: i64) -> String {
        util::lock(&self.sim.federation)
            .as_ref()
            .map(|f| f.assertion(ttl_s))
            .unwrap_or_default()
    }

    /// With `managed_identity`: `IDENTITY_ENDPOINT` for the App Service protocol.
    pub fn identity_endpoint(&self) -> Option<String> {
        self.sim
            .identity_header
            .as_ref()
            .map(|_| format!("{}/msi/token", self.url))
    }

    /// With `managed_identity`: `IDENTITY_HEADER`, the value the endpoint expects in
    /// `X-IDENTITY-HEADER`.
    pub fn identity_header(&self) -> Option<String> {
        self.sim.identity_header.clone()
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }
    pub fn dynamics_url(&self) -> String {
        self.dynamics_url.clone()
    }
    pub fn tenant_id(&self) -> String {
        util::lock(&self.sim.tenant).tenant_id.clone()
    }
    pub fn admin_client_id(&self) -> String {
        util::lock(&self.sim.tenant).admin.client_id.clone()
    }
    pub fn admin_client_secret(&self) -> String {
        util::lock(&self.sim.admin_secret).clone()
    }
    /// With `tls`: the PEM file of the CA that signed the server certificate (valid for
    /// `127.0.0.1`, `::1` and `localhost`); it exists as long as the server. `None` without TLS.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.ca_file.as_ref().map(|f| f.path().to_path_buf())
    }
    pub fn requests(&self) -> Vec<Value> {
        util::lock(&self.sim.log).clone()
    }
    pub fn clear_requests(&self) {
        util::lock(&self.sim.log).clear();
    }
    pub fn state(&self) -> Value {
        self.sim.state_json()
    }
    /// Add a scripted fault (same body as `POST /_sim/faults`). Panics on an invalid body (test helper).
    pub fn add_fault(&self, fault: Value) {
        if let Err(e) = server::add_fault(&self.sim, fault) {
            panic!("invalid fault: {e}");
        }
    }
    pub fn reset(&self) {
        self.sim.reset();
    }
    /// The next `PublishAllXmlAsync` system job fails with `message` (statuscode 31).
    pub fn fail_next_publish(&self, message: &str) {
        *util::lock(&self.sim.fail_next_publish) = Some(message.to_string());
    }
    /// Soft-delete the application user of `application_id` (same as
    /// `POST /_sim/soft-delete-user`); `false` when it has none.
    pub fn soft_delete_user(&self, application_id: &str) -> bool {
        let done = {
            let mut t = util::lock(&self.sim.tenant);
            dataverse::soft_delete_application_user(&mut t.dataverse, application_id)
        };
        self.sim.save();
        done
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Local emulator of the Microsoft identity token endpoint, a Microsoft Graph v1.0 subset and a
/// Dataverse org with the Marketo solution, for tests, demos and benchmarks.
///
/// Prints one JSON line (URLs, tenant id, admin credentials) on stdout, then serves until
/// SIGINT/SIGTERM.
#[derive(Debug, Parser)]
#[command(
    name = "tenant-sim",
    version,
    about,
    long_about,
    after_help = "\
Examples:
  tenant-sim --port 0 --replication-lag-ms 2000 --federated --marketo-prefix acme
  tenant-sim --port 0 --fault-rate 0.3 --fault-seed 7 --state tenant.json

Sign in as the admin with admin.client_secret, admin.certificate_file
(AZURE_CLIENT_CERTIFICATE_PATH) or admin.federated_token_file (AZURE_FEDERATED_TOKEN_FILE).

Control routes (not logged): GET/DELETE /_sim/requests, GET /_sim/state, POST /_sim/faults,
POST /_sim/reset, POST /_sim/soft-delete-user {\"applicationid\": \"<guid>\"}. Exit codes: 0 stopped by SIGINT/SIGTERM, 1 cannot serve, 2 bad flags."
)]
pub struct Cli {
    /// Port of the login + Graph listener (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Port of the Dataverse org listener (0 = any free port).
    #[arg(long, default_value_t = 0)]
    dynamics_port: u16,
    /// Serve https on both listeners with a CA generated at start; its PEM file is printed as
    /// "ca_file" (give it to the tools with --ca-file) and removed on exit.
    #[arg(long)]
    tls: bool,
    /// Load the tenant from FILE if it exists; save it after every write and on shutdown.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// New directory objects become visible to reads, login and Dataverse only after N ms.
    #[arg(long, default_value_t = 0, value_name = "N")]
    replication_lag_ms: u64,
    /// Probability (0..1) of a random fault per API request.
    #[arg(long, default_value_t = 0.0, value_name = "F")]
    fault_rate: f64,
    /// Seed of the random faults (same seed, same faults).
    #[arg(long, default_value_t = 0, value_name = "S")]
    fault_seed: u64,
    /// Retry-After seconds sent with random 429s (fractions allowed).
    #[arg(long, default_value_t = 0.05, value_name = "X")]
    retry_after_secs: f64,
    /// Delay every API response by N ms.
    #[arg(long, default_value_t = 0, value_name = "N")]
    latency_ms: u64,
    /// The N-th API request (1-based) never gets an answer.
    #[arg(long, value_name = "N")]
    stall_at: Option<u64>,
    /// A federated (AD FS) domain exists besides the managed initial domain.
    #[arg(long)]
    federated: bool,
    /// Installed Marketo solution version, or "none" for not installed.
    #[arg(long, default_value = "5.0.2.1", value_name = "V")]
    marketo_version: String,
    /// Schema prefix of the Marketo solution (entity and attribute names derive from it).
    #[arg(long, default_value = "mkto", value_name = "P")]
    marketo_prefix: String,
    /// App-management policy: the longest allowed client secret lifetime in days.
    #[arg(long, value_name = "N")]
    max_secret_days: Option<u32>,
    /// How long PublishAllXml / PublishXml / the async publish job take, in ms.
    #[arg(long, default_value_t = 50, value_name = "N")]
    publish_ms: u64,
    /// Start without the Dynamics CRM (Dataverse) service principal in the tenant.
    #[arg(long)]
    no_dynamics_sp: bool,
    /// Microsoft Graph application permissions of the admin's app-only token, comma-separated
    /// [default: what the setup tools need]
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    admin_permissions: Option<Vec<String>>,
    /// Entra directory roles of the admin user who signs in with a device code, comma-separated
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "Global Administrator"
    )]
    admin_directory_roles: Vec<String>,
    /// Security role of the admin app's application user in the org, or "none": the admin's app
    /// is not an application user and Dataverse answers 403 0x80072560
    #[arg(long, value_name = "NAME|none", default_value = "System Administrator")]
    admin_dataverse_role: String,
    /// Display name of the Marketo configuration entity
    #[arg(long, value_name = "TEXT", default_value = "Marketo Config")]
    marketo_config_label: String,
    /// Display name of the configuration's lookup to the Marketo sync user
    #[arg(long, value_name = "TEXT", default_value = "Marketo User")]
    marketo_user_label: String,
    /// Serve managed-identity tokens for the admin on the main listener: the App Service
    /// protocol (printed as "managed_identity": identity_endpoint and identity_header) and the
    /// VM metadata protocol at /metadata/identity/oauth2/token (imds_url).
    #[arg(long)]
    managed_identity: bool,
}

impl Cli {
    fn options(&self) -> Options {
        Options {
            replication_lag_ms: self.replication_lag_ms,
            federated: self.federated,
            marketo_version: (!self.marketo_version.eq_ignore_ascii_case("none"))
                .then(|| self.marketo_version.clone()),
            marketo_prefix: self.marketo_prefix.to_ascii_lowercase(),
            max_secret_days: self.max_secret_days,
            publish_ms: self.publish_ms,
            fault_rate: self.fault_rate,
            fault_seed: self.fault_seed,
            retry_after_secs: self.retry_after_secs,
            latency_ms: self.latency_ms,
            stall_at: self.stall_at,
            tls: self.tls,
            state_file: self.state.clone(),
            no_dynamics_sp: self.no_dynamics_sp,
            seed_attributes: Vec::new(),
            shared_admin: None,
            admin_app_in_tenant: false,
            admin_permissions: self
                .admin_permissions
                .clone()
                .map(|l| {
                    l.into_iter()
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect()
                })
                .unwrap_or_else(permissions::default_admin_permissions),
            admin_directory_roles: self
                .admin_directory_roles
                .iter()
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty())
                .collect(),
            admin_dataverse_role: (!self.admin_dataverse_role.eq_ignore_ascii_case("none"))
                .then(|| self.admin_dataverse_role.clone()),
            marketo_config_label: self.marketo_config_label.clone(),
            marketo_user_label: self.marketo_user_label.clone(),
            managed_identity: self.managed_identity,
        }
    }
}

/// The `tenant-sim` command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !(0.0..=1.0).contains(&cli.fault_rate) {
        eprintln!("tenant-sim: --fault-rate must be between 0 and 1");
        return ExitCode::from(2);
    }
    let (a, b) = match bind_pair(cli.port, cli.dynamics_port) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("tenant-sim: cannot bind: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match TestServer::start_on(cli.options(), a, b) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tenant-sim: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let certificate_file = match server.ensure_certificate() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tenant-sim: cannot make the admin certificate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut line = json!({
        "url": server.url(), "tenant_id": server.tenant_id(), "dynamics_url": server.dynamics_url(),
        "admin": {
            "client_id": server.admin_client_id(), "client_secret": server.admin_client_secret(),
            "certificate_file": certificate_file,
            "federated_token_file": server.admin_federated_token_file()
        }
    });
    if let (Some(endpoint), Some(header)) = (server.identity_endpoint(), server.identity_header()) {
        line["managed_identity"] = json!({
            "identity_endpoint": endpoint, "identity_header": header, "imds_url": server.url()
        });
    }
    if let Some(ca) = server.ca_file() {
        line["ca_file"] = json!(ca);
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            return ExitCode::FAILURE;
        }
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::FAILURE;
    };
    rt.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            if let Ok(mut term) = signal(SignalKind::terminate()) {
                tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
                return;
            }
        }
        let _ = tokio::signal::ctrl_c().await;
    });
    drop(server); // saves the state file
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
        let c = Cli::parse_from([
            "tenant-sim",
            "--port",
            "0",
            "--marketo-version",
            "none",
            "--fault-rate",
            "0.1",
            "--fault-seed",
            "3",
        ]);
        assert!(c.options().marketo_version.is_none());
        assert_eq!(c.options().fault_seed, 3);
    }
}
