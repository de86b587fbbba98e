"""The baselines: a snapshot of the same content as `opsguard snapshot`,
written the way a competent engineer would write it with boto3 — once
sequential, once with a thread pool.

    python baseline.py --threads 1  --manifest M.json   # sequential
    python baseline.py --threads 16 --manifest M.json   # 16 threads

What it reads (the content of an opsguard snapshot):

* Elasticsearch: cluster info, health, every user (one GET /_security/user);
* ECS: the clusters, every service (ListServices, DescribeServices 10 at a
  time), every task that runs or still drains (ListTasks RUNNING and STOPPED,
  DescribeTasks 100 at a time), every task definition once;
* Secrets Manager, for every secret a task definition references: its
  metadata and stages (DescribeSecret), its versions with created dates
  (ListSecretVersionIds) and its AWSCURRENT value (GetSecretValue), hashed and
  dropped — the straightforward per-secret calls;
* one probe per credential (GET /_security/_authenticate with the value the
  tasks would get).

The threaded variant runs the clusters, the task definitions, the secrets and
the probes on a pool of N threads, sharing one client per service (boto3's
clients are thread-safe) with a connection pool as large as the thread pool. Prints one JSON object of what it found. Never prints a secret.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

CFG = Config(retries={"max_attempts": 5, "mode": "standard"},
             max_pool_connections=64)
_clients: dict = {}
_lock = threading.Lock()


def client(name: str):
    """One client per service, shared by the threads (boto3's clients are
    thread-safe; its sessions are not, so the clients are made up front)."""
    with _lock:
        if name not in _clients:
            _clients[name] = boto3.session.Session().client(name, config=CFG)
        return _clients[name]


def chunks(xs, n):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


class Es:
    def __init__(self, url: str, user: str, password: str):
        self.url = url.rstrip("/")
        self.admin = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def get(self, path: str, auth: str | None = None):
        req = urllib.request.Request(self.url + path, headers={"Authorization": auth or self.admin})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, None


def ecs_cluster(cluster: str, pool) -> tuple[list, list]:
    ecs = client("ecs")
    arns = []
    for page in ecs.get_paginator("list_services").paginate(cluster=cluster):
        arns += page["serviceArns"]

    def describe(batch):
        return client("ecs").describe_services(cluster=cluster, services=batch)["services"]

    services = [s for b in pool.map(describe, list(chunks(arns, 10))) for s in b]
    task_arns = []
    for status in ("RUNNING", "STOPPED"):
        for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus=status):
            task_arns += page["taskArns"]
    task_arns = sorted(set(task_arns))

    def describe_tasks(batch):
        return client("ecs").describe_tasks(cluster=cluster, tasks=batch)["tasks"]

    tasks = [t for b in pool.map(describe_tasks, list(chunks(task_arns, 100))) for t in b
             if t.get("lastStatus") not in ("STOPPED", "DELETED")]
    return services, tasks


def secret_id(value_from: str) -> str:
    """The SecretId to ask for: a name for Parameter Store style references,
    the ARN (without a JSON key / stage / version suffix) otherwise."""
    p = "/aws/reference/secretsmanager/"
    if value_from.startswith(p):
        return value_from[len(p):]
    parts = value_from.split(":")
    return ":".join(parts[:7])


def read_secret(sid: str) -> dict:
    sm = client("secretsmanager")
    meta = sm.describe_secret(SecretId=sid)
    versions = []
    kwargs = {"SecretId": sid, "IncludeDeprecated": True}
    while True:  # boto3 has no paginator for it
        page = sm.list_secret_version_ids(**kwargs)
        versions += [{"id": v["VersionId"], "stages": v.get("VersionStages", []),
                      "created": str(v.get("CreatedDate"))} for v in page["Versions"]]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    value = None
    if not meta.get("DeletedDate"):
        v = sm.get_secret_value(SecretId=sid)
        value = v.get("SecretString")
    return {"name": meta["Name"], "arn": meta["ARN"], "deleted": str(meta.get("DeletedDate")),
            "versions": versions, "value": value}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--manifest", required=True)
    a = ap.parse_args()
    started = time.perf_counter()
    m = json.load(open(a.manifest))
    client("ecs"), client("secretsmanager")
    es = Es(m["es_url"], "elastic", os.environ["OPSGUARD_ES_PASSWORD"])
    pool = ThreadPoolExecutor(a.threads)
    run = pool.map if a.threads > 1 else map

    # Elasticsearch.
    info = es.get("/")[1]
    health = es.get("/_cluster/health")[1]
    users = es.get("/_security/user")[1]

    # ECS.
    inner = pool if a.threads > 1 else type("Seq", (), {"map": staticmethod(lambda f, xs: map(f, xs))})
    ecs = client("ecs")
    ecs.describe_clusters(clusters=m["clusters"])
    per_cluster = list(run(lambda c: ecs_cluster(c, inner), m["clusters"]))
    services = [s for ss, _ in per_cluster for s in ss]
    tasks = [t for _, ts in per_cluster for t in ts]
    td_arns = sorted({s["taskDefinition"] for s in services} | {t["taskDefinitionArn"] for t in tasks})
    tds = list(run(lambda arn: client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"],
                   td_arns))

    # Secrets: every one a task definition references.
    refs = {}
    for td in tds:
        for c in td["containerDefinitions"]:
            for s in c.get("secrets", []):
                refs[s["valueFrom"]] = secret_id(s["valueFrom"])
    secret_ids = sorted(set(refs.values()))
    secrets = dict(zip(secret_ids, run(read_secret, secret_ids)))

    # Credentials: the es_username / es_password pair of each container, probed.
    creds = {}
    for td in tds:
        for c in td["containerDefinitions"]:
            env = {s["name"]: s["valueFrom"] for s in c.get("secrets", [])}
            if "es_username" in env and "es_password" in env:
                u = secrets[refs[env["es_username"]]]["value"]
                p = secrets[refs[env["es_password"]]]["value"]
                if u is not None and p is not None:
                    creds[(refs[env["es_username"]], refs[env["es_password"]])] = (u, p)

    def probe(up):
        u, p = up
        auth = "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()
        return es.get("/_security/_authenticate", auth)[0] == 200

    results = list(run(probe, list(creds.values())))
    # Values are fingerprinted and dropped, as opsguard does.
    for s in secrets.values():
        v = s.pop("value")
        s["fingerprint"] = hashlib.sha256(v.encode()).hexdigest()[:16] if v is not None else None
    print(json.dumps({
        "cluster": (info or {}).get("cluster_name"),
        "health": (health or {}).get("status"),
        "users": len(users or {}),
        "services": len(services),
        "tasks": len(tasks),
        "task_definitions": len(tds),
        "secrets": len(secrets),
        "credentials": len(creds),
        "authenticated": sum(results),
        "elapsed": time.perf_counter() - started,
    }))
    pool.shutdown()


if __name__ == "__main__":
    sys.exit(main())
