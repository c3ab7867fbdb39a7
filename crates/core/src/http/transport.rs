//! The transport: one lazily built reqwest client (rustls) per process that sends a
//! [`Request`] and retries it by the [`policy`](super::policy) until success, a failure another
//! attempt would repeat, or the tool's deadline. It follows no redirect, reads no answer past
//! [`MAX_BODY`], adds `--ca-file`'s roots, puts a `client-request-id` on every service call,
//! traces every attempt with each secret redacted, parses refusals into [`ServiceError`]s and
//! keeps the write [`Ledger`].
//!
//! It knows nothing about signing in: a request that names a resource (`Auth::Resource`) gets
//! its bearer token from the [`TokenSource`] the caller passes (the API client, `crate::Http`,
//! answers from the credential chain), and the sign-in requests themselves pass [`NoTokens`].

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::ledger::Ledger;
use super::policy::{self, Attempt, Decision, GiveUp, Outcome};
use super::redact;
use super::request::{
    Auth, Body, Request, Response, Service, host_of, parse_service_error, path_for_humans, path_of,
};
use crate::error::{Error, Kind, Result, ServiceError};
use crate::output::Reporter;

/// What the transport needs to know of the run's configuration (and nothing about who signs in).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The tool's name, for the user agent `marketo-s2s/<version> <tool>`.
    pub tool: &'static str,
    /// Extra root certificates to trust (`--ca-file`, `REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`).
    pub ca_file: Option<PathBuf>,
    /// Where `ca_file` came from, for messages.
    pub ca_file_source: &'static str,
    /// `--timeout`, for the message that gives up.
    pub timeout: Duration,
    /// The one deadline every attempt and pause fits in.
    pub deadline: Instant,
}

/// Where a request that names a resource (`Auth::Resource`) gets its bearer token.
pub trait TokenSource {
    /// A token for `resource` (`https://graph.microsoft.com`, an org URL).
    fn token_for(&self, resource: &str) -> impl Future<Output = Result<SecretString>>;
}

/// The token source of requests that carry no token of the chain: the sign-in requests.
pub struct NoTokens;

impl TokenSource for NoTokens {
    async fn token_for(&self, resource: &str) -> Result<SecretString> {
        Err(Error::internal(format!(
            "a sign-in request asked for a token for {resource}"
        )))
    }
}

/// One per process.
pub struct Transport {
    settings: Settings,
    report: Arc<Reporter>,
    client: OnceCell<reqwest::Client>,
    /// The same client without any proxy, for [`Request::no_proxy`] requests.
    direct_client: OnceCell<reqwest::Client>,
    ledger: Ledger,
}

impl Transport {
    pub fn new(settings: Settings, report: Arc<Reporter>) -> Self {
        Transport {
            settings,
            report,
            client: OnceCell::new(),
            direct_client: OnceCell::new(),
            ledger: Ledger::default(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    pub fn reporter(&self) -> &Reporter {
        &self.report
    }
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The client is built on first use, so `--help` and bad input never pay for TLS set-up;
    /// `direct` is the one that ignores the environment's proxy ([`Request::no_proxy`]).
    async fn client(&self, direct: bool) -> Result<&reqwest::Client> {
        let cell = if direct {
            &self.direct_client
        } else {
            &self.client
        };
        cell.get_or_try_init(|| async {
            let mut b = reqwest::Client::builder()
                .user_agent(format!(
                    "marketo-s2s/{} {}",
                    env!("CARGO_PKG_VERSION"),
                    self.settings.tool
                ))
                .connect_timeout(Duration::from_secs(15))
                .pool_idle_timeout(Duration::from_secs(30))
                // No endpoint these tools talk to redirects an API call or a sign-in, and
                // following one re-sends the request — a client secret, a signed assertion,
                // the managed-identity header — to whatever host the answer names. A 3xx is
                // an error instead (`send`).
                .redirect(reqwest::redirect::Policy::none());
            if direct {
                b = b.no_proxy();
            }
            if let Some(ca) = &self.settings.ca_file {
                let certs = read_ca_file_from(ca, self.settings.ca_file_source)?;
                for c in certs {
                    b = b.add_root_certificate(c);
                }
            }
            b.build()
                .map_err(|e| Error::internal(format!("cannot set up HTTPS ({e})")))
        })
        .await
    }

    /// A write of `--dry-run`: added to the plan, not sent.
    pub fn plan(&self, req: &Request) {
        self.report.trace(
            1,
            &format!("dry run: would send {} {}", req.method.as_str(), req.url),
        );
        self.ledger.plan(req);
    }

    /// Sends `req`, retrying as [`policy::decide`] says, with the tokens of `tokens`.
    pub async fn send(&self, req: Request, tokens: &impl TokenSource) -> Result<Response> {
        // The target line, if no other line has said it yet.
        self.report.flush_preamble();
        self.ledger.sending(&req);
        let start = Instant::now();
        let mut committed = false;
        let mut number: u32 = 0;
        loop {
            let outcome = self.attempt(&req, tokens).await;
            let attempt = Attempt {
                number,
                committed,
                now: Instant::now(),
                wall: SystemTime::now(),
                jitter: rand::random::<f64>(),
            };
            let seen = match &outcome {
                Ok(resp) => Outcome::Answered(resp),
                Err(e) => Outcome::NoAnswer(e),
            };
            let decision = policy::decide(&req, seen, &attempt, self.settings.deadline);
            let resp = match (decision, outcome) {
                (Decision::Accept, Ok(resp)) => {
                    self.ledger.answered(&req, resp.status);
                    return Ok(resp);
                }
                (_, outcome) => outcome,
            };
            let mut err = failure(&req, resp);
            let made = number + 1;
            match decision {
                // An accepted answer was returned above; an error is never accepted.
                Decision::Accept => return Err(err),
                Decision::Fail { committed } => {
                    err.ambiguous = committed;
                    return Err(err);
                }
                Decision::GiveUp { why, committed } => {
                    err.ambiguous = committed;
                    return Err(match why {
                        GiveUp::Committed => err,
                        GiveUp::Attempts => err.context(format!(
                            "gave up on {} {} after {made} attempt(s)",
                            req.method.as_str(),
                            path_of(&req.url)
                        )),
                        GiveUp::Deadline => {
                            if err.kind != Kind::Usage {
                                err.kind = Kind::Timeout;
                            }
                            err.context(format!(
                                "gave up on {} {} after {made} attempt(s) in {:.1} s (--timeout {:?})",
                                req.method.as_str(),
                                path_of(&req.url),
                                start.elapsed().as_secs_f64(),
                                self.settings.timeout
                            ))
                            .with_hint(format!(
                                "the service is throttling or unavailable: re-run the same command later (it resumes where it stopped): {}",
                                crate::hint::same_command()
                            ))
                        }
                    });
                }
                Decision::Retry {
                    after,
                    committed: c,
                } => {
                    committed = c;
                    self.report.trace(
                        1,
                        &format!(
                            "retrying {} {} in {} ms ({err})",
                            req.method.as_str(),
                            path_of(&req.url),
                            after.as_millis()
                        ),
                    );
                    tokio::time::sleep(after).await;
                }
            }
            number += 1;
        }
    }

    async fn attempt(&self, req: &Request, tokens: &impl TokenSource) -> Result<Response> {
        let client = self.client(req.no_proxy).await?;
        let token = match &req.auth {
            Auth::None => None,
            Auth::Resource(r) => Some(tokens.token_for(r).await?),
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
        let remaining = self
            .settings
            .deadline
            .saturating_duration_since(Instant::now());
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
        self.ledger.attempt_sent();
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
        let body = self.read_body(req, resp).await?;
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

    /// The answer's body, read chunk by chunk up to [`MAX_BODY`]: a larger one is refused as
    /// soon as it is announced (`Content-Length`) or once the cap is reached, without reading
    /// the rest.
    async fn read_body(&self, req: &Request, mut resp: reqwest::Response) -> Result<Vec<u8>> {
        if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(too_large(req));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.transport_error(req, e))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_large(req));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
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

/// The most of an answer's body that is read (16 MiB). The largest answers these tools get are
/// pages of a Graph or Dataverse list — at most a few MiB even at 999 objects a page, and most
/// are a few KiB. Anything larger is a broken proxy or a hostile endpoint streaming without
/// end, which, read whole, would fill memory and kill the run after real writes with the
/// document unsaved.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// An answer past [`MAX_BODY`]: exit 1, as any answer the tools cannot read, and never retried
/// (the same endpoint would send the same). A write that got it may have been committed.
fn too_large(req: &Request) -> Error {
    let mut e = Error::internal(format!(
        "{} {} on {} was answered with a body larger than {} MiB, more than any answer of the \
         service; it was not read",
        req.method.as_str(),
        path_of(&req.url),
        host_of(&req.url),
        MAX_BODY / (1024 * 1024)
    ))
    .with_hint(
        "check --authority-host, --graph-url, --dynamics-url, IDENTITY_ENDPOINT and any proxy \
         between here and the service",
    );
    e.ambiguous = req.is_write();
    e
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
    let pem = crate::fsutil::read_regular(ca, crate::fsutil::MAX_SMALL_FILE)
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

/// A service's refusal of `req`, as the error a tool reports (`GET /path: graph answered …`).
fn classify(req: &Request, se: ServiceError) -> Error {
    let what = format!("{} {}", req.method.as_str(), path_for_humans(&req.url));
    Error::from_service(what, se)
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The error of a failed attempt: the transport's own, a redirect refused, or the service's
/// refusal.
fn failure(req: &Request, outcome: Result<Response>) -> Error {
    match outcome {
        Err(e) => e,
        Ok(resp) if (300..400).contains(&resp.status) => redirect_error(req, &resp),
        Ok(resp) => classify(req, parse_service_error(req.service, &resp)),
    }
}
