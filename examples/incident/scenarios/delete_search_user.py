"""Must be caught: delete the `search` user, which running tasks use.

Expected: credential-in-use-removed (and live-credential-broken).
Environment: see ../replica.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import replica as r  # noqa: E402

USER = "search"


def delete_search_user() -> None:
    found = r.es_client().security.delete_user(username=USER)["found"]
    if not found:
        r.fail(f"user {USER} did not exist")
    r.say(f"deleted user {USER}")


if __name__ == "__main__":
    r.main(delete_search_user)
