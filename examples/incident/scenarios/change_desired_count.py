"""Must be caught (warn): stage-search-api scaled from 1 to 3 tasks.

What Terraform did in 2021 when `desired_count` sat in `ignore_changes`: the
stage service ran 3 tasks instead of 1 and nobody noticed. Waits (bounded)
until the new tasks run, so only `desired-count-changed` applies, not
`service-degraded`. Environment: see ../replica.py.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import replica as r  # noqa: E402

SERVICE = "stage-search-api"
DESIRED = 3
TIMEOUT = 30.0
POLL = 0.25


def describe(ecs: Any) -> dict[str, Any]:
    services = ecs.describe_services(cluster=r.CLUSTER, services=[SERVICE])["services"]
    if not services:
        r.fail(f"no service {SERVICE} in {r.CLUSTER}: run seed.py first")
    return services[0]


def change_desired_count() -> None:
    ecs = r.aws("ecs")
    before = describe(ecs)["desiredCount"]
    ecs.update_service(cluster=r.CLUSTER, service=SERVICE, desiredCount=DESIRED)
    r.say(f"{r.CLUSTER}/{SERVICE}: desired count {before} -> {DESIRED}")
    deadline = time.monotonic() + TIMEOUT
    for _ in range(int(TIMEOUT / POLL) + 1):
        if describe(ecs)["runningCount"] == DESIRED:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(POLL)
    r.fail(f"{SERVICE} did not reach {DESIRED} running tasks within {TIMEOUT:.0f} s")


if __name__ == "__main__":
    r.main(change_desired_count)
