"""Must be caught: the API-key variant of the incident.

Invalidates the API key stored in `elasticsearch/catalogue_api/search/api_key`,
creates a new one and puts it in the secret - and does not redeploy
prod-search-api-key, whose running task still holds the invalidated key (what
Terraform recreating the key did, years after 2021). Run seed_api_key.py
first. Environment: see ../replica.py.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import replica as r  # noqa: E402
from seed_api_key import create_api_key  # noqa: E402


def key_id(encoded: str) -> str:
    """The id half of an `encoded` API key (base64 of `id:key`)."""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except ValueError:
        r.fail(f"secret {r.API_KEY_SECRET} does not hold an encoded API key")
    if ":" not in decoded:
        r.fail(f"secret {r.API_KEY_SECRET} does not hold an encoded API key")
    return decoded.split(":", 1)[0]


def rotate_api_key() -> None:
    sm = r.aws("secretsmanager")
    old_id = key_id(r.read_secret(sm, r.API_KEY_SECRET))
    invalidated = r.es_client().security.invalidate_api_key(ids=[old_id])["invalidated_api_keys"]
    if old_id not in invalidated:
        r.fail("the stored API key was not invalidated")
    r.say(f"elasticsearch: invalidated the API key stored in {r.API_KEY_SECRET}")
    encoded = create_api_key()
    r.say("elasticsearch: created a new API key")
    sm.put_secret_value(SecretId=r.API_KEY_SECRET, SecretString=encoded)
    r.say(f"secret {r.API_KEY_SECRET}: new AWSCURRENT version; {r.API_KEY_SERVICE} not redeployed")


if __name__ == "__main__":
    r.main(rotate_api_key)
