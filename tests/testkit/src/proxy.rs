//! A loopback HTTP proxy that injects faults, to put in front of the ES
//! double or ministack: answer 503/429 (Elasticsearch) or 500 /
//! `ThrottlingException` (AWS) instead of the server, delay a request, or
//! hang — accept it and never answer — all chosen per request by method and
//! path prefix, or by AWS operation (`X-Amz-Target`, e.g.
//! `secretsmanager.UpdateSecretVersionStage`).
//!
//! ```no_run
//! # use opsguard_testkit::proxy::{FaultProxy, Fault, Match};
//! let proxy = FaultProxy::start("http://127.0.0.1:9200");
//! proxy.add(Match::path("GET", "/_cluster/health"), Fault::Status(503), None);
//! // … point opsguard at proxy.url() …
//! assert!(proxy.hits("GET /_cluster/health") > 0);
//! ```
//!
//! Rules can be added and cleared while the proxy runs (a fault "after the
//! command" is a rule added by the command itself through [`FaultProxy::control_file`]).
//! Only loopback upstreams are accepted; every wait is bounded; the proxy's
//! threads stop when it is dropped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Which requests a rule applies to.
#[derive(Clone, Debug)]
pub enum Match {
    /// Method (or `*`) and a path prefix (the query string is ignored).
    Path { method: String, prefix: String },
    /// An AWS JSON-protocol operation: the `X-Amz-Target` header ends with
    /// it (`UpdateSecretVersionStage`, or `secretsmanager.` for a service).
    AwsTarget(String),
    /// Every request.
    Any,
}

impl Match {
    pub fn path(method: &str, prefix: &str) -> Match {
        Match::Path {
            method: method.to_owned(),
            prefix: prefix.to_owned(),
        }
    }
    pub fn aws(target: &str) -> Match {
        Match::AwsTarget(target.to_owned())
    }
    fn matches(&self, req: &Request) -> bool {
        match self {
            Match::Any => true,
            Match::Path { method, prefix } => {
                (method == "*" || method.eq_ignore_ascii_case(&req.method))
                    && req.path().starts_with(prefix.as_str())
            }
            Match::AwsTarget(t) => req
                .header("x-amz-target")
                .is_some_and(|h| h.ends_with(t.as_str()) || h.starts_with(t.as_str())),
        }
    }
}

/// What to do instead of (or before) forwarding.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and an Elasticsearch-shaped error body.
    Status(u16),
    /// Answer 400 with AWS's `ThrottlingException` (JSON protocol).
    AwsThrottling,
    /// Answer 500 with AWS's `InternalFailure` (JSON protocol).
    AwsInternal,
    /// Forward after this delay.
    Delay(Duration),
    /// Never answer (the connection is held until the proxy is dropped).
    Hang,
    /// Close the connection without answering (a peer that drops it).
    Close,
}

struct Rule {
    when: Match,
    fault: Fault,
    /// How many more requests it applies to; `None` = all.
    left: Option<u32>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    /// `METHOD /path` (and the AWS target, if any) → requests seen.
    hits: BTreeMap<String, u64>,
    faults: u64,
    /// See [`FaultProxy::control_file`].
    control: Option<PathBuf>,
}

pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl FaultProxy {
    /// Listen on a free loopback port and forward to `upstream`
    /// (`http://127.0.0.1:PORT`; loopback only).
    pub fn start(upstream: &str) -> FaultProxy {
        let up = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let up_addr: SocketAddr = up.parse().unwrap_or_else(|_| {
            panic!("proxy upstream must be http://127.x.y.z:PORT, got {upstream}")
        });
        assert!(up_addr.ip().is_loopback(), "only loopback upstreams");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if sp.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (st, sp) = (st.clone(), sp.clone());
                    let _ = thread::Builder::new()
                        .name("fault-proxy-conn".into())
                        .spawn(move || serve(conn, up_addr, &st, &sp));
                }
            })
            .expect("spawn the proxy thread");
        FaultProxy { addr, state, stop }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Add a rule; `times` = how many requests it applies to (`None`: all).
    /// Rules are tried in the order added; the first that matches applies.
    pub fn add(&self, when: Match, fault: Fault, times: Option<u32>) {
        self.state.lock().unwrap().rules.push(Rule {
            when,
            fault,
            left: times,
        });
    }

    pub fn clear(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// A file that turns rules on from outside the test process (a wrapped
    /// command): each line `METHOD PATH-PREFIX FAULT` or `aws TARGET FAULT`
    /// with FAULT one of `503`, `429`, `500`, `throttle`, `hang`,
    /// `delay:MS`. Read before each request.
    pub fn control_file(&self, path: PathBuf) {
        self.state.lock().unwrap().control = Some(path);
    }

    /// Requests seen whose `METHOD /path` starts with `key`.
    pub fn hits(&self, key: &str) -> u64 {
        self.state
            .lock()
            .unwrap()
            .hits
            .iter()
            .filter(|(k, _)| k.starts_with(key))
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests answered with a fault (not a delay).
    pub fn faults(&self) -> u64 {
        self.state.lock().unwrap().faults
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn parse_control(text: &str) -> Vec<Rule> {
    text.lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            let [a, b, f] = parts.as_slice() else {
                return None;
            };
            let when = if *a == "aws" {
                Match::aws(b)
            } else {
                Match::path(a, b)
            };
            let fault = match *f {
                "throttle" => Fault::AwsThrottling,
                "hang" => Fault::Hang,
                "close" => Fault::Close,
                "500" if *a == "aws" => Fault::AwsInternal,
                d if d.starts_with("delay:") => {
                    Fault::Delay(Duration::from_millis(d[6..].parse().ok()?))
                }
                n => Fault::Status(n.parse().ok()?),
            };
            Some(Rule {
                when,
                fault,
                left: None,
            })
        })
        .collect()
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut req = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        req.body = read_chunked(r)?;
    } else if let Some(n) = req
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut body = vec![0; n];
        r.read_exact(&mut body).ok()?;
        req.body = body;
    }
    Some(req)
}

fn read_chunked<R: BufRead>(r: &mut R) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size).ok()?;
        let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if n == 0 {
            let mut end = String::new();
            r.read_line(&mut end).ok()?;
            return Some(body);
        }
        let mut chunk = vec![0; n + 2];
        r.read_exact(&mut chunk).ok()?;
        body.extend_from_slice(&chunk[..n]);
    }
}

fn serve(conn: TcpStream, upstream: SocketAddr, state: &Mutex<State>, stop: &AtomicBool) {
    let _ = conn.set_nodelay(true);
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut r = BufReader::new(conn);
    while let Some(req) = read_request(&mut r) {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let key = match req.header("x-amz-target") {
            Some(t) => format!("{} {} {t}", req.method, req.path()),
            None => format!("{} {}", req.method, req.path()),
        };
        let fault = {
            let mut st = state.lock().unwrap();
            *st.hits.entry(key).or_default() += 1;
            let control: Vec<Rule> = st
                .control
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .map(|t| parse_control(&t))
                .unwrap_or_default();
            let mut chosen = control
                .into_iter()
                .find(|rule| rule.when.matches(&req))
                .map(|rule| rule.fault);
            if chosen.is_none() {
                for rule in st.rules.iter_mut() {
                    if rule.left == Some(0) || !rule.when.matches(&req) {
                        continue;
                    }
                    if let Some(n) = rule.left.as_mut() {
                        *n -= 1;
                    }
                    chosen = Some(rule.fault.clone());
                    break;
                }
            }
            if matches!(
                chosen,
                Some(
                    Fault::Status(_)
                        | Fault::AwsThrottling
                        | Fault::AwsInternal
                        | Fault::Hang
                        | Fault::Close
                )
            ) {
                st.faults += 1;
            }
            chosen
        };
        let reply = match fault {
            Some(Fault::Close) => return,
            Some(Fault::Hang) => {
                // Hold the connection, bounded, until the proxy is dropped.
                let until = Instant::now() + Duration::from_secs(600);
                while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                    thread::sleep(Duration::from_millis(50));
                }
                return;
            }
            Some(Fault::Status(code)) => answer(
                code,
                "application/json",
                format!(
                    "{{\"error\":{{\"type\":\"fault_injected\",\"reason\":\"injected by the test proxy\"}},\"status\":{code}}}"
                ),
            ),
            Some(Fault::AwsThrottling) => answer(
                400,
                "application/x-amz-json-1.1",
                "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}".into(),
            ),
            Some(Fault::AwsInternal) => answer(
                500,
                "application/x-amz-json-1.1",
                "{\"__type\":\"InternalFailure\",\"message\":\"injected by the test proxy\"}"
                    .into(),
            ),
            Some(Fault::Delay(d)) => {
                thread::sleep(d.min(Duration::from_secs(600)));
                forward(&req, upstream)
            }
            None => forward(&req, upstream),
        };
        let Some(reply) = reply else { return };
        if out.write_all(&reply).is_err() {
            return;
        }
    }
}

fn answer(status: u16, content_type: &str, body: String) -> Option<Vec<u8>> {
    let mut head = format!(
        "HTTP/1.1 {status} Injected\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n",
        body.len()
    );
    if status == 503 || status == 429 {
        head.push_str("retry-after: 0\r\n");
    }
    head.push_str("\r\n");
    let mut v = head.into_bytes();
    v.extend_from_slice(body.as_bytes());
    Some(v)
}

/// Send the request upstream on a connection of its own; return the
/// answer re-framed with a content-length.
fn forward(req: &Request, upstream: SocketAddr) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)).ok()?;
    up.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
    let _ = up.set_nodelay(true);
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        if [
            "connection",
            "content-length",
            "transfer-encoding",
            "keep-alive",
        ]
        .iter()
        .any(|h| k.eq_ignore_ascii_case(h))
        {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        req.body.len()
    ));
    up.write_all(head.as_bytes()).ok()?;
    up.write_all(&req.body).ok()?;
    let mut r = BufReader::new(up);
    let mut status = String::new();
    r.read_line(&mut status).ok()?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            break;
        }
        let h = h.trim_end().to_owned();
        if h.is_empty() {
            break;
        }
        headers.push(h);
    }
    let get = |name: &str| {
        headers.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let body = if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(&mut r)?
    } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut b = vec![0; n];
        r.read_exact(&mut b).ok()?;
        b
    } else if req.method == "HEAD" {
        Vec::new()
    } else {
        let mut b = Vec::new();
        r.read_to_end(&mut b).ok()?;
        b
    };
    let mut out = status.trim_end().to_owned();
    out.push_str("\r\n");
    for h in &headers {
        let name = h.split(':').next().unwrap_or("").trim();
        if [
            "connection",
            "content-length",
            "transfer-encoding",
            "keep-alive",
        ]
        .iter()
        .any(|x| name.eq_ignore_ascii_case(x))
        {
            continue;
        }
        out.push_str(h);
        out.push_str("\r\n");
    }
    if req.method == "HEAD" {
        if let Some(n) = get("content-length") {
            out.push_str(&format!("content-length: {n}\r\n"));
        }
    } else {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut v = out.into_bytes();
    v.extend_from_slice(&body);
    Some(v)
}
