"""No false alarm: rotate `diff_tool`, which no service consumes.

New password in Elasticsearch (change_password) and in its secret. Nothing
runs with the old one, so nothing breaks. Environment: see ../replica.py.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import replica as r  # noqa: E402

USER = "diff_tool"


def rotate_unused_user() -> None:
    es = r.es_client()
    sm = r.aws("secretsmanager")
    name = r.secret_name(USER, "password")
    old = r.read_secret(sm, name)
    password = r.sensitive(secrets.token_hex())
    es.security.change_password(username=USER, password=password)
    r.say(f"user {USER}: new password in Elasticsearch")
    sm.put_secret_value(SecretId=name, SecretString=password)
    r.say(f"secret {name}: new AWSCURRENT version")
    if r.authenticates((USER, old)) or not r.authenticates((USER, r.read_secret(sm, name))):
        r.fail(f"{USER}: the rotation did not take (old password still works or new one does not)")


if __name__ == "__main__":
    r.main(rotate_unused_user)
