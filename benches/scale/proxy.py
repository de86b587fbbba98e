"""A loopback counting proxy: the benchmark's network model and call counter.

    python proxy.py --listen-aws PORT --aws-upstream URL \
                    --listen-es PORT --es-upstream URL [--delay-ms 25] \
                    [--throttle-every N] --ready-file FILE

Every request a tool sends to AWS or Elasticsearch goes through here. The
proxy

* holds each request for `--delay-ms` before forwarding it (each request on
  its own thread, so concurrent requests wait concurrently, as they do on a
  real network). This delay, not the emulator's speed, is the network model;
* counts requests by operation (`ecs:DescribeServices`, `secretsmanager:
  ListSecrets`, `elasticsearch:GET /_security/user`, ...);
* flags requests that exceed a batch limit real AWS enforces but the emulator
  accepts (DescribeServices > 10 services, DescribeTasks > 100 tasks,
  BatchGetSecretValue > 20 ids, a page size > 100, ...);
* with `--throttle-every N`, answers every Nth AWS request with a
  `ThrottlingException` (HTTP 400, as AWS does) instead of forwarding it;
* with `--replay`, keeps every answer (by operation, body and, for
  Elasticsearch, the Authorization header) and answers a repeated request from
  memory instead of asking the emulator again. The emulator serves requests
  one at a time and its cost grows with the environment (tens of
  milliseconds a call on a loaded machine), which is no part of a real
  network: a warm-up run records, the measured runs are then served by the
  network model alone. Only for read-only workloads (a snapshot).

Control: `GET /__bench/stats` on either port returns the counts as JSON,
`POST /__bench/reset` clears them. Only loopback upstreams are accepted.
Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import socket
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Real AWS limits on one request, by operation: (JSON field, maximum items).
# Page sizes are limits too: a MaxResults above them is refused by AWS.
LIMITS = {
    "ecs:DescribeClusters": ("clusters", 100),
    "ecs:DescribeServices": ("services", 10),
    "ecs:DescribeTasks": ("tasks", 100),
    "secretsmanager:BatchGetSecretValue": ("SecretIdList", 20),
}
PAGE_LIMITS = {
    "ecs:ListServices": ("maxResults", 100),
    "ecs:ListTasks": ("maxResults", 100),
    "secretsmanager:ListSecrets": ("MaxResults", 100),
    "secretsmanager:ListSecretVersionIds": ("MaxResults", 100),
    "secretsmanager:BatchGetSecretValue": ("MaxResults", 20),
}
SERVICE_PREFIX = {
    "AmazonEC2ContainerServiceV20141113": "ecs",
    "secretsmanager": "secretsmanager",
}
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailers", "transfer-encoding", "upgrade", "host",
}


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.over_limit: Counter[str] = Counter()
        self.throttled = 0
        self.upstream_s: Counter[str] = Counter()
        self.seq = 0
        self.replayed = 0
        self.recorded: dict = {}

    def as_json(self) -> dict:
        with self.lock:
            return {
                "calls": dict(self.calls),
                "total": sum(self.calls.values()),
                "over_limit": dict(self.over_limit),
                "throttled": self.throttled,
                "upstream_ms": {k: round(v * 1000, 1) for k, v in self.upstream_s.items()},
                "replayed": self.replayed,
            }

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.over_limit.clear()
            self.upstream_s.clear()
            self.throttled = 0
            self.seq = 0
            self.replayed = 0


def aws_operation(headers, body: bytes) -> tuple[str, dict | None]:
    target = headers.get("X-Amz-Target", "")
    if "." in target:
        prefix, op = target.split(".", 1)
        service = SERVICE_PREFIX.get(prefix, prefix)
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = None
        return f"{service}:{op}", payload
    # Query protocol (STS) or anything else: name it by its Action.
    for part in body.decode("utf-8", "replace").split("&"):
        if part.startswith("Action="):
            return f"aws:{part[7:]}", None
    return "aws:unknown", None


def es_operation(method: str, path: str) -> str:
    path = path.split("?", 1)[0]
    parts = [p for p in path.split("/") if p]
    # Name users and keys generically: /_security/user/NAME → /_security/user/{name}
    if len(parts) >= 3 and parts[0] == "_security" and parts[1] in ("user", "api_key", "role"):
        parts = parts[:2] + ["{name}"] + parts[3:]
    return f"elasticsearch:{method} /{'/'.join(parts)}"


def over_limit(op: str, payload: dict | None) -> str | None:
    if not isinstance(payload, dict):
        return None
    if op in LIMITS:
        field, most = LIMITS[op]
        n = len(payload.get(field) or [])
        if n > most:
            return f"{op}: {n} {field} > {most}"
    if op in PAGE_LIMITS:
        field, most = PAGE_LIMITS[op]
        n = payload.get(field)
        if isinstance(n, int) and n > most:
            return f"{op}: {field} {n} > {most}"
    return None


def require_loopback(url: str) -> tuple[str, int]:
    u = urlsplit(url)
    host = u.hostname or ""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        sys.exit(f"proxy: upstream {url} is not a loopback address")
    return host, u.port or 80


def make_handler(kind: str, upstream: tuple[str, int], stats: Stats, delay: float,
                 throttle_every: int, replay: bool):
    local = threading.local()

    def connection() -> http.client.HTTPConnection:
        c = getattr(local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection(*upstream, timeout=120)
            c.connect()
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            local.conn = c
        return c

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:  # quiet
            pass

        def reply(self, status: int, body: bytes, ctype: str = "application/json",
                  extra: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def handle_any(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            if self.path.startswith("/__bench/"):
                if self.path == "/__bench/reset":
                    stats.reset()
                self.reply(200, json.dumps(stats.as_json()).encode())
                return
            if kind == "aws":
                op, payload = aws_operation(self.headers, body)
            else:
                op, payload = es_operation(self.command, self.path), None
            flag = over_limit(op, payload)
            with stats.lock:
                stats.calls[op] += 1
                if flag:
                    stats.over_limit[flag] += 1
                stats.seq += 1
                throttle = kind == "aws" and throttle_every > 0 and stats.seq % throttle_every == 0
                if throttle:
                    stats.throttled += 1
            if delay:
                time.sleep(delay)
            if throttle:
                self.reply(400, json.dumps({"__type": "ThrottlingException",
                                            "message": "Rate exceeded"}).encode(),
                           "application/x-amz-json-1.1",
                           {"x-amzn-ErrorType": "ThrottlingException"})
                return
            key = None
            if replay:
                auth = self.headers.get("Authorization", "") if kind == "es" else ""
                key = (kind, op, self.command, self.path if kind == "es" else "", auth, body)
                with stats.lock:
                    hit = stats.recorded.get(key)
                    if hit:
                        stats.replayed += 1
                if hit:
                    self.send_answer(*hit)
                    return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Host"] = f"{upstream[0]}:{upstream[1]}"
            started = time.perf_counter()
            for attempt in (1, 2):
                try:
                    c = connection()
                    c.request(self.command, self.path, body=body or None, headers=headers)
                    resp = c.getresponse()
                    data = resp.read()
                    break
                except (http.client.HTTPException, OSError):
                    local.conn = None
                    if attempt == 2:
                        self.reply(502, b'{"error":"proxy: upstream failed"}')
                        return
            answer = (resp.status, resp.reason,
                      [(k, v) for k, v in resp.getheaders()
                       if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"], data)
            with stats.lock:
                stats.upstream_s[op] += time.perf_counter() - started
                if key is not None and resp.status < 500:
                    stats.recorded[key] = answer
            self.send_answer(*answer)

        def send_answer(self, status, reason, headers, data) -> None:
            self.send_response(status, reason)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen-aws", type=int, required=True)
    ap.add_argument("--aws-upstream", required=True)
    ap.add_argument("--listen-es", type=int, required=True)
    ap.add_argument("--es-upstream", required=True)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--throttle-every", type=int, default=0)
    ap.add_argument("--replay", action="store_true")
    ap.add_argument("--ready-file")
    a = ap.parse_args()
    stats = Stats()
    servers = []
    for kind, port, up in (("aws", a.listen_aws, a.aws_upstream), ("es", a.listen_es, a.es_upstream)):
        h = make_handler(kind, require_loopback(up), stats, a.delay_ms / 1000.0, a.throttle_every,
                         a.replay)
        s = Server(("127.0.0.1", port), h)
        threading.Thread(target=s.serve_forever, daemon=True).start()
        servers.append(s)
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write(" ".join(str(s.server_address[1]) for s in servers))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
