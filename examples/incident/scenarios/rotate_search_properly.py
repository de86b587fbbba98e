"""No false alarm: rotate `search` the right way.

1. a new password in Elasticsearch (change_password) and in the secret;
2. find every ECS service whose task definition reads search's secrets (any
   `valueFrom` form), across every cluster of the region - not hard-coded;
3. force a new deployment of each, and wait (bounded) until each is stable:
   one deployment, running == desired, and every running task started after
   the rotation.

Environment: see ../replica.py; ROTATE_WAIT_SECONDS bounds the wait (default
120).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import replica as r  # noqa: E402

USER = "search"


def wait_seconds() -> float:
    raw = os.environ.get("ROTATE_WAIT_SECONDS", "120")
    try:
        value = float(raw)
    except ValueError:
        r.fail(f"ROTATE_WAIT_SECONDS={raw!r} is not a number", 2)
    if not 0 < value <= 3600:
        r.fail("ROTATE_WAIT_SECONDS must be between 0 and 3600", 2)
    return value


def user_secrets(sm: Any) -> list[tuple[str, str]]:
    """(name, ARN) of search's username and password secrets."""
    names = [r.secret_name(USER, field) for field in ("username", "password")]
    return [(name, sm.describe_secret(SecretId=name)["ARN"]) for name in names]


def rotate(sm: Any) -> None:
    password = r.sensitive(secrets.token_hex())
    r.es_client().security.change_password(username=USER, password=password)
    r.say(f"user {USER}: new password in Elasticsearch")
    name = r.secret_name(USER, "password")
    sm.put_secret_value(SecretId=name, SecretString=password)
    r.say(f"secret {name}: new AWSCURRENT version")


def redeploy(ecs: Any, services: list[r.Service]) -> None:
    for service in services:
        ecs.update_service(cluster=service.cluster, service=service.name, forceNewDeployment=True)
        r.say(f"{service.ref}: forced a new deployment")


def rotate_search_properly() -> None:
    started = time.monotonic()
    timeout = wait_seconds()
    sm = r.aws("secretsmanager")
    ecs = r.aws("ecs")
    consumers = r.consumers_of(ecs, user_secrets(sm))
    if not consumers:
        r.fail(f"no ECS service reads {USER}'s secrets: run seed.py first")
    r.say(f"consumers of {USER}'s secrets: {', '.join(s.ref for s in consumers)}")
    rotate(sm)
    rotated_at = r.now_utc()
    # startedAt has whole-second resolution: start the new tasks in a later
    # second than the rotation so "started after" is never ambiguous.
    r.next_whole_second(rotated_at)
    redeploy(ecs, consumers)
    r.wait_until_stable(ecs, consumers, rotated_at, timeout)
    r.say(f"every consumer is stable on tasks started after the rotation ({time.monotonic() - started:.2f} s)")
    if not r.authenticates((USER, r.read_secret(sm, r.secret_name(USER, "password")))):
        r.fail(f"{USER}'s new secret does not authenticate")


if __name__ == "__main__":
    r.main(rotate_search_properly)
