"""Create (or update!) the catalogue API's Elasticsearch users - the 2021 script.

A replica, written for this project, of what the user-provisioning script run
on 2021-07-27 did (see docs/model.md, "The outage behind it"): it makes sure the
`catalogue_read` role exists, then for every service user it calls
`put_user` with a brand-new random password and writes the username and the
password to Secrets Manager.

`put_user` on an existing user *replaces* its password. The running ECS tasks
read the old password when they started, so the moment this script touches
`search` and `items`, every API task starts failing with
`security_exception: unable to authenticate user [search]` - until somebody
forces a new deployment. That is the outage opsguard exists to catch.

Environment (see replica.py): ES_URL, ES_USERNAME, ES_PASSWORD, the standard
boto3 AWS variables, and optionally OPSGUARD_DEMO_DELAY (seconds, float) to
sleep between users, so a watcher can see the damage happen. The passwords
are never printed.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import replica as r  # noqa: E402

ROLE_NAME = "catalogue_read"
SERVICE_USERS = ["search", "items", "diff_tool", "replication_manager", "internal_model_tool"]
MAX_DELAY = 60.0


def demo_delay() -> float:
    raw = os.environ.get("OPSGUARD_DEMO_DELAY", "").strip()
    if not raw:
        return 0.0
    try:
        delay = float(raw)
    except ValueError:
        r.fail(f"OPSGUARD_DEMO_DELAY={raw!r} is not a number of seconds", 2)
    if not 0 <= delay <= MAX_DELAY:
        r.fail(f"OPSGUARD_DEMO_DELAY must be between 0 and {MAX_DELAY:.0f} seconds", 2)
    return delay


def create_role(es: Any) -> None:
    response = es.security.put_role(
        name=ROLE_NAME,
        cluster=["monitor"],
        indices=[{"names": ["works-*", "images-*"], "privileges": ["read"]}],
    )
    verb = "Created" if response["role"]["created"] else "Updated"
    print(f"{verb} role {ROLE_NAME}", flush=True)


def create_user(es: Any, username: str) -> str:
    """put_user with a fresh password - for an existing user, a password change."""
    password = r.sensitive(secrets.token_hex())
    response = es.security.put_user(username=username, password=password, roles=[ROLE_NAME])
    verb = "Created" if response.get("created") else "Updated"
    print(f"{verb} user {username} with a new password", flush=True)
    return password


def store_secret(sm: Any, secret_id: str, value: str) -> None:
    """put_secret_value, creating the secret the first time."""
    try:
        sm.put_secret_value(SecretId=secret_id, SecretString=value)
    except sm.exceptions.ResourceNotFoundException:
        sm.create_secret(Name=secret_id, SecretString=value)
    print(f"Stored secret {secret_id}", flush=True)


def create_elastic_users() -> None:
    es = r.es_client()
    sm = r.aws("secretsmanager")
    delay = demo_delay()
    create_role(es)
    for i, username in enumerate(SERVICE_USERS):
        if i and delay:
            time.sleep(delay)
        password = create_user(es, username)
        store_secret(sm, f"elasticsearch/catalogue_api/{username}/username", username)
        store_secret(sm, f"elasticsearch/catalogue_api/{username}/password", password)
    print(f"Done: {len(SERVICE_USERS)} users provisioned", flush=True)


if __name__ == "__main__":
    r.main(create_elastic_users)
