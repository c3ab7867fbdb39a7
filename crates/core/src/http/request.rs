//! What a request is, before any byte is sent: the service it goes to, its method, URL, how it is
//! authorised (a resource whose token the API client supplies, or none), its body and the
//! per-request retry rules; and what came back ([`Response`], and a refusal parsed into a
//! [`ServiceError`] in each service's shape). Typed clients (graph, dataverse) build these.
//! Their `Debug` is written by hand so that a `{:?}` can never print a secret: header values
//! go through [`redact::header`], bodies show their size only.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

use super::redact;
use crate::error::{Error, Result, ServiceError};

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
    pub(crate) fn reqwest(self) -> reqwest::Method {
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

/// `Debug` prints the kind and size only: a form carries `client_secret`, `client_assertion`,
/// `refresh_token` or `device_code`, a JSON body may carry a secret too.
#[derive(Clone)]
pub enum Body {
    Json(Value),
    /// Form fields; values of secret fields are redacted in traces.
    Form(Vec<(String, String)>),
}

/// `Debug` (manual, below) redacts what a log must never hold: header values through
/// [`redact::header`] (`X-IDENTITY-HEADER`, `Authorization`), the body by its size only.
#[derive(Clone)]
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
    /// Sent straight to its host, never through `HTTP_PROXY` / `HTTPS_PROXY`: the
    /// managed-identity endpoints (see [`Request::no_proxy`]).
    pub no_proxy: bool,
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
            no_proxy: false,
        }
    }
    /// Never through a proxy from the environment. For the managed-identity endpoints: they are
    /// local to the machine (IMDS at 169.254.169.254, App Service's `IDENTITY_ENDPOINT`), plain
    /// http, and the request carries `X-IDENTITY-HEADER` and is answered with a token, none of
    /// which a proxy may see; Microsoft's IMDS documentation says proxies must be bypassed
    /// (<https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service#proxies>;
    /// the Azure SDK discussion: Azure/azure-sdk-for-net#18967).
    pub fn no_proxy(mut self) -> Self {
        self.no_proxy = true;
        self
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

/// `Debug` (manual, below) shows the body's size only: it holds tokens (`access_token`,
/// `refresh_token`) and secrets (`secretText`).
#[derive(Clone)]
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

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Json(v) => write!(f, "Json({} bytes)", v.to_string().len()),
            Body::Form(fields) => write!(f, "Form({} fields)", fields.len()),
        }
    }
}

/// Header values as a log may show them.
fn redacted_headers(headers: &[(String, String)]) -> Vec<(&str, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str(), redact::header(k, v)))
        .collect()
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("service", &self.service)
            .field("auth", &self.auth)
            .field("headers", &redacted_headers(&self.headers))
            .field("body", &self.body)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("accept", &self.accept)
            .field("retry_codes", &self.retry_codes)
            .field("stop_once_committed", &self.stop_once_committed)
            .field("max_attempts", &self.max_attempts)
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &redacted_headers(&self.headers))
            .field("body", &format_args!("{} bytes", self.body.len()))
            .finish()
    }
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

pub(crate) fn host_of(url: &str) -> &str {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest.split('/').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret_of_a_request_or_an_answer() {
        let req = Request::new(
            Method::Post,
            Service::Login,
            "https://login.example/t/token",
        )
        .header("X-IDENTITY-HEADER", "identity-header-value")
        .header("Accept", "application/json")
        .form(vec![
            ("grant_type".into(), "client_credentials".into()),
            ("client_secret".into(), "client-secret-value".into()),
            ("client_assertion".into(), "assertion-value".into()),
        ]);
        let shown = format!("{req:?} {req:#?}");
        for secret in [
            "identity-header-value",
            "client-secret-value",
            "assertion-value",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("Form(3 fields)"), "{shown}");
        assert!(shown.contains("application/json"), "{shown}");
        let json = Request::new(Method::Post, Service::Graph, "https://graph.example/x")
            .json(serde_json::json!({"passwordCredential": {"secretText": "json-secret"}}));
        assert!(!format!("{json:?}").contains("json-secret"));

        let resp = Response {
            status: 200,
            headers: vec![("Set-Cookie".into(), "session-cookie".into())],
            body: br#"{"access_token":"token-value","secretText":"secret-text"}"#.to_vec(),
        };
        let shown = format!("{resp:?}");
        for secret in ["session-cookie", "token-value", "secret-text"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("57 bytes"), "{shown}");
    }
}
