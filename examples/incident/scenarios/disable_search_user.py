"""Must be caught: disable the `search` user, which running tasks use.

Expected: credential-in-use-removed (and live-credential-broken).
Environment: see ../replica.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import replica as r  # noqa: E402

USER = "search"


def disable_search_user() -> None:
    r.es_client().security.disable_user(username=USER)
    r.say(f"disabled user {USER}")


if __name__ == "__main__":
    r.main(disable_search_user)
