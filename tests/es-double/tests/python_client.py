"""Drive es-double with the official Python `elasticsearch` 8.x client.

Run by tests/python_client.rs with ES_URL and ES_ELASTIC_PASSWORD set.
Every step asserts real values; any failure exits non-zero. Never prints
passwords or keys.
"""

import os
import sys

import elasticsearch
from elasticsearch import (
    AuthenticationException,
    AuthorizationException,
    BadRequestError,
    Elasticsearch,
    NotFoundError,
)

URL = os.environ["ES_URL"]
ELASTIC_PW = os.environ["ES_ELASTIC_PASSWORD"]


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def expect_error(exc_type, fn, what):
    try:
        fn()
    except exc_type as e:
        return e
    print(f"FAILED: {what}: no {exc_type.__name__} raised", file=sys.stderr)
    sys.exit(1)


check(elasticsearch.__versionstr__.startswith("8."), "client is 8.x")

admin = Elasticsearch(URL, basic_auth=("elastic", ELASTIC_PW), request_timeout=10)

info = admin.info()
check(info["version"]["number"] == "8.15.0", "info version")
check(info["tagline"] == "You Know, for Search", "info tagline")
check(admin.cluster.health()["status"] == "green", "cluster health")

# put_user / get_user
r = admin.security.put_user(
    username="search",
    password="search-pass-1",
    roles=["superuser"],
    full_name="Search Service",
    email="search@example.com",
    metadata={"team": "catalogue"},
)
check(r["created"] is True, "put_user created")
r = admin.security.put_user(username="search", password="search-pass-1", roles=["superuser"],
                            full_name="Search Service", metadata={"team": "catalogue"})
check(r["created"] is False, "put_user again is an update")
u = admin.security.get_user(username="search")["search"]
check(u["username"] == "search", "get_user username")
check(u["roles"] == ["superuser"], "get_user roles")
check(u["full_name"] == "Search Service", "get_user full_name")
check(u["metadata"] == {"team": "catalogue"}, "get_user metadata")
check(u["enabled"] is True, "get_user enabled")
everyone = admin.security.get_user()
check("elastic" in everyone and everyone["elastic"]["metadata"] == {"_reserved": True}, "reserved users listed")
e = expect_error(NotFoundError, lambda: admin.security.get_user(username="nobody"), "get missing user")
check(e.meta.status == 404, "missing user is 404")

# validation errors surface as BadRequestError with the ES error type
e = expect_error(BadRequestError, lambda: admin.security.put_user(username="nopw", roles=[]), "user without password")
check(e.error == "validation_exception", f"validation error type: {e.error}")
check("password must be specified unless you are updating an existing user" in str(e.info), "validation reason")

# change_password: old password stops working, new one works
admin.security.change_password(username="search", password="search-pass-2")
search = Elasticsearch(URL, basic_auth=("search", "search-pass-2"), request_timeout=10)
me = search.security.authenticate()
check(me["username"] == "search", "authenticate username")
check(me["authentication_type"] == "realm", "authenticate type")
check(me["authentication_realm"] == {"name": "default_native", "type": "native"}, "authenticate realm")

old = Elasticsearch(URL, basic_auth=("search", "search-pass-1"), request_timeout=10)
e = expect_error(AuthenticationException, lambda: old.security.authenticate(), "old password")
check(e.meta.status == 401, "old password is 401")
check(e.error == "security_exception", "401 error type")
check(
    e.info["error"]["reason"] == "unable to authenticate user [search] for REST request [/_security/_authenticate]",
    f"401 reason: {e.info['error']['reason']}",
)
check(e.meta.headers.get("x-elastic-product") == "Elasticsearch", "product header on 401")

# disable_user / enable_user
admin.security.disable_user(username="search")
e = expect_error(AuthenticationException, lambda: search.security.authenticate(), "disabled user")
check(e.meta.status == 401, "disabled user is 401")
admin.security.enable_user(username="search")
check(search.security.authenticate()["username"] == "search", "enabled again")

# 403 surfaces as AuthorizationException
admin.security.put_role(name="reader", cluster=["monitor"])
admin.security.put_user(username="reader", password="reader-pass", roles=["reader"])
reader = Elasticsearch(URL, basic_auth=("reader", "reader-pass"), request_timeout=10)
check(reader.cluster.health()["status"] == "green", "reader has monitor")
e = expect_error(
    AuthorizationException,
    lambda: reader.security.put_user(username="x", password="xxxxxxxx", roles=[]),
    "reader creating a user",
)
check(e.meta.status == 403, "forbidden is 403")
check("is unauthorized for user [reader] with effective roles [reader]" in e.info["error"]["reason"], "403 reason")

# API keys: create, authenticate with it (both forms), get, invalidate
key = search.security.create_api_key(name="search-key", expiration="1d", metadata={"app": "search"})
for field in ("id", "name", "api_key", "encoded", "expiration"):
    check(field in key, f"create_api_key returns {field}")
check(key["name"] == "search-key", "api key name")

by_encoded = Elasticsearch(URL, api_key=key["encoded"], request_timeout=10)
me = by_encoded.security.authenticate()
check(me["username"] == "search", "api key owner")
check(me["authentication_type"] == "api_key", "api key auth type")
check(me["api_key"] == {"id": key["id"], "name": "search-key"}, "api key info")
by_tuple = Elasticsearch(URL, api_key=(key["id"], key["api_key"]), request_timeout=10)
check(by_tuple.security.authenticate()["api_key"]["id"] == key["id"], "api key tuple form")

got = admin.security.get_api_key(id=key["id"])["api_keys"]
check(len(got) == 1 and got[0]["invalidated"] is False and got[0]["username"] == "search", "get_api_key")
owned = search.security.get_api_key(owner=True)["api_keys"]
check([k["id"] for k in owned] == [key["id"]], "get own api keys")

inv = admin.security.invalidate_api_key(ids=[key["id"]])
check(inv["invalidated_api_keys"] == [key["id"]], "invalidate_api_key")
check(inv["error_count"] == 0, "invalidate error_count")
e = expect_error(AuthenticationException, lambda: by_encoded.security.authenticate(), "invalidated key")
check(e.meta.status == 401, "invalidated key is 401")
check(
    e.info["error"]["additional_unsuccessful_credentials"] == f"API key: api key [{key['id']}] has been invalidated",
    "invalidated key reason",
)

# a 401 without credentials at all
anonymous = Elasticsearch(URL, request_timeout=10)
e = expect_error(AuthenticationException, lambda: anonymous.info(), "no credentials")
check(e.info["error"]["reason"] == "missing authentication credentials for REST request [/]", "missing credentials reason")

print("python-client-ok")
