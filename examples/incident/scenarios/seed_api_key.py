"""Extra seeding for the API-key variant (run after ../seed.py).

Creates an Elasticsearch API key for the search API (owned by the admin user,
limited to catalogue_read's privileges), stores its `encoded` value in the
secret `elasticsearch/catalogue_api/search/api_key`, and registers task
definition + service `prod-search-api-key` (1 task) whose container `app`
reads that secret by full ARN as env `es_apikey`.
Environment: see ../replica.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import replica as r  # noqa: E402
import seed  # noqa: E402

KEY_NAME = "catalogue-api-search"
ENVIRONMENT = "prod"


def create_api_key() -> str:
    """A new API key for search; returns its `encoded` value."""
    key = r.es_client().security.create_api_key(
        name=KEY_NAME,
        role_descriptors={r.ROLE: {"cluster": r.ROLE_CLUSTER_PRIVILEGES, "indices": r.ROLE_INDICES}},
        metadata={"service": "search", "provisioned_by": "seed_api_key.py"},
    )
    r.sensitive(key["api_key"])
    return r.sensitive(key["encoded"])


def seed_api_key() -> None:
    ecs = r.aws("ecs")
    if not any(c.get("status") == "ACTIVE" for c in ecs.describe_clusters(clusters=[r.CLUSTER])["clusters"]):
        r.fail(f"no cluster {r.CLUSTER}: run seed.py first")
    encoded = create_api_key()
    r.say(f"elasticsearch: API key {KEY_NAME}")
    sm = r.aws("secretsmanager")
    arn = r.store_secret(sm, r.API_KEY_SECRET, encoded, "Elasticsearch API key for the catalogue API's search user")["ARN"]
    r.say(f"secretsmanager: {r.API_KEY_SECRET}")
    account = arn.split(":")[4]
    definition = seed.container("search", ENVIRONMENT, {r.API_KEY_ENV: arn}, r.aws_region(), r.es_url().removeprefix("http://"))
    task_definition = seed.register_task_definition(ecs, r.API_KEY_SERVICE, definition, account)
    seed.create_or_update_service(ecs, r.API_KEY_SERVICE, task_definition, 1)
    r.say(f"ecs: service {r.API_KEY_SERVICE} (1 task) reads {r.API_KEY_SECRET} as {r.API_KEY_ENV}")
    if not r.api_key_authenticates(r.read_secret(sm, r.API_KEY_SECRET)):
        r.fail("the stored API key does not authenticate")


if __name__ == "__main__":
    r.main(seed_api_key)
