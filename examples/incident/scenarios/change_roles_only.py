"""No false alarm: add a role to `search` without touching its password.

`put_user` without a password updates an existing user and keeps its
password. Real Elasticsearch replaces the rest of the user document, so the
current full name, email, metadata and enabled flag are sent back unchanged;
only the roles grow by `catalogue_monitor` (created here: cluster `monitor`).
Environment: see ../replica.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import replica as r  # noqa: E402

USER = "search"
NEW_ROLE = "catalogue_monitor"


def change_roles_only() -> None:
    es = r.es_client()
    es.security.put_role(name=NEW_ROLE, cluster=["monitor"])
    user = es.security.get_user(username=USER)[USER]
    roles = list(user["roles"])
    if NEW_ROLE in roles:
        r.fail(f"{USER} already has role {NEW_ROLE}")
    es.security.put_user(
        username=USER,
        roles=roles + [NEW_ROLE],
        full_name=user.get("full_name"),
        email=user.get("email"),
        metadata=user.get("metadata", {}),
        enabled=user.get("enabled", True),
    )
    r.say(f"user {USER}: roles {roles} -> {roles + [NEW_ROLE]} (password unchanged)")
    sm = r.aws("secretsmanager")
    if not r.authenticates((USER, r.read_secret(sm, r.secret_name(USER, "password")))):
        r.fail(f"{USER}'s secret no longer authenticates after a roles-only change")


if __name__ == "__main__":
    r.main(change_roles_only)
