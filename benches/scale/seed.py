"""Seed a large environment for the benchmark (or grow one already seeded).

    python seed.py --aws URL --es URL --dir DIR [--scale 1] [sizes...]

Sizes (at --scale 1; every one is multiplied by --scale):

    --users 1000          Elasticsearch users, `bench_user_NNNNN`
    --secrets 2000        Secrets Manager secrets: a username and a password
                          secret per user, `bench/es/user_NNNNN/{username,password}`
    --credentials 300     users that services consume (2 referenced secrets each),
                          spread evenly over the users, so the referenced
                          secrets are spread over every ListSecrets page
    --clusters 3          ECS clusters, `bench-cluster-N`
    --services 300        services, round-robin over the clusters, one task
                          definition each; service k consumes credential k
    --tasks 3             tasks per service (desired count)

Half the services name their secrets by Parameter Store reference, half by
full ARN, as the incident's services do. Everything is indexed, so growing
from one size to a larger one creates only what is new (`--from-scale`).
Writes DIR/opsguard.toml and DIR/manifest.json. Only loopback URLs are
accepted; no password is printed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets as rnd
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

REGION = "eu-west-1"
THREADS = 8


def sizes(a, scale: float) -> dict:
    s = {k: int(round(getattr(a, k) * scale)) for k in
         ("users", "secrets", "credentials", "clusters", "services")}
    s["clusters"] = a.clusters  # the number of clusters does not scale
    s["tasks"] = a.tasks
    return s


def cred_user(k: int, s: dict) -> int:
    """The user credential k is: spread evenly over all users."""
    return (k * s["users"]) // s["credentials"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--aws", required=True)
    ap.add_argument("--es", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--from-scale", type=float, default=0.0)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--secrets", type=int, default=2000)
    ap.add_argument("--credentials", type=int, default=300)
    ap.add_argument("--clusters", type=int, default=3)
    ap.add_argument("--services", type=int, default=300)
    ap.add_argument("--tasks", type=int, default=3)
    a = ap.parse_args()
    for url in (a.aws, a.es):
        assert url.startswith("http://127.0.0.1:"), f"not a loopback URL: {url}"
    new, old = sizes(a, a.scale), sizes(a, a.from_scale)
    out = Path(a.dir)
    out.mkdir(parents=True, exist_ok=True)
    es_password = os.environ["OPSGUARD_ES_PASSWORD"]
    admin = "Basic " + base64.b64encode(f"elastic:{es_password}".encode()).decode()
    session = boto3.session.Session(region_name=REGION)
    # The emulator answers one request at a time and slows as it fills: a
    # generous read timeout, so a slow answer is waited for rather than
    # retried. A retry can still happen (a reset connection), so every create
    # below is idempotent: "already exists" from a retried create is success.
    cfg = Config(max_pool_connections=THREADS * 2, read_timeout=600, connect_timeout=10,
                 retries={"max_attempts": 8, "mode": "standard"})
    sm = session.client("secretsmanager", endpoint_url=a.aws, config=cfg)
    ecs = session.client("ecs", endpoint_url=a.aws, config=cfg)
    pool = ThreadPoolExecutor(THREADS)
    started = time.monotonic()

    # Users whose secrets are new, with fresh passwords.
    def user(i: int) -> str:
        return f"bench_user_{i:05d}"

    pw = {i: rnd.token_hex(16) for i in range(old["users"], new["users"])}

    def put_user(i: int) -> None:
        body = json.dumps({"password": pw[i], "roles": ["viewer"],
                           "full_name": f"bench user {i}"}).encode()
        req = urllib.request.Request(f"{a.es}/_security/user/{user(i)}", data=body, method="PUT",
                                     headers={"Authorization": admin, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()

    list(pool.map(put_user, range(old["users"], new["users"])))
    t_users = time.monotonic() - started

    # Secrets: a pair per user while they last, then filler.
    def secret_names(s: dict) -> list[tuple[str, int | None, str]]:
        names = []
        for i in range(s["users"]):
            for field in ("username", "password"):
                if len(names) < s["secrets"]:
                    names.append((f"bench/es/user_{i:05d}/{field}", i, field))
        j = 0
        while len(names) < s["secrets"]:
            names.append((f"bench/misc/{j:06d}", None, "misc"))
            j += 1
        return names

    have = {n for n, _, _ in secret_names(old)}
    todo = [x for x in secret_names(new) if x[0] not in have]

    def create_secret(x) -> None:
        name, i, field = x
        if field == "username":
            value = user(i)
        elif field == "password":
            value = pw.get(i) or rnd.token_hex(16)
        else:
            value = rnd.token_hex(16)
        try:
            sm.create_secret(Name=name, SecretString=value)
        except sm.exceptions.ResourceExistsException:
            pass  # a retried create whose first attempt landed

    list(pool.map(create_secret, todo))
    t_secrets = time.monotonic() - started - t_users

    # ECS.
    clusters = [f"bench-cluster-{c}" for c in range(new["clusters"])]
    for c in clusters[old["clusters"] if old["services"] else 0:]:
        ecs.create_cluster(clusterName=c)
    arn_of: dict[str, str] = {}

    def secret_arn(name: str) -> str:
        if name not in arn_of:
            arn_of[name] = sm.describe_secret(SecretId=name)["ARN"]
        return arn_of[name]

    def create_service(k: int) -> None:
        cred = k % new["credentials"]
        i = cred_user(cred, new)
        u, p = f"bench/es/user_{i:05d}/username", f"bench/es/user_{i:05d}/password"
        if k % 2 == 0:
            refs = [f"/aws/reference/secretsmanager/{u}", f"/aws/reference/secretsmanager/{p}"]
        else:
            refs = [secret_arn(u), secret_arn(p)]
        family = f"bench-svc-{k:05d}"
        td = ecs.register_task_definition(
            family=family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[{
                "name": "api",
                "image": "public.ecr.aws/docker/library/python:3.12-slim",
                "essential": True,
                "environment": [{"name": "ES_URL", "value": "http://127.0.0.1:9200"}],
                "secrets": [{"name": "es_username", "valueFrom": refs[0]},
                            {"name": "es_password", "valueFrom": refs[1]}],
            }],
        )["taskDefinition"]["taskDefinitionArn"]
        cluster = clusters[k % new["clusters"]]
        try:
            ecs.create_service(
                cluster=cluster,
                serviceName=family,
                taskDefinition=td,
                desiredCount=new["tasks"],
                launchType="FARGATE",
                networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-0f4c3b2a1d0e9c8b7"]}},
            )
        except ecs.exceptions.ClientException as e:
            # ECS answers a second CreateService of an ACTIVE service (a
            # retried create whose first attempt landed, or a service left by
            # an earlier seed of this size) with "not idempotent". The service
            # exists under its indexed name: that is what this seed wants.
            if "idempotent" not in str(e):
                raise
            got = ecs.describe_services(cluster=cluster, services=[family])["services"]
            if not got or got[0]["status"] != "ACTIVE":
                raise
            retried.append(family)

    retried: list[str] = []
    list(pool.map(create_service, range(old["services"], new["services"])))
    if retried:
        print(f"seed: {len(retried)} CreateService call(s) found their service already there "
              "(a retried create); kept it", file=sys.stderr)
    t_ecs = time.monotonic() - started - t_users - t_secrets

    (out / "opsguard.toml").write_text(f"""# Written by benches/scale/seed.py
[elasticsearch]
url = "ES_URL"
username = "elastic"
password_env = "OPSGUARD_ES_PASSWORD"

[aws]
region = "{REGION}"
endpoint_url = "AWS_URL"

[ecs]
clusters = {json.dumps(clusters)}

[[credentials]]
kind = "elasticsearch-basic"
username_env = "es_username"
password_env = "es_password"
""")
    manifest = {"sizes": new, "clusters": clusters,
                "seed_seconds": {"users": round(t_users, 1), "secrets": round(t_secrets, 1),
                                 "ecs": round(t_ecs, 1)}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(json.dumps(manifest["seed_seconds"]), file=sys.stderr)


if __name__ == "__main__":
    main()
