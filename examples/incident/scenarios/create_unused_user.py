"""No false alarm: create a new user and its two secrets, consumed by nothing.

Creates Elasticsearch user `reindex_worker` (role catalogue_read) with a
random password, and the secrets `elasticsearch/catalogue_api/reindex_worker/
username` and `.../password`. No task definition reads them, so opsguard must
report no blocking violation. Environment: see ../replica.py.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import replica as r  # noqa: E402

USER = "reindex_worker"


def create_unused_user() -> None:
    es = r.es_client()
    sm = r.aws("secretsmanager")
    if es.options(ignore_status=404).security.get_user(username=USER).meta.status != 404:
        r.fail(f"user {USER} already exists: this scenario creates a new one")
    password = r.sensitive(secrets.token_hex())
    es.security.put_user(username=USER, password=password, roles=[r.ROLE], full_name=f"catalogue API {USER}")
    r.say(f"created user {USER}")
    for field, value in (("username", USER), ("password", password)):
        name = r.secret_name(USER, field)
        r.store_secret(sm, name, value, f"Elasticsearch {field} for the catalogue API's {USER} user")
        r.say(f"created secret {name}")
    if not r.authenticates((USER, r.read_secret(sm, r.secret_name(USER, "password")))):
        r.fail(f"the new secret of {USER} does not authenticate")


if __name__ == "__main__":
    r.main(create_unused_user)
