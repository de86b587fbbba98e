"""Must be caught: change `search`'s password in Elasticsearch only.

The secret keeps the old password, which the running search tasks use: they
can no longer authenticate (live-credential-broken), and the next task to
start would read a password that does not work (secret-out-of-sync).
Environment: see ../replica.py.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import replica as r  # noqa: E402

USER = "search"


def rotate_es_only() -> None:
    es = r.es_client()
    es.security.change_password(username=USER, password=r.sensitive(secrets.token_hex()))
    r.say(f"user {USER}: new password in Elasticsearch; secret {r.secret_name(USER, 'password')} left as it was")


if __name__ == "__main__":
    r.main(rotate_es_only)
