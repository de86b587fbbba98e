"""Shared helpers for the incident replay scripts (not a script itself).

The replica of the 2021-07-27 environment, as `tests/testkit/src/replica.rs`
seeds it: one Elasticsearch role, five catalogue users, ten Secrets Manager
secrets and four ECS services in one cluster. Every script here is configured
by environment variables only:

    ES_URL          Elasticsearch, default http://127.0.0.1:9200
    ES_USERNAME     admin user, default elastic
    ES_PASSWORD     admin password (falls back to OPSGUARD_ES_PASSWORD, the
                    variable the replica's opsguard.toml reads)
    AWS_ENDPOINT_URL, AWS_REGION or AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: the standard boto3 environment.

Both ES_URL and AWS_ENDPOINT_URL must point at a loopback address: these
scripts change passwords and secrets, and they only ever run against the
emulator and the Elasticsearch double. Secret values are never printed; any
error message is scrubbed of the values this process has seen.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NoReturn
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from elasticsearch import Elasticsearch

CLUSTER = "catalogue-api-2021-04-26"
ROLE = "catalogue_read"
ROLE_CLUSTER_PRIVILEGES = ["monitor"]
ROLE_INDICES = [{"names": ["works-*", "images-*"], "privileges": ["read"]}]
USERS = ["search", "items", "diff_tool", "replication_manager", "internal_model_tool"]
# (service, consumed user, desired count), in seeding order.
SERVICES = [
    ("prod-search-api", "search", 3),
    ("prod-items-api", "items", 3),
    ("stage-search-api", "search", 1),
    ("stage-items-api", "items", 1),
]
USERNAME_ENV = "es_username"
PASSWORD_ENV = "es_password"
API_KEY_ENV = "es_apikey"
API_KEY_SECRET = "elasticsearch/catalogue_api/search/api_key"
API_KEY_SERVICE = "prod-search-api-key"
SUBNET = "subnet-0f4c3b2a1d0e9c8b7"
PROVISIONED_BY = "create_elastic_users_catalogue.py"

# Values that must never reach the terminal: scrubbed from error messages.
_SENSITIVE: set[str] = set()


def secret_name(user: str, field: str) -> str:
    """`elasticsearch/catalogue_api/{user}/{field}`"""
    return f"elasticsearch/catalogue_api/{user}/{field}"


def sensitive(value: str) -> str:
    """Remember `value` as secret (scrubbed from any error) and return it."""
    if value:
        _SENSITIVE.add(value)
    return value


def redact(text: str) -> str:
    for value in sorted(_SENSITIVE, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def say(message: str) -> None:
    print(redact(message), flush=True)


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"error: {redact(message)}", file=sys.stderr, flush=True)
    sys.exit(code)


def main(body: Callable[[], None]) -> None:
    """Run `body`; any exception becomes one clear, redacted line and exit 1."""
    try:
        body()
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - the point is one clear message
        fail(f"{type(e).__name__}: {e}")


# ---- configuration ----------------------------------------------------------


def _require_loopback(what: str, url: str) -> None:
    host = urlsplit(url).hostname
    if host is None:
        fail(f"{what}={url!r} is not a URL", 2)
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        fail(f"{what}={url} is not a loopback address; these scripts only run against the local replica", 2)


def es_url() -> str:
    url = os.environ.get("ES_URL") or "http://127.0.0.1:9200"
    _require_loopback("ES_URL", url)
    return url.rstrip("/")


def es_admin_auth() -> tuple[str, str]:
    username = os.environ.get("ES_USERNAME") or "elastic"
    password = os.environ.get("ES_PASSWORD") or os.environ.get("OPSGUARD_ES_PASSWORD")
    if not password:
        fail("set ES_PASSWORD to the password of the Elasticsearch admin user", 2)
    return username, sensitive(password)


def aws_region() -> str:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        fail("set AWS_REGION (or AWS_DEFAULT_REGION), e.g. eu-west-1", 2)
    return region


def aws_endpoint() -> str:
    url = os.environ.get("AWS_ENDPOINT_URL")
    if not url:
        fail("set AWS_ENDPOINT_URL to the emulator (e.g. http://127.0.0.1:4566); real AWS is never targeted", 2)
    _require_loopback("AWS_ENDPOINT_URL", url)
    return url


# ---- clients ----------------------------------------------------------------


def es_client(auth: tuple[str, str] | None = None) -> Elasticsearch:
    """The official client, as the admin unless `auth` is given."""
    return Elasticsearch(es_url(), basic_auth=auth or es_admin_auth(), request_timeout=10)


def es_api_key_client(encoded: str) -> Elasticsearch:
    return Elasticsearch(es_url(), api_key=sensitive(encoded), request_timeout=10)


def aws(service: str) -> Any:
    """A boto3 client for the emulator, with bounded timeouts and retries."""
    config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})
    return boto3.client(service, region_name=aws_region(), endpoint_url=aws_endpoint(), config=config)


# ---- secrets ----------------------------------------------------------------


def read_secret(sm: Any, name: str) -> str:
    return sensitive(sm.get_secret_value(SecretId=name)["SecretString"])


def store_secret(sm: Any, name: str, value: str, description: str | None = None) -> dict[str, Any]:
    """Create the secret, or put a new AWSCURRENT version if it exists."""
    try:
        extra = {"Description": description} if description else {}
        return sm.create_secret(Name=name, SecretString=value, **extra)
    except sm.exceptions.ResourceExistsException:
        return sm.put_secret_value(SecretId=name, SecretString=value)


def authenticates(auth: tuple[str, str]) -> bool:
    """Whether `auth` authenticates against Elasticsearch right now."""
    from elasticsearch import AuthenticationException

    try:
        es_client(auth).security.authenticate()
        return True
    except AuthenticationException:
        return False


def api_key_authenticates(encoded: str) -> bool:
    from elasticsearch import AuthenticationException

    try:
        es_api_key_client(encoded).security.authenticate()
        return True
    except AuthenticationException:
        return False


# ---- ECS: consumers of a secret ---------------------------------------------


@dataclass(frozen=True)
class Service:
    cluster: str  # cluster ARN
    name: str

    @property
    def ref(self) -> str:
        return f"{self.cluster.rsplit('/', 1)[-1]}/{self.name}"


def value_from_names(value_from: str) -> str:
    """The secret name a task definition `valueFrom` refers to (best effort).

    Handles the SSM reference (`/aws/reference/secretsmanager/NAME`, also as a
    parameter ARN) and the secret ARN, with or without a JSON key, version
    stage or version id suffix. The ARN's 6-character random suffix is kept
    here; `refers_to` compares it against the real ARN.
    """
    marker = "/aws/reference/secretsmanager/"
    if marker in value_from:
        return value_from.split(marker, 1)[1]
    if value_from.startswith("arn:") and ":secret:" in value_from:
        return value_from.split(":secret:", 1)[1].split(":", 1)[0]
    return value_from


def refers_to(value_from: str, name: str, arn: str) -> bool:
    """Whether `valueFrom` names the secret `name` whose ARN is `arn`."""
    target = value_from_names(value_from)
    full_name = arn.split(":secret:", 1)[1] if ":secret:" in arn else name
    return target in (name, full_name)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def all_services(ecs: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(cluster ARN, service description) for every service in the region."""
    for page in ecs.get_paginator("list_clusters").paginate(PaginationConfig={"MaxItems": 1000}):
        for cluster in page["clusterArns"]:
            arns: list[str] = []
            pages = ecs.get_paginator("list_services").paginate(cluster=cluster, PaginationConfig={"MaxItems": 10000})
            for services in pages:
                arns.extend(services["serviceArns"])
            for batch in _chunks(arns, 10):  # DescribeServices takes at most 10
                for service in ecs.describe_services(cluster=cluster, services=batch)["services"]:
                    yield cluster, service


def consumers_of(ecs: Any, secrets: Iterable[tuple[str, str]]) -> list[Service]:
    """Active services whose task definition reads any of `secrets` ((name, arn) pairs)."""
    wanted = list(secrets)
    found: list[Service] = []
    task_definitions: dict[str, dict[str, Any]] = {}
    for cluster, service in all_services(ecs):
        if service.get("status") != "ACTIVE":
            continue
        arn = service["taskDefinition"]
        if arn not in task_definitions:
            task_definitions[arn] = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        refs = [
            s["valueFrom"]
            for c in task_definitions[arn].get("containerDefinitions", [])
            for s in c.get("secrets", [])
        ]
        if any(refers_to(ref, name, secret_arn) for ref in refs for name, secret_arn in wanted):
            found.append(Service(cluster, service["serviceName"]))
    return found


# ---- ECS: waiting for a deployment -------------------------------------------


def tasks_of(ecs: Any, service: Service) -> list[dict[str, Any]]:
    arns: list[str] = []
    pages = ecs.get_paginator("list_tasks").paginate(
        cluster=service.cluster, serviceName=service.name, desiredStatus="RUNNING", PaginationConfig={"MaxItems": 1000}
    )
    for page in pages:
        arns.extend(page["taskArns"])
    tasks: list[dict[str, Any]] = []
    for batch in _chunks(arns, 100):  # DescribeTasks takes at most 100
        tasks.extend(ecs.describe_tasks(cluster=service.cluster, tasks=batch)["tasks"])
    return tasks


def why_not_stable(ecs: Any, service: Service, since: datetime) -> str | None:
    """None when `service` has one deployment, running == desired and every
    running task started after `since`; otherwise what is still missing."""
    described = ecs.describe_services(cluster=service.cluster, services=[service.name])["services"]
    if not described:
        return "service not found"
    s = described[0]
    if len(s.get("deployments", [])) != 1:
        return f"{len(s.get('deployments', []))} deployments"
    if s["runningCount"] != s["desiredCount"]:
        return f"running {s['runningCount']} of {s['desiredCount']}"
    tasks = [t for t in tasks_of(ecs, service) if t.get("lastStatus") == "RUNNING"]
    if len(tasks) != s["desiredCount"]:
        return f"{len(tasks)} RUNNING tasks, desired {s['desiredCount']}"
    old = [t for t in tasks if t.get("startedAt") is None or t["startedAt"] <= since]
    if old:
        return f"{len(old)} task(s) started before the rotation"
    return None


def wait_until_stable(ecs: Any, services: list[Service], since: datetime, timeout: float, poll: float = 0.5) -> None:
    """Wait (at most `timeout` seconds) until every service is stable with
    only tasks started after `since`; exit non-zero if one is not."""
    deadline = time.monotonic() + timeout
    pending = list(services)
    for _ in range(int(timeout / poll) + 2):
        pending = [s for s in pending if why_not_stable(ecs, s, since) is not None]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(poll)
    if pending:
        reasons = "; ".join(f"{s.ref}: {why_not_stable(ecs, s, since)}" for s in pending)
        fail(f"not stable after {timeout:.0f} s: {reasons}")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def next_whole_second(after: datetime) -> None:
    """Sleep until the wall clock is past the whole second after `after`.

    ECS `startedAt` and Secrets Manager `CreatedDate` have whole-second
    resolution on the emulator: a task started in the same second as a change
    could not be told apart from one started just before it.
    """
    target = after.replace(microsecond=0).timestamp() + 1
    delay = target - time.time()
    if delay > 0:
        time.sleep(min(delay, 1.0) + 0.01)
