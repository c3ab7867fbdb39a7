//! HTTP plumbing: the two routers, the request pipeline (log, faults, latency), the control
//! routes, and a listener (plain or TLS) whose connections can be dropped mid-request (for the
//! `drop` and `lost_response` faults).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::exchange::{Ctx, Reply};
use crate::faults::{Fault, FaultKind, ScriptedFault, random_fault, take_scripted};
use crate::state::{SharedState, Sim};
use crate::util::{lock, new_guid, now_ms, rfc3339};

/// Which listener a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Which {
    Main,
    Dynamics,
}

// ---------- connections that can be killed ----------

/// Per-connection control: once `killed`, every read sees EOF and every write fails, so hyper
/// closes the socket without having sent a byte of the response.
#[derive(Clone, Debug, Default)]
pub struct ConnCtl(pub Arc<AtomicBool>);

impl ConnCtl {
    pub fn kill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn killed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The transport under a [`SimIo`]: plain TCP, or TLS (the handshake is driven lazily by the
/// first read or write, so a slow or non-TLS client never blocks the accept loop).
enum Stream {
    Plain(TcpStream),
    Handshake(Box<tokio_rustls::Accept<TcpStream>>),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Failed,
}

trait ReadWrite: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ReadWrite for T {}

/// A TCP (or TLS over TCP) stream wrapped with a [`ConnCtl`].
pub struct SimIo {
    stream: Stream,
    ctl: ConnCtl,
}

fn broken() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "dropped by fault")
}

impl SimIo {
    /// Finish the TLS handshake if one is pending; then the byte stream to use.
    fn ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut dyn ReadWrite>> {
        if let Stream::Handshake(accept) = &mut self.stream {
            match Pin::new(accept.as_mut()).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(tls)) => self.stream = Stream::Tls(Box::new(tls)),
                Poll::Ready(Err(e)) => {
                    self.stream = Stream::Failed;
                    return Poll::Ready(Err(e));
                }
            }
        }
        Poll::Ready(match &mut self.stream {
            Stream::Plain(s) => Ok(s),
            Stream::Tls(s) => Ok(s.as_mut()),
            Stream::Handshake(_) | Stream::Failed => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "TLS handshake failed",
            )),
        })
    }
}

impl AsyncRead for SimIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.ctl.killed() {
            return Poll::Ready(Ok(()));
        }
        match me.ready(cx) {
            Poll::Ready(Ok(s)) => Pin::new(s).poll_read(cx, buf),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for SimIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.ctl.killed() {
            return Poll::Ready(Err(broken()));
        }
        match me.ready(cx) {
            Poll::Ready(Ok(s)) => Pin::new(s).poll_write(cx, buf),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.ctl.killed() {
            return Poll::Ready(Err(broken()));
        }
        match me.ready(cx) {
            Poll::Ready(Ok(s)) => Pin::new(s).poll_flush(cx),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let killed = me.ctl.killed();
        match &mut me.stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            // a killed TLS connection ends with a bare TCP FIN, no close_notify: the client
            // sees the stream cut, as with a dropped connection
            Stream::Tls(s) if killed => Pin::new(s.get_mut().0).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Handshake(_) | Stream::Failed => Poll::Ready(Ok(())),
        }
    }
}

/// A listener producing [`SimIo`] connections (TLS ones when it has an acceptor).
pub struct SimListener {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl axum::serve::Listener for SimListener {
    type Io = SimIo;
    type Addr = std::net::SocketAddr;
    async fn accept(&mut self) -> (SimIo, std::net::SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let stream = match &self.tls {
                        Some(acceptor) => Stream::Handshake(Box::new(acceptor.accept(stream))),
                        None => Stream::Plain(stream),
                    };
                    return (
                        SimIo {
                            stream,
                            ctl: ConnCtl::default(),
                        },
                        addr,
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }
    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, SimListener>>
    for ConnCtl
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, SimListener>) -> Self {
        stream.io().ctl.clone()
    }
}

/// Serve a router until `shutdown` resolves; over TLS when `tls` is given.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let _ = axum::serve(
        SimListener { listener, tls },
        router.into_make_service_with_connect_info::<ConnCtl>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
}

// ---------- routers ----------

fn control_routes() -> Router<SharedState> {
    Router::new()
        .route("/_sim/requests", get(get_requests).delete(delete_requests))
        .route("/_sim/state", get(get_state))
        .route(
            "/_sim/faults",
            axum::routing::post(post_faults).get(get_faults),
        )
        .route("/_sim/reset", axum::routing::post(post_reset))
        .route(
            "/_sim/fail-next-publish",
            axum::routing::post(post_fail_next_publish),
        )
        .route(
            "/_sim/soft-delete-user",
            axum::routing::post(post_soft_delete_user),
        )
}

/// The router of the main listener: login (token endpoint) and Graph under `/v1.0`.
pub fn app(shared: SharedState) -> Router {
    control_routes()
        .fallback(|State(s): State<SharedState>, req: Request| async move {
            pipeline(s, Which::Main, req).await
        })
        .with_state(shared)
}

/// The router of the Dataverse org listener (`/api/data/v9.2`).
pub fn dynamics_app(shared: SharedState) -> Router {
    control_routes()
        .fallback(|State(s): State<SharedState>, req: Request| async move {
            pipeline(s, Which::Dynamics, req).await
        })
        .with_state(shared)
}

async fn get_requests(State(s): State<SharedState>) -> Response {
    axum::Json(Value::Array(lock(&s.log).clone())).into_response()
}
async fn delete_requests(State(s): State<SharedState>) -> Response {
    lock(&s.log).clear();
    StatusCode::NO_CONTENT.into_response()
}
async fn get_state(State(s): State<SharedState>) -> Response {
    axum::Json(s.state_json()).into_response()
}
async fn get_faults(State(s): State<SharedState>) -> Response {
    axum::Json(serde_json::to_value(&*lock(&s.faults)).unwrap_or(Value::Null)).into_response()
}
async fn post_faults(State(s): State<SharedState>, body: axum::body::Bytes) -> Response {
    match add_fault(&s, serde_json::from_slice(&body).unwrap_or(Value::Null)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": e}))).into_response(),
    }
}
/// `POST /_sim/fail-next-publish {"message": "..."}`: the next async publish job ends failed.
async fn post_fail_next_publish(
    State(s): State<SharedState>,
    axum::Json(v): axum::Json<Value>,
) -> Response {
    let msg = v
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("Publish failed.")
        .to_string();
    *lock(&s.fail_next_publish) = Some(msg);
    StatusCode::NO_CONTENT.into_response()
}

async fn post_reset(State(s): State<SharedState>) -> Response {
    s.reset();
    StatusCode::NO_CONTENT.into_response()
}

async fn post_soft_delete_user(State(s): State<SharedState>, body: axum::body::Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(app) = v.get("applicationid").and_then(Value::as_str) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "body must be {\"applicationid\": \"<guid>\"}"})),
        )
            .into_response();
    };
    let done = {
        let mut t = lock(&s.tenant);
        crate::dataverse::soft_delete_application_user(&mut t.dataverse, app)
    };
    if !done {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no active application user for {app}")})),
        )
            .into_response();
    }
    s.save();
    StatusCode::NO_CONTENT.into_response()
}

/// Add a scripted fault (body of `POST /_sim/faults`; an array adds several).
pub fn add_fault(sim: &Sim, v: Value) -> Result<(), String> {
    let list: Vec<ScriptedFault> = match v {
        Value::Array(_) => serde_json::from_value(v).map_err(|e| e.to_string())?,
        other => vec![serde_json::from_value(other).map_err(|e| e.to_string())?],
    };
    lock(&sim.faults).extend(list);
    Ok(())
}

// ---------- the pipeline ----------

fn fault_reply(service: &str, f: &Fault, ctx: &Ctx) -> Reply {
    let mut r = if let Some(b) = &f.body {
        Reply::json(f.status, b.clone())
    } else {
        match service {
            "graph" => {
                let (code, msg) = match f.status {
                    429 => ("TooManyRequests", "Please retry again later."),
                    503 => (
                        "serviceNotAvailable",
                        "The service is temporarily unavailable. Please retry after a delay.",
                    ),
                    504 => (
                        "GatewayTimeout",
                        "The gateway did not receive a timely response.",
                    ),
                    409 => (
                        "Directory_ConcurrencyViolation",
                        "Another object with the same value for property proxyAddresses already exists.",
                    ),
                    404 => (
                        "Request_ResourceNotFound",
                        "Resource does not exist or one of its queried reference-property objects are not present.",
                    ),
                    _ => ("UnknownError", "An error occurred."),
                };
                crate::graph::error_reply(f.status, code, msg, ctx)
            }
            "dataverse" => {
                let (code, msg) = match f.status {
                    429 => (
                        "0x80072322",
                        "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
                    ),
                    400 => (
                        "0x80090412",
                        "Cannot start the requested operation because there is an entity customization running at this moment.",
                    ),
                    _ => ("", "The service is temporarily unavailable."),
                };
                crate::dataverse::error_reply(f.status, code, msg)
            }
            _ => Reply::json(
                f.status,
                json!({"error": "temporarily_unavailable", "error_description": "AADSTS90014: The service is temporarily unavailable. Retry the request.", "error_codes": [90014]}),
            ),
        }
    };
    if let Some(ra) = &f.retry_after {
        r = r.header("retry-after", ra.clone());
    }
    r
}

async fn pipeline(sim: SharedState, which: Which, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().map(str::to_string);
    let method = parts.method.as_str().to_string();
    let service = match which {
        Which::Dynamics => "dataverse",
        Which::Main if path == "/v1.0" || path.starts_with("/v1.0/") => "graph",
        Which::Main => "login",
    };
    let seq = sim.next_seq();
    let ctl = parts
        .extensions
        .get::<ConnectInfo<ConnCtl>>()
        .map(|c| c.0.clone());
    let hdr = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut entry = json!({
        "seq": seq, "service": service, "method": method, "path": path,
        "query": raw_query, "status": null, "user_agent": hdr("user-agent"),
        "client_request_id": hdr("client-request-id"), "time": rfc3339(now_ms()), "fault": null
    });

    let fault = if sim.opts.stall_at == Some(seq) {
        Some(Fault {
            kind: FaultKind::Stall,
            status: 0,
            retry_after: None,
            body: None,
        })
    } else {
        take_scripted(&mut lock(&sim.faults), &method, &path).or_else(|| {
            random_fault(
                sim.opts.fault_seed,
                seq,
                sim.opts.fault_rate,
                sim.opts.retry_after_secs,
            )
        })
    };
    if let Some(f) = &fault {
        entry["fault"] = json!(f.label());
    }
    if sim.opts.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(sim.opts.latency_ms)).await;
    }
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let ctx = Ctx {
        method: method.clone(),
        path: path.clone(),
        query: crate::odata::parse_query(raw_query.as_deref()),
        raw_query: raw_query.clone(),
        headers: parts.headers.clone(),
        body,
        request_id: new_guid(),
        client_request_id: hdr("client-request-id"),
    };
    let kind = fault.as_ref().map(|f| f.kind.clone());
    let reply = match (&kind, &fault) {
        (Some(FaultKind::Stall), _) => {
            lock(&sim.log).push(entry);
            std::future::pending::<()>().await;
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        (Some(FaultKind::Drop), _) => {
            lock(&sim.log).push(entry);
            if let Some(c) = &ctl {
                c.kill();
            }
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        (Some(FaultKind::Status), Some(f)) => fault_reply(service, f, &ctx),
        _ => match service {
            "graph" => crate::graph::handle(&sim, &ctx),
            "dataverse" => crate::dataverse::handle(&sim, &ctx).await,
            // The managed-identity endpoints and the discovery documents sit beside the token
            // endpoint: sign-ins too.
            _ => match crate::credentials::MiProtocol::of_path(&path) {
                Some(proto) => crate::credentials::managed_identity(&sim, proto, &ctx),
                None => crate::discovery::handle(&sim, &ctx).unwrap_or_else(|| {
                    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
                    crate::token::handle(&sim, &segs, &ctx)
                }),
            },
        },
    };
    let mut reply = reply;
    if service == "graph" {
        reply = reply.header("request-id", ctx.request_id.clone());
        if let Some(c) = &ctx.client_request_id {
            reply = reply.header("client-request-id", c.clone());
        }
    }
    if service == "dataverse" {
        reply = reply
            .header("odata-version", "4.0")
            .header("req_id", ctx.request_id.clone());
        if reply
            .headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/json")
        {
            reply = reply.header("content-type", "application/json; odata.metadata=minimal");
        }
    }
    reply = reply.header(
        "date",
        httpdate::fmt_http_date(std::time::SystemTime::now()),
    );
    entry["status"] = json!(reply.status);
    lock(&sim.log).push(entry);
    if method != "GET" && reply.status < 400 {
        sim.save();
    }
    if kind == Some(FaultKind::LostResponse) {
        if let Some(c) = &ctl {
            c.kill();
        }
    }
    reply.into_response()
}
