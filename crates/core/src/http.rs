//! The one HTTP layer: a lazily built reqwest client (rustls), bearer tokens from the credential
//! chain, `client-request-id` on every call, retry with backoff bounded by the tool's deadline,
//! service error bodies parsed into [`ServiceError`], traces with every secret redacted, and the
//! `--dry-run` plan. Typed clients (graph, dataverse) build [`Request`]s; they never print.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::auth::TokenProvider;
use crate::config::Config;
use crate::error::{Error, Kind, Result, ServiceError};
use crate::output::Reporter;
use crate::redact;
use crate::retry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Login,
    Graph,
    Dataverse,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Login => "login",
            Service::Graph => "graph",
            Service::Dataverse => "dataverse",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
    fn reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Patch => reqwest::Method::PATCH,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        }
    }
}

/// How a request is authorised.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// A token for this resource (`https://graph.microsoft.com`, an org URL) from the chain.
    Resource(String),
    /// An explicit token (verify-sync's test of the app's own secret).
    Token(SecretString),
}

#[derive(Debug, Clone)]
pub enum Body {
    Json(Value),
    /// Form fields; values of secret fields are redacted in traces.
    Form(Vec<(String, String)>),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub service: Service,
    pub auth: Auth,
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
    /// Overrides the per-attempt timeout (PublishAllXml can run for many minutes).
    pub attempt_timeout: Option<Duration>,
    /// Statuses that are answers, not errors (e.g. 404 for "not there").
    pub accept: Vec<u16>,
    /// Extra retryable condition for this request (e.g. Dataverse's customization lock).
    pub retry_codes: Vec<&'static str>,
    /// Do not retry once an attempt may have been committed (its answer was lost, or a 500/504):
    /// for a write that starts something with no idempotency key (`PublishAllXmlAsync` starts
    /// a system job), the caller looks for what the lost attempt did instead.
    pub stop_once_committed: bool,
    /// At most this many attempts (the deadline bounds them anyway): for an endpoint that may
    /// simply not exist on this machine (the VM metadata endpoint off Azure).
    pub max_attempts: Option<u32>,
}

impl Request {
    pub fn new(method: Method, service: Service, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            service,
            auth: Auth::None,
            headers: Vec::new(),
            body: None,
            attempt_timeout: None,
            accept: Vec::new(),
            retry_codes: Vec::new(),
            stop_once_committed: false,
            max_attempts: None,
        }
    }
    pub fn attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n.max(1));
        self
    }
    pub fn stop_once_committed(mut self) -> Self {
        self.stop_once_committed = true;
        self
    }
    pub fn auth(mut self, a: Auth) -> Self {
        self.auth = a;
        self
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn json(mut self, v: Value) -> Self {
        self.body = Some(Body::Json(v));
        self
    }
    pub fn form(mut self, f: Vec<(String, String)>) -> Self {
        self.body = Some(Body::Form(f));
        self
    }
    pub fn accept(mut self, status: u16) -> Self {
        self.accept.push(status);
        self
    }
    pub fn retry_on_code(mut self, code: &'static str) -> Self {
        self.retry_codes.push(code);
        self
    }
    pub fn timeout(mut self, d: Duration) -> Self {
        self.attempt_timeout = Some(d);
        self
    }
    pub fn is_write(&self) -> bool {
        self.method != Method::Get
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The body as JSON; an empty body is `null`.
    pub fn json(&self) -> Result<Value> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::internal(format!(
                "the service answered {} with a body that is not JSON ({e})",
                self.status
            ))
        })
    }
    /// Deserialises the body into `T`, naming the type on failure.
    pub fn parse<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::internal(format!("unexpected {what} in the service's answer ({e})"))
        })
    }
}

/// One per process.
pub struct Http {
    cfg: Config,
    report: std::sync::Arc<Reporter>,
    client: OnceCell<reqwest::Client>,
    tokens: TokenProvider,
    plan: Mutex<Vec<Value>>,
    writes: AtomicUsize,
    /// Writes sent (or planned, in a dry run), whatever their answer: a run that failed with
    /// none has changed nothing, so its `--state` file is left byte-identical.
    attempted_writes: AtomicUsize,
    /// Writes to the Dynamics org that succeeded (planned, in a dry run): what makes a publish
    /// of customizations owed (`steps.<tool>.dataverse_changed`).
    dataverse_writes: AtomicUsize,
    requests: AtomicUsize,
}

impl Http {
    pub fn new(cfg: Config, report: std::sync::Arc<Reporter>) -> Self {
        let tokens = TokenProvider::new(&cfg);
        Http {
            cfg,
            report,
            client: OnceCell::new(),
            tokens,
            plan: Mutex::new(Vec::new()),
            writes: AtomicUsize::new(0),
            attempted_writes: AtomicUsize::new(0),
            dataverse_writes: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn reporter(&self) -> &Reporter {
        &self.report
    }
    pub fn deadline(&self) -> Instant {
        self.cfg.deadline
    }
    pub fn tokens(&self) -> &TokenProvider {
        &self.tokens
    }
    /// Writes that succeeded: `steps.<tool>.changed` is true exactly when this is non-zero.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::Relaxed)
    }
    /// Writes sent or planned, successful or not.
    pub fn attempted_writes(&self) -> usize {
        self.attempted_writes.load(Ordering::Relaxed)
    }
    /// Successful (or, in a dry run, planned) writes to the Dynamics org.
    pub fn dataverse_writes(&self) -> usize {
        self.dataverse_writes.load(Ordering::Relaxed)
    }
    /// The tenant id (`tid` claim) of the Graph token this run signs in with: how a tenant given
    /// as a domain is compared with a document's tenant id before any write. `None` when the
    /// token is not a JWT with a `tid` (Entra's access tokens are, but they are not a contract).
    pub async fn signed_in_tenant_id(&self) -> Result<Option<String>> {
        let token = self
            .tokens
            .token(self, &crate::config::base(&self.cfg.graph))
            .await?;
        Ok(crate::auth::jwt_claim(&token, "tid"))
    }
    /// Counts a change made outside HTTP (teardown deleting the local secret file), so
    /// `steps.<tool>.changed` tells the truth. Never call it in `--dry-run`.
    pub fn count_local_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.attempted_writes.fetch_add(1, Ordering::Relaxed);
    }
    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
    pub fn take_plan(&self) -> Vec<Value> {
        std::mem::take(&mut *self.plan.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The client is built on first use, so `--help` and bad input never pay for TLS set-up.
    async fn client(&self) -> Result<&reqwest::Client> {
        self.client
            .get_or_try_init(|| async {
                let mut b = reqwest::Client::builder()
                    .user_agent(format!(
                        "marketo-s2s/{} {}",
                        env!("CARGO_PKG_VERSION"),
                        self.cfg.tool
                    ))
                    .connect_timeout(Duration::from_secs(15))
                    .pool_idle_timeout(Duration::from_secs(30))
                    // No endpoint these tools talk to redirects an API call or a sign-in, and
                    // following one re-sends the request — a client secret, a signed assertion,
                    // the managed-identity header — to whatever host the answer names. A 3xx is
                    // an error instead (`send`).
                    .redirect(reqwest::redirect::Policy::none());
                if let Some(ca) = &self.cfg.ca_file {
                    let certs = read_ca_file_from(ca, self.cfg.ca_file_source)?;
                    for c in certs {
                        b = b.add_root_certificate(c);
                    }
                }
                b.build()
                    .map_err(|e| Error::internal(format!("cannot set up HTTPS ({e})")))
            })
            .await
    }

    /// A write: in `--dry-run` it is added to the plan and `None` is returned; otherwise it is
    /// sent like any request.
    pub async fn write(&self, req: Request) -> Result<Option<Response>> {
        if self.cfg.dry_run {
            self.attempted_writes.fetch_add(1, Ordering::Relaxed);
            if req.service == Service::Dataverse {
                self.dataverse_writes.fetch_add(1, Ordering::Relaxed);
            }
            let body = match &req.body {
                Some(Body::Json(v)) => redact::json(v),
                Some(Body::Form(f)) => Value::String(redact::form(f)),
                None => Value::Null,
            };
            let mut entry = json!({"method": req.method.as_str(), "url": req.url});
            if !body.is_null() {
                entry["body"] = body;
            }
            self.report.trace(
                1,
                &format!("dry run: would send {} {}", req.method.as_str(), req.url),
            );
            self.plan
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(entry);
            return Ok(None);
        }
        self.send(req).await.map(Some)
    }

    /// Sends with retries until success, a non-retryable answer, or the deadline.
    pub async fn send(&self, req: Request) -> Result<Response> {
        self.report.flush_preamble();
        if req.is_write() && req.service != Service::Login {
            self.attempted_writes.fetch_add(1, Ordering::Relaxed);
        }
        let mut attempt: u32 = 0;
        let start = Instant::now();
        // Once any attempt of a write may have been committed (its connection broke after the
        // request went out, or it got a 500/504), every error this call returns says so: a
        // later 503 does not undo an earlier commit, and the caller's clean-up keys on it.
        let mut maybe_committed = false;
        loop {
            let outcome = self.attempt(&req).await;
            let (retry_in, err) = match outcome {
                Ok(resp)
                    if (200..300).contains(&resp.status) || req.accept.contains(&resp.status) =>
                {
                    if req.is_write()
                        && req.service != Service::Login
                        && (200..300).contains(&resp.status)
                    {
                        self.writes.fetch_add(1, Ordering::Relaxed);
                        if req.service == Service::Dataverse {
                            self.dataverse_writes.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    return Ok(resp);
                }
                Ok(resp) if (300..400).contains(&resp.status) => {
                    let mut e = redirect_error(&req, &resp);
                    e.ambiguous = maybe_committed;
                    return Err(e);
                }
                Ok(resp) => {
                    let mut se = parse_service_error(req.service, &resp);
                    if resp.status == 403 {
                        se.caller = self.caller_of(&req).await;
                    }
                    let lock = req.retry_codes.iter().any(|c| se.has_code(c));
                    if req.is_write() && matches!(resp.status, 500 | 502 | 504) {
                        maybe_committed = true;
                    }
                    if !(retry::is_retryable_status(resp.status) || lock) {
                        let mut e = classify(&req, se);
                        e.ambiguous |= maybe_committed;
                        return Err(e);
                    }
                    let hinted = retry::retry_after(
                        resp.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                        SystemTime::now(),
                    );
                    let d = hinted.unwrap_or_else(|| {
                        retry::backoff(attempt, Duration::from_millis(200), Duration::from_secs(10))
                    });
                    (d, classify(&req, se))
                }
                // Only "no answer" is worth another try; a refused certificate or a missing
                // credential will not get better.
                Err(mut e) if e.kind != Kind::Timeout => {
                    e.ambiguous |= maybe_committed;
                    return Err(e);
                }
                Err(e) => (
                    retry::backoff(attempt, Duration::from_millis(200), Duration::from_secs(10)),
                    e,
                ),
            };
            attempt += 1;
            maybe_committed |= err.ambiguous;
            if req.max_attempts.is_some_and(|m| attempt >= m) {
                let mut e = err;
                e.ambiguous = maybe_committed;
                return Err(e.context(format!(
                    "gave up on {} {} after {attempt} attempt(s)",
                    req.method.as_str(),
                    path_of(&req.url)
                )));
            }
            if maybe_committed && req.stop_once_committed {
                let mut e = err;
                e.ambiguous = true;
                return Err(e);
            }
            if Instant::now() + retry_in > self.cfg.deadline {
                let mut e = err;
                e.ambiguous = maybe_committed;
                e.kind = if e.kind == Kind::Usage {
                    Kind::Usage
                } else {
                    Kind::Timeout
                };
                return Err(e.context(format!(
                    "gave up on {} {} after {attempt} attempt(s) in {:.1} s (--timeout {:?})",
                    req.method.as_str(),
                    path_of(&req.url),
                    start.elapsed().as_secs_f64(),
                    self.cfg.timeout
                ))
                .with_hint(format!(
                    "the service is throttling or unavailable: re-run the same command later (it resumes where it stopped): {}",
                    crate::hint::same_command()
                )));
            }
            self.report.trace(
                1,
                &format!(
                    "retrying {} {} in {} ms ({err})",
                    req.method.as_str(),
                    path_of(&req.url),
                    retry_in.as_millis()
                ),
            );
            tokio::time::sleep(retry_in).await;
        }
    }

    /// The claims of the token a request was sent with (already cached: it was just used).
    async fn caller_of(&self, req: &Request) -> Option<crate::error::Caller> {
        let token = match &req.auth {
            Auth::None => return None,
            Auth::Resource(r) => Box::pin(self.tokens.token(self, r)).await.ok()?,
            Auth::Token(t) => t.clone(),
        };
        crate::auth::token_caller(&token)
    }

    async fn attempt(&self, req: &Request) -> Result<Response> {
        let client = self.client().await?;
        let token = match &req.auth {
            Auth::None => None,
            Auth::Resource(r) => Some(Box::pin(self.tokens.token(self, r)).await?),
            Auth::Token(t) => Some(t.clone()),
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut b = client.request(req.method.reqwest(), &req.url);
        if let Some(t) = &token {
            b = b.header("Authorization", format!("Bearer {}", t.expose_secret()));
        }
        if req.service != Service::Login {
            b = b.header("client-request-id", &request_id);
        }
        for (k, v) in &req.headers {
            b = b.header(k, v);
        }
        let body_trace = match &req.body {
            Some(Body::Json(v)) => {
                b = b
                    .header("Content-Type", "application/json")
                    .body(serde_json::to_vec(v).expect("JSON value serialises"));
                Some(redact::json(v).to_string())
            }
            Some(Body::Form(f)) => {
                let enc = f
                    .iter()
                    .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                b = b
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(enc);
                Some(redact::form(f))
            }
            None => None,
        };
        let remaining = self.cfg.remaining();
        let per_attempt = req
            .attempt_timeout
            .unwrap_or(Duration::from_secs(100))
            .min(remaining.max(Duration::from_millis(1)));
        b = b.timeout(per_attempt);

        self.report
            .trace(1, &format!("→ {} {}", req.method.as_str(), req.url));
        if self.report.verbosity() >= 2 {
            if token.is_some() {
                self.report.trace(2, "  Authorization: (redacted)");
            }
            if req.service != Service::Login {
                self.report
                    .trace(2, &format!("  client-request-id: {request_id}"));
            }
            for (k, v) in &req.headers {
                self.report
                    .trace(2, &format!("  {k}: {}", redact::header(k, v)));
            }
            if let Some(t) = &body_trace {
                self.report.trace(2, &format!("  body: {t}"));
            }
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let t0 = Instant::now();
        let resp = b.send().await.map_err(|e| self.transport_error(req, e))?;
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(req, e))?
            .to_vec();
        self.report.trace(
            1,
            &format!(
                "← {status} {} {} ({} ms)",
                req.method.as_str(),
                path_of(&req.url),
                t0.elapsed().as_millis()
            ),
        );
        if self.report.verbosity() >= 2 && !body.is_empty() {
            let shown = match serde_json::from_slice::<Value>(&body) {
                Ok(v) => redact::json(&v).to_string(),
                Err(_) => format!("({} bytes, not JSON)", body.len()),
            };
            self.report.trace(2, &format!("  response: {shown}"));
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn transport_error(&self, req: &Request, e: reqwest::Error) -> Error {
        // Walk the source chain: certificate problems must read as such, not as "error sending request".
        let mut detail = e.to_string();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = src {
            detail = format!("{detail}: {s}");
            src = s.source();
        }
        let tls = detail.contains("certificate") || detail.contains("UnknownIssuer");
        if e.is_builder() {
            // The request could not even be built (a header value with a line break): no
            // answer will ever come, so this is not a fault to retry.
            return Error::internal(format!(
                "cannot build the request {} {} ({detail})",
                req.method.as_str(),
                path_of(&req.url)
            ));
        }
        let mut err = if tls {
            Error::auth(format!(
                "TLS to {} failed: the server's certificate is not trusted ({detail})",
                host_of(&req.url)
            ))
            .with_hint(
                "if a proxy or private CA signs this certificate, pass its root with --ca-file",
            )
        } else {
            Error::timeout(format!(
                "no answer from {} for {} {} ({detail})",
                host_of(&req.url),
                req.method.as_str(),
                path_of(&req.url)
            ))
        };
        // A write whose connection broke after it was sent may have been committed.
        err.ambiguous = req.is_write() && !e.is_connect();
        err
    }
}

/// The root certificates of `--ca-file`: a regular file (a FIFO must not block the tool) holding
/// at least one PEM certificate. A file with none is bad input (exit 2) — accepting it would
/// silently trust nothing new and fail later as an untrusted certificate. Read before the first
/// request (the client is built then), so a bad file sends nothing.
pub fn read_ca_file(ca: &std::path::Path) -> Result<Vec<reqwest::Certificate>> {
    read_ca_file_from(ca, "--ca-file")
}

/// [`read_ca_file`] for a file named by `source` (`--ca-file`, `REQUESTS_CA_BUNDLE`, …).
fn read_ca_file_from(ca: &std::path::Path, source: &str) -> Result<Vec<reqwest::Certificate>> {
    let shown = crate::output::sanitize(&ca.display().to_string()).into_owned();
    let pem = crate::fsutil::read_regular(ca, crate::auth::MAX_SMALL_FILE)
        .map_err(|e| Error::usage(format!("cannot read {source} {shown}: {e}")))?;
    let no_cert = |why: String| {
        Error::usage(format!("{source} {shown} holds no PEM certificate{why}")).with_hint(
            "give a file with one or more `-----BEGIN CERTIFICATE-----` blocks (the root of \
             the proxy or private CA)",
        )
    };
    let certs =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| no_cert(format!(" ({e})")))?;
    if certs.is_empty() {
        return Err(no_cert(String::new()));
    }
    Ok(certs)
}

/// A 3xx answer: never followed (the request would go, credentials and all, to the host the
/// answer names) and never retried (the same request gets the same answer). The message names
/// the status and the `Location` host only: the rest of a redirect URL can carry codes or
/// tokens. A sign-in that is redirected is exit 3, any other call exit 4.
fn redirect_error(req: &Request, resp: &Response) -> Error {
    let target = match resp.header("location") {
        Some(l) => match url::Url::parse(l).or_else(|_| url::Url::parse(&req.url)?.join(l)) {
            Ok(u) => format!(
                "to {}",
                crate::output::sanitize(&u.host_str().map_or_else(
                    || "a URL without a host".to_string(),
                    |h| match u.port() {
                        Some(p) => format!("{h}:{p}"),
                        None => h.to_string(),
                    }
                ))
            ),
            Err(_) => "to an unreadable Location".to_string(),
        },
        None => "without a Location".to_string(),
    };
    let message = format!(
        "{} {} on {} was answered {} (a redirect {target}); the tools follow no redirect, so nothing was sent there",
        req.method.as_str(),
        path_of(&req.url),
        host_of(&req.url),
        resp.status
    );
    let e = if req.service == Service::Login {
        Error::auth(message)
    } else {
        Error::refused(message)
    };
    e.with_hint(
        "no Microsoft endpoint redirects these calls: check --authority-host, --graph-url, \
         --dynamics-url, IDENTITY_ENDPOINT and any proxy between here and the service",
    )
}

/// Non-retryable transport errors are returned at once (a bad certificate will not get better).
fn classify(req: &Request, se: ServiceError) -> Error {
    let what = format!("{} {}", req.method.as_str(), path_for_humans(&req.url));
    Error::from_service(what, se)
}

/// The path and query of `url` as people read them: percent-decoded once (`$filter=appId eq
/// '…'`, not `%24filter=appId%20eq%20%27…%27`), so an error line shows the query readably, once.
/// The result is sanitised where it is printed.
pub fn path_for_humans(url: &str) -> String {
    percent_encoding::percent_decode_str(path_of(url))
        .decode_utf8_lossy()
        .into_owned()
}

/// The service's error body, in each service's shape (graph.md §7.1, F-16; dataverse.md §7.1).
pub fn parse_service_error(service: Service, resp: &Response) -> ServiceError {
    let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    let mut se = ServiceError {
        service: service.name(),
        status: resp.status,
        ..Default::default()
    };
    match service {
        Service::Login => {
            se.code = v["error"].as_str().unwrap_or_default().to_string();
            // The managed-identity endpoints answer `{"statusCode", "message"}` (App Service).
            se.message = v["error_description"]
                .as_str()
                .or_else(|| v["message"].as_str())
                .unwrap_or_default()
                .to_string();
            se.error_codes = v["error_codes"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            se.request_id = v["trace_id"].as_str().map(str::to_string);
            if let Some(c) = se.error_codes.first() {
                se.detail_code = Some(format!("AADSTS{c}"));
            }
        }
        Service::Graph | Service::Dataverse => {
            let e = &v["error"];
            se.code = e["code"].as_str().unwrap_or_default().to_string();
            se.message = e["message"].as_str().unwrap_or_default().to_string();
            se.detail_code = e["details"][0]["code"]
                .as_str()
                .or_else(|| e["innerError"]["code"].as_str())
                .map(str::to_string);
            se.request_id = resp
                .header("request-id")
                .or_else(|| resp.header("x-ms-service-request-id"))
                .or_else(|| resp.header("REQ_ID"))
                .or_else(|| e["innerError"]["request-id"].as_str())
                .map(str::to_string);
        }
    }
    if se.message.is_empty() && v.is_null() && !resp.body.is_empty() {
        se.message = String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)]).into_owned();
    }
    se
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The path and query of a URL, for messages (the host is in the tool's config).
pub fn path_of(url: &str) -> &str {
    match url.find("://") {
        Some(i) => match url[i + 3..].find('/') {
            Some(j) => &url[i + 3 + j..],
            None => "/",
        },
        None => url,
    }
}

fn host_of(url: &str) -> &str {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest.split('/').next().unwrap_or(rest)
}
