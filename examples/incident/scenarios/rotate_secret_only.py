"""Must be caught: change `search`'s password secret only.

Elasticsearch keeps the old password, so the secret's new AWSCURRENT value
does not authenticate (secret-out-of-sync), and the running tasks were
started before the secret changed (secret-rotated-without-redeploy).
Environment: see ../replica.py.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import replica as r  # noqa: E402

USER = "search"


def rotate_secret_only() -> None:
    sm = r.aws("secretsmanager")
    name = r.secret_name(USER, "password")
    sm.put_secret_value(SecretId=name, SecretString=r.sensitive(secrets.token_hex()))
    r.say(f"secret {name}: new AWSCURRENT version; Elasticsearch left as it was")


if __name__ == "__main__":
    r.main(rotate_secret_only)
