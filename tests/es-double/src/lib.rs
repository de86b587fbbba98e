//! # es-double — a loopback Elasticsearch 8.x security-API test double
//!
//! ## Why it exists
//!
//! opsguard snapshots Elasticsearch users and probes whether credentials
//! still authenticate (`GET /_security/_authenticate`), and its remedies
//! reset passwords and re-create users. Its tests need an Elasticsearch
//! server, but none can be installed on the machines this project builds
//! and tests on (no JVM distribution, no network beyond package
//! registries). This crate is the stand-in: a small HTTP server on
//! `127.0.0.1` that answers the security REST API the way an 8.x node with
//! security enabled and plain HTTP does, closely enough that the official
//! clients (the Python `elasticsearch` 8.x client, the Rust `elasticsearch`
//! crate) and opsguard itself cannot tell the difference for the endpoints
//! they use. Its conformance tests restate Elasticsearch's own YAML REST
//! tests for users, passwords, enable/disable and `_authenticate`.
//!
//! ## What it reproduces
//!
//! - **Transport**: binds `127.0.0.1` only; `TCP_NODELAY` on every accepted
//!   socket (as Elasticsearch sets it, so keep-alive clients never wait for
//!   a delayed ACK); HTTP/1.1 keep-alive.
//! - **Headers**: every response, errors included, carries
//!   `X-elastic-product: Elasticsearch` (official clients refuse servers
//!   without it) and `content-type: application/json`. Any `Accept` /
//!   `Content-Type` is accepted, including
//!   `application/vnd.elasticsearch+json; compatible-with=8`.
//! - **Authentication** of every request, before routing (8.x authenticates
//!   at the HTTP layer): `Authorization: Basic` against the reserved realm
//!   (`elastic`, `kibana`, `kibana_system`, `logstash_system`,
//!   `beats_system`, `apm_system`, `remote_monitoring_user`) and the native
//!   realm, and `Authorization: ApiKey base64(id:key)`. Failures are 401
//!   `security_exception`s with Elasticsearch's exact reasons
//!   (`unable to authenticate user [..] for REST request [..]`,
//!   `missing authentication credentials for REST request [..]`,
//!   `unable to authenticate with provided credentials and anonymous access
//!   is not allowed for this request` with `additional_unsuccessful_credentials`
//!   for API keys) and the two `WWW-Authenticate` challenges
//!   (`Basic realm="security", charset="UTF-8"` and `ApiKey`). Disabled
//!   users and invalidated or expired API keys get 401.
//! - **Authorization** with cluster privileges (`all`, `manage`, `monitor`,
//!   `manage_security`, `read_security`, `manage_api_key`,
//!   `manage_own_api_key`, action patterns such as `cluster:monitor/main`),
//!   the built-in `superuser` role and roles created through the role API.
//!   A denial is a 403 with Elasticsearch's message, e.g. `action
//!   [cluster:admin/xpack/security/user/put] is unauthorized for user
//!   [search] with effective roles [catalogue_read], this action is granted
//!   by the cluster privileges [manage_security,all]`. Users may always call
//!   `_authenticate` and change their own password; an API key is limited
//!   by its owner's roles as they were when it was created (and by its own
//!   `role_descriptors`), and keeps working after its owner is deleted, as
//!   in Elasticsearch.
//! - **Endpoints**: `GET|HEAD /`, `GET /_cluster/health`,
//!   `GET /_security/_authenticate`, the user API (put, get, delete,
//!   `_password`, `_enable`, `_disable`), the role API (put, get, delete)
//!   and the API key API (create, get, invalidate), with Elasticsearch's
//!   response bodies, status codes (`404 {}` for missing users/roles, `404
//!   {"found":false}` on delete, 404 for `GET /_security/api_key?id=` of an
//!   unknown key) and validation errors (`action_request_validation_exception`,
//!   `validation_exception`, `illegal_argument_exception`, `parse_exception`,
//!   `x_content_parse_exception`) worded as Elasticsearch words them.
//! - **Routing errors**: `400 {"error":"no handler found for uri [..] and
//!   method [..]"}` for unknown paths, `405` with an `Allow` header for a
//!   known path and wrong method, `404 index_not_found_exception` for
//!   `GET /{index}`, and 400 for unrecognized query parameters (with
//!   Elasticsearch's "did you mean" suggestions). `?pretty` pretty-prints.
//!
//! Secrets are never printed, logged or recorded: passwords and API key
//! secrets are kept only as salted SHA-256 digests, and
//! [`EsDouble::requests`] records the principal's name, never a credential.
//!
//! ## Use
//!
//! ```no_run
//! let es = es_double::EsDouble::start("elastic-password");
//! let url = es.url(); // http://127.0.0.1:PORT
//! // ... drive it with any HTTP client ...
//! es.fail_next("GET", "/_security/_authenticate", 503, 2); // next two calls fail
//! assert!(es.requests().iter().all(|r| r.principal.as_deref() != Some("nobody")));
//! ```
//!
//! The server runs on its own OS thread with its own tokio runtime, so it
//! works from synchronous tests and from any `#[tokio::test]`; dropping the
//! [`EsDouble`] stops the server and joins the thread.

mod engine;
mod error;
mod has_privileges;
mod store;
mod util;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::serve::ListenerExt;
use axum::Router;
use engine::{Engine, Reply};
use serde_json::Value;
use std::future::IntoFuture;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;

pub use engine::VERSION;

/// One request the double served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method, upper case (`GET`, `PUT`, ...).
    pub method: String,
    /// Request target as sent: path and query string (`/_security/user/joe?refresh=true`).
    pub path: String,
    /// HTTP status of the response.
    pub status: u16,
    /// The authenticated user name (for API key authentication, the key's
    /// owner), or `None` when the request was not authenticated (401, or a
    /// fault injected before authentication). Never a credential.
    pub principal: Option<String>,
}

/// An API key to seed with [`EsDouble::seed_api_key`].
#[derive(Clone)]
pub struct SeedApiKey {
    pub id: String,
    pub name: String,
    /// The key's secret (the part after `id:`). Never printed.
    pub secret: String,
    pub owner: String,
    /// Milliseconds since the epoch; now when `None`.
    pub creation_millis: Option<u64>,
    pub expiration_millis: Option<u64>,
    pub invalidated: bool,
}

impl std::fmt::Debug for SeedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedApiKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// A running Elasticsearch security-API double on `127.0.0.1`.
pub struct EsDouble {
    port: u16,
    engine: Arc<Engine>,
    /// Accepted sockets on which TCP_NODELAY was set and read back as set.
    nodelay_sockets: Arc<AtomicUsize>,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EsDouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsDouble")
            .field("url", &self.url())
            .field(
                "nodelay_sockets",
                &self.nodelay_sockets.load(Ordering::Relaxed),
            )
            .finish()
    }
}

impl EsDouble {
    /// Starts a double on a free port of 127.0.0.1 whose `elastic` user has
    /// `elastic_password`. Panics if no port can be bound.
    pub fn start(elastic_password: &str) -> EsDouble {
        match EsDouble::start_on(0, elastic_password) {
            Ok(d) => d,
            Err(e) => panic!("es-double: cannot listen on 127.0.0.1: {e}"),
        }
    }

    /// Starts a double on `127.0.0.1:port` (`0` picks a free port).
    pub fn start_on(port: u16, elastic_password: &str) -> io::Result<EsDouble> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let engine = Arc::new(Engine::new(elastic_password));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
        let served = engine.clone();
        let nodelay_sockets = Arc::new(AtomicUsize::new(0));
        let nodelay_counter = nodelay_sockets.clone();
        let thread = std::thread::Builder::new()
            .name(format!("es-double-{port}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(serve(
                    listener,
                    served,
                    nodelay_counter,
                    shutdown_rx,
                    ready_tx,
                ));
                rt.shutdown_timeout(Duration::from_millis(500));
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(io::Error::other(
                    "es-double: server thread exited before serving",
                ));
            }
        }
        Ok(EsDouble {
            port,
            engine,
            nodelay_sockets,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Seeds an API key with a known id and secret (a copy of a key that
    /// exists elsewhere, e.g. in a live cluster), owned by an existing user
    /// and limited by that user's roles. Errors when the owner is unknown.
    /// The secret is kept only as a salted digest, like every other.
    pub fn seed_api_key(&self, key: &SeedApiKey) -> Result<(), String> {
        self.engine.with_store(|s| s.seed_api_key(key))
    }

    /// Every request served so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.engine.requests()
    }

    pub fn clear_requests(&self) {
        self.engine.clear_requests()
    }

    /// Fault injection: the next `times` requests whose method is `method`
    /// (case-insensitive) and whose path starts with `path_prefix` are
    /// answered with `status` and an Elasticsearch-shaped error body, without
    /// being authenticated or executed. A 401 carries the `WWW-Authenticate`
    /// challenges like a real authentication failure. Faults registered
    /// earlier are consumed first.
    pub fn fail_next(&self, method: &str, path_prefix: &str, status: u16, times: usize) {
        self.engine.fail_next(method, path_prefix, status, times)
    }
}

impl Drop for EsDouble {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    engine: Arc<Engine>,
    nodelay_sockets: Arc<AtomicUsize>,
    shutdown: watch::Receiver<bool>,
    ready: std::sync::mpsc::Sender<io::Result<()>>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    // Elasticsearch sets TCP_NODELAY on its HTTP sockets.
    let listener = listener.tap_io(move |tcp| {
        if tcp.set_nodelay(true).is_ok() && tcp.nodelay().unwrap_or(false) {
            nodelay_sockets.fetch_add(1, Ordering::Relaxed);
        }
    });
    let app = Router::new().fallback(handle).with_state(engine);
    let mut graceful = shutdown.clone();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = graceful.wait_for(|stop| *stop).await;
        })
        .into_future();
    let _ = ready.send(Ok(()));
    tokio::pin!(server);
    let mut stop = shutdown;
    tokio::select! {
        _ = &mut server => {}
        _ = stop.wait_for(|stop| *stop) => {
            // Let in-flight requests finish; idle keep-alive connections close at once.
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut server).await;
        }
    }
}

const MAX_BODY: usize = 100 * 1024 * 1024;

async fn handle(State(engine): State<Arc<Engine>>, req: Request) -> Response {
    let method = req.method().as_str().to_ascii_uppercase();
    let uri = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let authorization = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY).await;
    let reply = match body {
        Ok(bytes) => engine.handle(&method, &uri, authorization.as_deref(), &bytes),
        Err(_) => Reply {
            status: 413,
            body: Some(serde_json::json!({
                "error": format!("request body is larger than [{MAX_BODY}] bytes"),
                "status": 413
            })),
            headers: Vec::new(),
            pretty: false,
        },
    };
    to_response(reply)
}

fn to_response(reply: Reply) -> Response {
    let body = match &reply.body {
        Some(v) if reply.pretty => {
            let mut s = String::new();
            pretty(v, 0, &mut s);
            s.push('\n');
            Body::from(s)
        }
        Some(v) => Body::from(v.to_string()),
        None => Body::empty(),
    };
    let mut builder = Response::builder()
        .status(reply.status)
        .header("X-elastic-product", "Elasticsearch")
        .header("content-type", "application/json");
    for (k, v) in &reply.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(Body::from("{}"));
        *r.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// Jackson's default pretty printer, as `?pretty` renders: two-space
/// indents, `"key" : value`, `{ }` and `[ ]` for empty containers.
fn pretty(v: &Value, depth: usize, out: &mut String) {
    let pad = |d: usize, out: &mut String| out.push_str(&"  ".repeat(d));
    match v {
        Value::Object(m) if m.is_empty() => out.push_str("{ }"),
        Value::Array(a) if a.is_empty() => out.push_str("[ ]"),
        Value::Object(m) => {
            out.push_str("{\n");
            for (i, (k, val)) in m.iter().enumerate() {
                pad(depth + 1, out);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(" : ");
                pretty(val, depth + 1, out);
                if i + 1 < m.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            pad(depth, out);
            out.push('}');
        }
        Value::Array(a) => {
            out.push_str("[\n");
            for (i, val) in a.iter().enumerate() {
                pad(depth + 1, out);
                pretty(val, depth + 1, out);
                if i + 1 < a.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            pad(depth, out);
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn accepted_sockets_have_tcp_nodelay() {
        let es = EsDouble::start("pw-nodelay");
        assert_eq!(es.nodelay_sockets.load(Ordering::Relaxed), 0);
        for _ in 0..2 {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", es.port())).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            assert!(out.starts_with("HTTP/1.1 401"), "{out}");
        }
        assert_eq!(es.nodelay_sockets.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn pretty_prints_like_jackson() {
        let v = serde_json::json!({"a": [], "b": {}, "c": [1, {"d": "e"}]});
        let mut s = String::new();
        pretty(&v, 0, &mut s);
        assert_eq!(s, "{\n  \"a\" : [ ],\n  \"b\" : { },\n  \"c\" : [\n    1,\n    {\n      \"d\" : \"e\"\n    }\n  ]\n}");
    }
}
