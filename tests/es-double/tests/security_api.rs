//! Behaviour of the double beyond the YAML conformance cases: error shapes
//! and headers, validation, roles, API keys, authorization, routing, fault
//! injection and request recording.

mod common;

use common::{basic, unauthorized_body, Auth, Es, ADMIN, ELASTIC_PW};
use serde_json::json;

// ---- 401 ----------------------------------------------------------------------------------

#[tokio::test]
async fn missing_credentials_is_a_401_shaped_like_elasticsearch() {
    let es = Es::start();
    let r = es.get("/_cluster/health?pretty", Auth::None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json,
        unauthorized_body(
            "missing authentication credentials for REST request [/_cluster/health?pretty]"
        )
    );
    assert_eq!(
        r.header_values("www-authenticate"),
        vec!["Basic realm=\"security\", charset=\"UTF-8\"", "ApiKey"]
    );
    assert_eq!(r.header_values("x-elastic-product"), vec!["Elasticsearch"]);
    assert_eq!(r.header_values("content-type"), vec!["application/json"]);
}

#[tokio::test]
async fn wrong_password_unknown_user_and_disabled_user_are_401() {
    let es = Es::start();
    let r = es
        .get(
            "/_security/_authenticate?filter_path=username",
            Auth::Basic("elastic", "nope"),
        )
        .await;
    assert_eq!(r.status, 401);
    // exact compact body, as the product returns it
    assert_eq!(
        r.text,
        r#"{"error":{"root_cause":[{"type":"security_exception","reason":"unable to authenticate user [elastic] for REST request [/_security/_authenticate?filter_path=username]","header":{"WWW-Authenticate":["Basic realm=\"security\", charset=\"UTF-8\"","ApiKey"]}}],"type":"security_exception","reason":"unable to authenticate user [elastic] for REST request [/_security/_authenticate?filter_path=username]","header":{"WWW-Authenticate":["Basic realm=\"security\", charset=\"UTF-8\"","ApiKey"]}},"status":401}"#
    );
    assert_eq!(r.header_values("www-authenticate").len(), 2);

    let r = es.get("/", Auth::Basic("search", "whatever")).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.reason(),
        "unable to authenticate user [search] for REST request [/]"
    );

    es.put_user(
        "search",
        r#"{"password": "search-pass", "roles": ["superuser"], "enabled": false}"#,
    )
    .await;
    let r = es.get("/", Auth::Basic("search", "search-pass")).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.reason(),
        "unable to authenticate user [search] for REST request [/]"
    );
}

#[tokio::test]
async fn malformed_basic_header_and_unknown_scheme() {
    let es = Es::start();
    let r = es.get("/", Auth::Raw("Basic !!!notbase64")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.reason(), "invalid basic authentication header encoding");
    let r = es.get("/", Auth::Raw("Basic ZWxhc3RpYw==")).await; // "elastic", no colon
    assert_eq!(r.status, 401);
    assert_eq!(r.reason(), "invalid basic authentication header value");
    let r = es.get("/", Auth::Raw("Bearer abc")).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.reason(),
        "missing authentication credentials for REST request [/]"
    );
}

#[tokio::test]
async fn unauthenticated_requests_to_unknown_paths_are_401_first() {
    let es = Es::start();
    let r = es.get("/no/such/path", Auth::None).await;
    assert_eq!(r.status, 401);
    let r = es.get("/no/such/path", ADMIN).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        json!({"error": "no handler found for uri [/no/such/path] and method [GET]"})
    );
}

// ---- 403 ----------------------------------------------------------------------------------

#[tokio::test]
async fn forbidden_is_a_403_with_elasticsearchs_message() {
    let es = Es::start();
    es.put_role("catalogue_read", r#"{"cluster": ["monitor"], "indices": [{"names": ["catalogue-*"], "privileges": ["read"]}]}"#)
        .await;
    es.put_user(
        "search",
        r#"{"password": "search-pass", "roles": ["catalogue_read"]}"#,
    )
    .await;
    let search = Auth::Basic("search", "search-pass");
    // monitor is enough for health and GET /
    assert_eq!(es.health(search).await.status, 200);
    assert_eq!(es.get("/", search).await.status, 200);

    let r = es
        .put(
            "/_security/user/items",
            search,
            r#"{"password": "items-pass", "roles": []}"#,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json,
        json!({
            "error": {
                "root_cause": [{
                    "type": "security_exception",
                    "reason": "action [cluster:admin/xpack/security/user/put] is unauthorized for user [search] with effective roles [catalogue_read], this action is granted by the cluster privileges [manage_security,all]"
                }],
                "type": "security_exception",
                "reason": "action [cluster:admin/xpack/security/user/put] is unauthorized for user [search] with effective roles [catalogue_read], this action is granted by the cluster privileges [manage_security,all]"
            },
            "status": 403
        })
    );
    assert_eq!(r.header_values("x-elastic-product"), vec!["Elasticsearch"]);
    assert!(r.header_values("www-authenticate").is_empty());

    let r = es.get("/_security/user", search).await;
    assert_eq!(r.status, 403);
    assert!(
        r.reason().ends_with(
            "this action is granted by the cluster privileges [read_security,manage_security,all]"
        ),
        "{}",
        r.text
    );

    // the user may still authenticate and change their own password
    assert_eq!(es.get("/_security/_authenticate", search).await.status, 200);
    let r = es
        .post(
            "/_security/user/search/_password",
            search,
            r#"{"password": "search-pass-2"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn missing_roles_are_named_in_the_denial() {
    let es = Es::start();
    es.put_user(
        "ghostly",
        r#"{"password": "ghostly-pass", "roles": ["ghost", "also_missing"]}"#,
    )
    .await;
    let r = es.health(Auth::Basic("ghostly", "ghostly-pass")).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.reason(),
        "action [cluster:monitor/health] is unauthorized for user [ghostly] with effective roles [] (assigned roles [also_missing,ghost] were not found), this action is granted by the cluster privileges [monitor,manage,all]"
    );
}

#[tokio::test]
async fn read_security_and_manage_security_roles() {
    let es = Es::start();
    es.put_role("auditor", r#"{"cluster": ["read_security"]}"#)
        .await;
    es.put_role("secadmin", r#"{"cluster": ["manage_security"]}"#)
        .await;
    es.put_user("aud", r#"{"password": "aud-pass", "roles": ["auditor"]}"#)
        .await;
    es.put_user("sec", r#"{"password": "sec-pass", "roles": ["secadmin"]}"#)
        .await;
    let aud = Auth::Basic("aud", "aud-pass");
    let sec = Auth::Basic("sec", "sec-pass");
    assert_eq!(es.get("/_security/user/aud", aud).await.status, 200);
    assert_eq!(es.get("/_security/role/auditor", aud).await.status, 200);
    assert_eq!(
        es.put(
            "/_security/user/x",
            aud,
            r#"{"password": "xxxxxx", "roles": []}"#
        )
        .await
        .status,
        403
    );
    // manage_security does not include monitor
    assert_eq!(es.health(sec).await.status, 403);
    let r = es
        .put(
            "/_security/user/x",
            sec,
            r#"{"password": "xxxxxx", "roles": []}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        es.put("/_security/user/x/_disable", sec, "").await.status,
        200
    );
    assert_eq!(es.delete("/_security/user/x", sec).await.status, 200);
}

// ---- users --------------------------------------------------------------------------------

#[tokio::test]
async fn user_validation_errors() {
    let es = Es::start();
    let r = es
        .put(
            "/_security/user/newbie",
            ADMIN,
            r#"{"roles": ["superuser"]}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "validation_exception");
    assert_eq!(
        r.reason(),
        "Validation Failed: 1: password must be specified unless you are updating an existing user;"
    );

    let r = es
        .put(
            "/_security/user/newbie",
            ADMIN,
            r#"{"password": "short", "roles": []}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "validation_exception");
    assert_eq!(
        r.reason(),
        "Validation Failed: 1: passwords must be at least [6] characters long;"
    );

    let r = es
        .put(
            "/_security/user/newbie",
            ADMIN,
            r#"{"password": "long-enough", "roles": [], "metadata": {"_hidden": 1}}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "action_request_validation_exception");
    assert_eq!(
        r.reason(),
        "Validation Failed: 1: metadata keys may not start with [_];"
    );

    let r = es
        .put(
            "/_security/user/newbie",
            ADMIN,
            r#"{"password": "long-enough"}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.reason(), "Validation Failed: 1: roles are missing;");

    let r = es
        .put(
            "/_security/user/newbie",
            ADMIN,
            r#"{"password": "long-enough", "roles": [], "colour": "red"}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "parse_exception");
    assert_eq!(
        r.reason(),
        "failed to parse add user request. unexpected field [colour]"
    );

    let r = es
        .put(
            "/_security/user/newbie",
            ADMIN,
            r#"{"password": 123456, "roles": []}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.reason(),
        "expected field [password] to be of type string, but found [VALUE_NUMBER] instead"
    );

    let r = es.put("/_security/user/newbie", ADMIN, "").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        (r.error_type(), r.reason()),
        ("parse_exception", "request body is required")
    );

    let r = es
        .put("/_security/user/newbie", ADMIN, r#"{"password": "#)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "x_content_parse_exception");
    assert!(r.reason().starts_with("[1:"), "{}", r.text);

    let r = es
        .put(
            "/_security/user/%20spaced",
            ADMIN,
            r#"{"password": "long-enough", "roles": []}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.reason().starts_with(
            "Validation Failed: 1: User names must be at least 1 and no more than 1024 characters."
        ),
        "{}",
        r.text
    );

    // nothing was created by any of the above
    assert_eq!(es.get("/_security/user/newbie", ADMIN).await.status, 404);
}

#[tokio::test]
async fn update_without_password_keeps_the_password_and_resets_omitted_fields() {
    let es = Es::start();
    es.put_user(
        "items",
        r#"{"password": "items-pass", "roles": ["superuser"], "full_name": "Items", "metadata": {"a": 1}}"#,
    )
    .await;
    let r = es
        .post(
            "/_security/user/items?refresh=wait_for",
            ADMIN,
            r#"{"roles": ["viewer"]}"#,
        )
        .await;
    assert_eq!(
        (r.status, &r.json),
        (200, &json!({"created": false})),
        "{}",
        r.text
    );
    let r = es.get("/_security/user/items", ADMIN).await;
    assert_eq!(
        r.json["items"],
        json!({"username": "items", "roles": ["viewer"], "full_name": null, "email": null, "metadata": {}, "enabled": true})
    );
    assert_eq!(
        es.get(
            "/_security/_authenticate",
            Auth::Basic("items", "items-pass")
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn reserved_users() {
    let es = Es::start();
    let r = es
        .put(
            "/_security/user/elastic",
            ADMIN,
            r#"{"password": "new-elastic-pw", "roles": ["superuser"]}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "action_request_validation_exception");
    assert_eq!(
        r.reason(),
        "Validation Failed: 1: user [elastic] is reserved and only the password can be changed;"
    );

    let r = es.delete("/_security/user/kibana_system", ADMIN).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "illegal_argument_exception");
    assert_eq!(
        r.reason(),
        "user [kibana_system] is reserved and cannot be deleted"
    );

    // reserved users are listed with _reserved metadata
    let r = es.get("/_security/user", ADMIN).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json["elastic"],
        json!({"username": "elastic", "roles": ["superuser"], "full_name": null, "email": null, "metadata": {"_reserved": true}, "enabled": true})
    );
    for name in [
        "kibana",
        "kibana_system",
        "logstash_system",
        "beats_system",
        "apm_system",
        "remote_monitoring_user",
    ] {
        assert_eq!(r.json[name]["metadata"]["_reserved"], json!(true), "{name}");
    }

    // a reserved user's password can be set, after which it authenticates
    let ks = Auth::Basic("kibana_system", "kibana-pass");
    assert_eq!(es.get("/_security/_authenticate", ks).await.status, 401);
    let r = es
        .put(
            "/_security/user/kibana_system/_password",
            ADMIN,
            r#"{"password": "kibana-pass"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = es.get("/_security/_authenticate", ks).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json["authentication_realm"],
        json!({"name": "reserved", "type": "reserved"})
    );
    assert_eq!(r.json["metadata"], json!({"_reserved": true}));

    // elastic changes its own password
    let r = es
        .put(
            "/_security/user/_password",
            ADMIN,
            r#"{"password": "elastic-2-pw"}"#,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(es.get("/", ADMIN).await.status, 401);
    assert_eq!(
        es.get("/", Auth::Basic("elastic", "elastic-2-pw"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn get_delete_and_password_of_missing_users() {
    let es = Es::start();
    es.put_user("search", r#"{"password": "search-pass", "roles": []}"#)
        .await;
    es.put_user("items", r#"{"password": "items-pass", "roles": []}"#)
        .await;

    let r = es.get("/_security/user/search,nobody,items", ADMIN).await;
    assert_eq!(r.status, 200);
    let names: Vec<&String> = r.json.as_object().unwrap().keys().collect();
    assert_eq!(names, vec!["search", "items"]);

    let r = es.get("/_security/user/nobody,ghost", ADMIN).await;
    assert_eq!((r.status, r.text.as_str()), (404, "{}"));

    let r = es.delete("/_security/user/search", ADMIN).await;
    assert_eq!((r.status, &r.json), (200, &json!({"found": true})));
    let r = es.delete("/_security/user/search", ADMIN).await;
    assert_eq!((r.status, &r.json), (404, &json!({"found": false})));

    let r = es
        .put(
            "/_security/user/nobody/_password",
            ADMIN,
            r#"{"password": "whatever-pw"}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "validation_exception");
    assert_eq!(
        r.reason(),
        "Validation Failed: 1: user must exist in order to change password;"
    );

    let r = es.put("/_security/user/nobody/_enable", ADMIN, "").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.reason(),
        "Validation Failed: 1: only existing users can be enabled;"
    );

    let r = es
        .post("/_security/user/items/_password", ADMIN, r#"{}"#)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.reason(), "Validation Failed: 1: password is missing;");
}

// ---- roles --------------------------------------------------------------------------------

#[tokio::test]
async fn role_api() {
    let es = Es::start();
    let body = r#"{"cluster": ["monitor"], "indices": [{"names": ["catalogue-*"], "privileges": ["read"]}], "metadata": {"owner": "catalogue"}}"#;
    let r = es.put("/_security/role/catalogue_read", ADMIN, body).await;
    assert_eq!(
        (r.status, &r.json),
        (200, &json!({"role": {"created": true}}))
    );
    let r = es.post("/_security/role/catalogue_read", ADMIN, body).await;
    assert_eq!(r.json, json!({"role": {"created": false}}));

    let r = es.get("/_security/role/catalogue_read", ADMIN).await;
    assert_eq!(
        r.json,
        json!({"catalogue_read": {
            "cluster": ["monitor"],
            "indices": [{"names": ["catalogue-*"], "privileges": ["read"], "allow_restricted_indices": false}],
            "applications": [],
            "run_as": [],
            "metadata": {"owner": "catalogue"},
            "transient_metadata": {"enabled": true}
        }})
    );
    let r = es.get("/_security/role", ADMIN).await;
    assert_eq!(r.json["superuser"]["cluster"], json!(["all"]));
    assert_eq!(r.json["superuser"]["metadata"], json!({"_reserved": true}));
    assert!(r.json.get("catalogue_read").is_some());

    let r = es.get("/_security/role/nope", ADMIN).await;
    assert_eq!((r.status, r.text.as_str()), (404, "{}"));

    let r = es
        .put(
            "/_security/role/superuser",
            ADMIN,
            r#"{"cluster": ["all"]}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.reason(),
        "Validation Failed: 1: Role [superuser] is reserved and may not be used.;"
    );

    let r = es
        .put("/_security/role/bad", ADMIN, r#"{"cluster": ["fly"]}"#)
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.reason()
            .starts_with("Validation Failed: 1: unknown cluster privilege [fly]."),
        "{}",
        r.text
    );

    let r = es.delete("/_security/role/superuser", ADMIN).await;
    assert_eq!(
        (r.status, r.reason()),
        (400, "role [superuser] is reserved and cannot be deleted")
    );
    let r = es.delete("/_security/role/catalogue_read", ADMIN).await;
    assert_eq!((r.status, &r.json), (200, &json!({"found": true})));
    let r = es.delete("/_security/role/catalogue_read", ADMIN).await;
    assert_eq!((r.status, &r.json), (404, &json!({"found": false})));
}

// ---- API keys -------------------------------------------------------------------------

#[tokio::test]
async fn api_key_create_authenticate_get_invalidate() {
    let es = Es::start();
    let r = es
        .post(
            "/_security/api_key",
            ADMIN,
            r#"{"name": "search-key", "expiration": "1d", "metadata": {"app": "search"}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let keys: Vec<&String> = r.json.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["id", "name", "expiration", "api_key", "encoded"]);
    let id = r.json["id"].as_str().unwrap().to_string();
    let secret = r.json["api_key"].as_str().unwrap().to_string();
    let encoded = r.json["encoded"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 20);
    assert_eq!(secret.len(), 22);
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&encoded)
            .unwrap(),
        format!("{id}:{secret}").into_bytes()
    );
    assert_eq!(r.json["name"], "search-key");
    let expiration = r.json["expiration"].as_u64().unwrap();

    let r = es
        .get("/_security/_authenticate", Auth::ApiKey(&encoded))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json,
        json!({
            "username": "elastic",
            "roles": [],
            "full_name": null,
            "email": null,
            "metadata": {"_reserved": true},
            "enabled": true,
            "authentication_realm": {"name": "_es_api_key", "type": "_es_api_key"},
            "lookup_realm": {"name": "_es_api_key", "type": "_es_api_key"},
            "authentication_type": "api_key",
            "api_key": {"id": id, "name": "search-key"}
        })
    );
    // the key carries its owner's (superuser) privileges
    assert_eq!(
        es.put(
            "/_security/user/viakey",
            Auth::ApiKey(&encoded),
            r#"{"password": "viakey-pw", "roles": []}"#
        )
        .await
        .status,
        200
    );

    let r = es.get(&format!("/_security/api_key?id={id}"), ADMIN).await;
    assert_eq!(r.status, 200);
    let k = &r.json["api_keys"][0];
    assert_eq!(k["id"], json!(id));
    assert_eq!(k["name"], "search-key");
    assert_eq!(k["invalidated"], json!(false));
    assert_eq!(k["username"], "elastic");
    assert_eq!(k["realm"], "reserved");
    assert_eq!(k["metadata"], json!({"app": "search"}));
    assert_eq!(k["expiration"].as_u64(), Some(expiration));
    assert!(k["creation"].as_u64().unwrap() < expiration);
    assert!(k.get("api_key").is_none(), "the secret is never returned");

    let r = es.get("/_security/api_key?name=search-*", ADMIN).await;
    assert_eq!(r.json["api_keys"].as_array().unwrap().len(), 1);
    let r = es.get("/_security/api_key?owner=true", ADMIN).await;
    assert_eq!(r.json["api_keys"].as_array().unwrap().len(), 1);
    let r = es.get("/_security/api_key?id=doesnotexist", ADMIN).await;
    assert_eq!((r.status, &r.json), (404, &json!({"api_keys": []})));
    let r = es.get("/_security/api_key?name=nothing", ADMIN).await;
    assert_eq!((r.status, &r.json), (200, &json!({"api_keys": []})));

    let body = format!(r#"{{"ids": ["{id}"]}}"#);
    let r = es
        .call("DELETE", "/_security/api_key", ADMIN, Some(&body))
        .await;
    assert_eq!(
        (r.status, &r.json),
        (
            200,
            &json!({"invalidated_api_keys": [id], "previously_invalidated_api_keys": [], "error_count": 0})
        )
    );
    let r = es
        .call("DELETE", "/_security/api_key", ADMIN, Some(&body))
        .await;
    // Elasticsearch searches only keys not yet invalidated, so an already
    // invalidated key matches nothing (see
    // `invalidating_an_invalidated_key_again_is_an_empty_success`).
    assert_eq!(
        (r.status, &r.json),
        (
            200,
            &json!({"invalidated_api_keys": [], "previously_invalidated_api_keys": [], "error_count": 0})
        )
    );

    let r = es
        .get("/_security/_authenticate", Auth::ApiKey(&encoded))
        .await;
    assert_eq!(r.status, 401);
    let reason = "unable to authenticate with provided credentials and anonymous access is not allowed for this request";
    assert_eq!(r.reason(), reason);
    assert_eq!(
        r.json["error"]["additional_unsuccessful_credentials"],
        json!(format!("API key: api key [{id}] has been invalidated"))
    );
    assert_eq!(
        r.json["error"]["root_cause"][0]["additional_unsuccessful_credentials"],
        r.json["error"]["additional_unsuccessful_credentials"]
    );
    assert_eq!(r.header_values("www-authenticate").len(), 2);

    let r = es.get(&format!("/_security/api_key?id={id}"), ADMIN).await;
    assert_eq!(r.json["api_keys"][0]["invalidated"], json!(true));
    assert!(r.json["api_keys"][0]["invalidation"].as_u64().is_some());
}

/// Invalidating a key that is already invalidated, as Elasticsearch 8.x
/// does it: the invalidate action searches only for keys that are *not*
/// invalidated (`ApiKeyService.invalidateApiKeys` passes
/// `filterOutInvalidatedKeys = true`), so an already invalidated key matches
/// nothing and the answer is the empty response — it is not listed in
/// `previously_invalidated_api_keys`. That list holds only keys whose update
/// turned out to be a no-op, i.e. keys another request invalidated between
/// the search and the update; a double that serialises requests never sees
/// that race. The REST specification's description of the field ("the IDs of
/// the API keys that were already invalidated") reads as if it were filled
/// here; the server's code says otherwise, and clients (and opsguard) must
/// not rely on it.
#[tokio::test]
async fn invalidating_an_invalidated_key_again_is_an_empty_success() {
    let es = Es::start();
    let mut ids = Vec::new();
    for name in ["old-key", "fresh-key"] {
        let r = es
            .post(
                "/_security/api_key",
                ADMIN,
                &format!(r#"{{"name": "{name}"}}"#),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        ids.push(r.json["id"].as_str().unwrap().to_string());
    }
    let (old, fresh) = (&ids[0], &ids[1]);
    let once = format!(r#"{{"ids": ["{old}"]}}"#);
    let r = es
        .call("DELETE", "/_security/api_key", ADMIN, Some(&once))
        .await;
    assert_eq!(r.json["invalidated_api_keys"], json!([old]));

    // Again, by id: found by nothing, so nothing is listed anywhere.
    let r = es
        .call("DELETE", "/_security/api_key", ADMIN, Some(&once))
        .await;
    assert_eq!(
        (r.status, &r.json),
        (
            200,
            &json!({"invalidated_api_keys": [], "previously_invalidated_api_keys": [], "error_count": 0})
        )
    );
    assert!(r.json.get("error_details").is_none());

    // Both, by id: only the one still valid is invalidated and listed.
    let both = format!(r#"{{"ids": ["{old}", "{fresh}"]}}"#);
    let r = es
        .call("DELETE", "/_security/api_key", ADMIN, Some(&both))
        .await;
    assert_eq!(
        r.json,
        json!({"invalidated_api_keys": [fresh], "previously_invalidated_api_keys": [], "error_count": 0})
    );

    // By name, after both are invalidated: the same empty success.
    let r = es
        .call(
            "DELETE",
            "/_security/api_key",
            ADMIN,
            Some(r#"{"name": "*-key"}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["invalidated_api_keys"], json!([]));
    assert_eq!(r.json["previously_invalidated_api_keys"], json!([]));

    // And both still show as invalidated, with their first invalidation time.
    let r = es.get(&format!("/_security/api_key?id={old}"), ADMIN).await;
    assert_eq!(r.json["api_keys"][0]["invalidated"], json!(true));
}

#[tokio::test]
async fn bad_api_keys_are_401() {
    let es = Es::start();
    let r = es
        .post("/_security/api_key", ADMIN, r#"{"name": "k"}"#)
        .await;
    let id = r.json["id"].as_str().unwrap().to_string();
    use base64::Engine as _;
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{id}:wrongsecret"));
    let r = es.get("/", Auth::ApiKey(&wrong)).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json["error"]["additional_unsuccessful_credentials"],
        json!(format!("API key: invalid credentials for API key [{id}]"))
    );
    let unknown = base64::engine::general_purpose::STANDARD.encode("nosuchid:secret");
    let r = es.get("/", Auth::ApiKey(&unknown)).await;
    assert_eq!(
        r.json["error"]["additional_unsuccessful_credentials"],
        json!("API key: unable to find apikey with id nosuchid")
    );
    assert_eq!(r.reason(), "unable to authenticate with provided credentials and anonymous access is not allowed for this request");
}

#[tokio::test]
async fn expired_api_key_is_401() {
    let es = Es::start();
    let r = es
        .post(
            "/_security/api_key",
            ADMIN,
            r#"{"name": "brief", "expiration": "1ms"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let encoded = r.json["encoded"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let r = es
        .get("/_security/_authenticate", Auth::ApiKey(&encoded))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json["error"]["additional_unsuccessful_credentials"],
        json!("API key: api key is expired")
    );

    let r = es
        .post(
            "/_security/api_key",
            ADMIN,
            r#"{"name": "bad", "expiration": "forever"}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "parse_exception");
}

#[tokio::test]
async fn api_key_privileges_are_limited_by_the_owner() {
    let es = Es::start();
    es.put_role(
        "monitoring",
        r#"{"cluster": ["monitor", "manage_own_api_key"]}"#,
    )
    .await;
    es.put_user(
        "watcher",
        r#"{"password": "watcher-pw", "roles": ["monitoring"]}"#,
    )
    .await;
    let watcher = Auth::Basic("watcher", "watcher-pw");
    let r = es
        .put("/_security/api_key", watcher, r#"{"name": "watch-key"}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    let key = r.json["encoded"].as_str().unwrap().to_string();

    assert_eq!(es.health(Auth::ApiKey(&key)).await.status, 200);
    let r = es
        .put(
            "/_security/user/x",
            Auth::ApiKey(&key),
            r#"{"password": "xxxxxxx", "roles": []}"#,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.reason(),
        format!("action [cluster:admin/xpack/security/user/put] is unauthorized for API key id [{id}] of user [watcher], this action is granted by the cluster privileges [manage_security,all]")
    );
    // manage_own_api_key: own keys yes, everybody's keys no
    assert_eq!(
        es.get("/_security/api_key?owner=true", watcher)
            .await
            .status,
        200
    );
    let r = es.get("/_security/api_key", watcher).await;
    assert_eq!(r.status, 403);
    assert!(
        r.reason()
            .ends_with("[read_security,manage_api_key,manage_security,all]"),
        "{}",
        r.text
    );

    // a key restricted by role_descriptors gets the intersection
    let r = es
        .post(
            "/_security/api_key",
            ADMIN,
            r#"{"name": "ro", "role_descriptors": {"ro": {"cluster": ["monitor"]}}}"#,
        )
        .await;
    let ro = r.json["encoded"].as_str().unwrap().to_string();
    assert_eq!(es.health(Auth::ApiKey(&ro)).await.status, 200);
    assert_eq!(
        es.get("/_security/user", Auth::ApiKey(&ro)).await.status,
        403
    );

    // an API key can only create keys without privileges
    let r = es
        .post(
            "/_security/api_key",
            Auth::ApiKey(&key),
            r#"{"name": "child"}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.reason(),
        "creating derived api keys requires an explicit role descriptor that is empty (has no privileges)"
    );

    // keys keep working after their owner is deleted, as in Elasticsearch
    assert_eq!(
        es.delete("/_security/user/watcher", ADMIN).await.status,
        200
    );
    assert_eq!(es.health(Auth::ApiKey(&key)).await.status, 200);
    // until invalidated by owner name
    let r = es
        .call(
            "DELETE",
            "/_security/api_key",
            ADMIN,
            Some(r#"{"username": "watcher"}"#),
        )
        .await;
    assert_eq!(r.json["invalidated_api_keys"], json!([id]));
    assert_eq!(es.health(Auth::ApiKey(&key)).await.status, 401);
}

#[tokio::test]
async fn api_key_request_validation() {
    let es = Es::start();
    let r = es.post("/_security/api_key", ADMIN, r#"{}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.reason(),
        "Validation Failed: 1: api key name is required;"
    );
    let r = es
        .post("/_security/api_key", ADMIN, r#"{"name": "k", "colour": 1}"#)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "x_content_parse_exception");
    assert!(
        r.reason()
            .ends_with("[api_key_request] unknown field [colour]"),
        "{}",
        r.text
    );
    let r = es
        .call("DELETE", "/_security/api_key", ADMIN, Some("{}"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.reason(),
        "Validation Failed: 1: One of [api key id(s), api key name, username, realm name] must be specified if [owner] flag is false;"
    );
    let r = es
        .get("/_security/api_key?owner=true&username=elastic", ADMIN)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.reason(),
        "Validation Failed: 1: neither username nor realm-name may be specified when retrieving owned API keys;"
    );
}

// ---- routing, headers, params -------------------------------------------------------------

#[tokio::test]
async fn every_response_carries_the_product_header() {
    let es = Es::start();
    let cases: Vec<(&str, &str, Auth, Option<&str>, u16)> = vec![
        ("GET", "/", ADMIN, None, 200),
        ("GET", "/", Auth::None, None, 401),
        ("GET", "/_security/user/nobody", ADMIN, None, 404),
        ("PATCH", "/_security/user/nobody", ADMIN, None, 405),
        ("GET", "/x/y/z", ADMIN, None, 400),
        ("PUT", "/_security/user/x", ADMIN, Some("{"), 400),
        ("GET", "/some-index", ADMIN, None, 404),
        ("HEAD", "/", ADMIN, None, 200),
    ];
    for (method, path, auth, body, status) in cases {
        let r = es.call(method, path, auth, body).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text);
        assert_eq!(
            r.header_values("x-elastic-product"),
            vec!["Elasticsearch"],
            "{method} {path}"
        );
        assert_eq!(
            r.header_values("content-type"),
            vec!["application/json"],
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn routing_errors_look_like_elasticsearch() {
    let es = Es::start();
    let r = es
        .call("PATCH", "/_security/user/joe?refresh=true", ADMIN, None)
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(
        r.json,
        json!({"error": "Incorrect HTTP method for uri [/_security/user/joe?refresh=true] and method [PATCH], allowed: [GET, PUT, POST, DELETE]", "status": 405})
    );
    assert_eq!(r.header_values("allow"), vec!["GET,PUT,POST,DELETE"]);

    let r = es.get("/missing-index", ADMIN).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_type(), "index_not_found_exception");
    assert_eq!(r.reason(), "no such index [missing-index]");
    assert_eq!(r.json["error"]["index"], "missing-index");

    let r = es
        .put(
            "/_security/user/joe?refesh=true",
            ADMIN,
            r#"{"password": "joe-password", "roles": []}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.reason(),
        "request [/_security/user/joe] contains unrecognized parameter: [refesh] -> did you mean [refresh]?"
    );
    let r = es
        .put(
            "/_security/user/joe?refresh=sometimes",
            ADMIN,
            r#"{"password": "joe-password", "roles": []}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.reason(), "Unknown value for refresh: [sometimes].");
    let r = es
        .put(
            "/_security/user/joe?refresh=true",
            ADMIN,
            r#"{"password": "joe-password", "roles": []}"#,
        )
        .await;
    assert_eq!(r.status, 200);

    // GET /_security/user/_password is a user lookup, PUT changes the caller's password
    let r = es.get("/_security/user/_password", ADMIN).await;
    assert_eq!((r.status, r.text.as_str()), (404, "{}"));
}

#[tokio::test]
async fn root_health_and_pretty() {
    let es = Es::start();
    let r = es.get("/", ADMIN).await;
    assert_eq!(r.json["version"]["number"], es_double::VERSION);
    assert_eq!(r.json["version"]["build_flavor"], "default");
    assert_eq!(r.json["version"]["lucene_version"], "9.11.1");
    assert_eq!(
        r.json["version"]["minimum_wire_compatibility_version"],
        "7.17.0"
    );
    assert_eq!(
        r.json["version"]["minimum_index_compatibility_version"],
        "7.0.0"
    );
    assert_eq!(r.json["tagline"], "You Know, for Search");
    assert_eq!(r.json["cluster_uuid"].as_str().unwrap().len(), 22);

    let r = es
        .get("/_cluster/health?wait_for_status=yellow&timeout=5s", ADMIN)
        .await;
    assert_eq!(r.status, 200);
    let keys: Vec<&String> = r.json.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        vec![
            "cluster_name",
            "status",
            "timed_out",
            "number_of_nodes",
            "number_of_data_nodes",
            "active_primary_shards",
            "active_shards",
            "relocating_shards",
            "initializing_shards",
            "unassigned_shards",
            "delayed_unassigned_shards",
            "number_of_pending_tasks",
            "number_of_in_flight_fetch",
            "task_max_waiting_in_queue_millis",
            "active_shards_percent_as_number"
        ]
    );
    assert_eq!(r.json["status"], "green");
    assert_eq!(r.json["number_of_nodes"], 1);

    let r = es.get("/_security/user/nobody?pretty", ADMIN).await;
    assert_eq!(r.text, "{ }\n");
    let r = es.get("/_security/_authenticate?pretty", ADMIN).await;
    assert!(
        r.text.starts_with("{\n  \"username\" : \"elastic\",\n"),
        "{}",
        r.text
    );
}

// ---- fault injection and recording ------------------------------------------------------

#[tokio::test]
async fn fault_injection() {
    let es = Es::start();
    es.double
        .fail_next("get", "/_security/_authenticate", 503, 2);
    for _ in 0..2 {
        let r = es.get("/_security/_authenticate", ADMIN).await;
        assert_eq!(r.status, 503);
        assert_eq!(r.error_type(), "unavailable_shards_exception");
        assert_eq!(r.json["status"], 503);
        assert_eq!(r.header_values("x-elastic-product"), vec!["Elasticsearch"]);
    }
    assert_eq!(es.get("/_security/_authenticate", ADMIN).await.status, 200);

    // other methods and paths are untouched
    es.double.fail_next("PUT", "/_security/user/", 401, 1);
    assert_eq!(es.get("/_security/user/elastic", ADMIN).await.status, 200);
    let r = es
        .put(
            "/_security/user/joe",
            ADMIN,
            r#"{"password": "joe-password", "roles": []}"#,
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header_values("www-authenticate").len(), 2);
    let r = es
        .put(
            "/_security/user/joe",
            ADMIN,
            r#"{"password": "joe-password", "roles": []}"#,
        )
        .await;
    assert_eq!(
        r.status, 200,
        "the injected fault did not execute the request, so the user is new: {}",
        r.text
    );
    assert_eq!(r.json["created"], json!(true));

    es.double.fail_next("GET", "/", 500, 1);
    let r = es.get("/_cluster/health", ADMIN).await;
    assert_eq!((r.status, r.error_type()), (500, "exception"));
}

#[tokio::test]
async fn requests_are_recorded_without_secrets() {
    let es = Es::start();
    es.put_user(
        "search",
        r#"{"password": "search-secret-pw", "roles": ["superuser"]}"#,
    )
    .await;
    let r = es
        .post(
            "/_security/api_key",
            Auth::Basic("search", "search-secret-pw"),
            r#"{"name": "k"}"#,
        )
        .await;
    let encoded = r.json["encoded"].as_str().unwrap().to_string();
    let secret = r.json["api_key"].as_str().unwrap().to_string();
    es.get("/_security/_authenticate", Auth::ApiKey(&encoded))
        .await;
    es.get("/?pretty", Auth::Basic("search", "bad-password"))
        .await;

    let recs = es.double.requests();
    let summary: Vec<(String, String, u16, Option<String>)> = recs
        .iter()
        .map(|r| {
            (
                r.method.clone(),
                r.path.clone(),
                r.status,
                r.principal.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "PUT".into(),
                "/_security/user/search".into(),
                200,
                Some("elastic".into())
            ),
            (
                "POST".into(),
                "/_security/api_key".into(),
                200,
                Some("search".into())
            ),
            (
                "GET".into(),
                "/_security/_authenticate".into(),
                200,
                Some("search".into())
            ),
            ("GET".into(), "/?pretty".into(), 401, None),
        ]
    );
    let dump = format!("{recs:?}");
    for s in [
        "search-secret-pw",
        ELASTIC_PW,
        secret.as_str(),
        encoded.as_str(),
        "bad-password",
    ] {
        assert!(!dump.contains(s), "a secret leaked into the request log");
    }
    es.double.clear_requests();
    assert!(es.double.requests().is_empty());
    es.get("/", ADMIN).await;
    assert_eq!(es.double.requests().len(), 1);
}

#[tokio::test]
async fn keep_alive_requests_do_not_stall() {
    // Without TCP_NODELAY a keep-alive client waits ~40 ms per request for a
    // delayed ACK; 60 requests would take well over 2 s.
    let es = Es::start();
    es.get("/", ADMIN).await; // warm up the connection
    let start = std::time::Instant::now();
    for _ in 0..60 {
        assert_eq!(es.get("/_security/_authenticate", ADMIN).await.status, 200);
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed < std::time::Duration::from_millis(1500),
        "60 keep-alive requests took {elapsed:?}"
    );
}

#[test]
fn works_from_synchronous_code_and_stops_on_drop() {
    use std::io::{Read, Write};
    let es = es_double::EsDouble::start("sync-pw");
    let port = es.port();
    assert_eq!(es.url(), format!("http://127.0.0.1:{port}"));
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /_security/_authenticate HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        basic("elastic", "sync-pw")
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert!(out
        .to_ascii_lowercase()
        .contains("x-elastic-product: elasticsearch"));
    assert!(out.contains(r#""username":"elastic""#));

    // a second double cannot take the same port
    let err = es_double::EsDouble::start_on(port, "x").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);

    drop(es);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port still open after drop"
    );
}

/// Rehearsal copies role descriptors from one cluster to another: what
/// `GET /_security/role/NAME` renders must be accepted back by `PUT`
/// (minus `transient_metadata`), and read back the same.
#[tokio::test]
async fn a_role_read_back_can_be_put_again_unchanged() {
    let es = Es::start();
    let role = r#"{"cluster":["monitor"],"indices":[{"names":["works-*"],"privileges":["read"]}],"metadata":{"owner":"catalogue"}}"#;
    let r = es
        .call("PUT", "/_security/role/catalogue_read", ADMIN, Some(role))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = es
        .get("/_security/role/catalogue_read,superuser", ADMIN)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json["superuser"]["metadata"]["_reserved"], json!(true));
    let mut desc = got.json["catalogue_read"].clone();
    desc.as_object_mut().unwrap().remove("transient_metadata");
    let other = Es::start();
    let r = other
        .call(
            "PUT",
            "/_security/role/catalogue_read",
            ADMIN,
            Some(&desc.to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let again = other.get("/_security/role/catalogue_read", ADMIN).await;
    assert_eq!(again.json["catalogue_read"], got.json["catalogue_read"]);
}

/// The seeding API rehearsal uses: a key copied by id and secret
/// authenticates as its owner, is listed by id, and honours `invalidated`.
#[tokio::test]
async fn a_seeded_api_key_authenticates_with_its_known_secret() {
    use base64::Engine as _;
    let es = Es::start();
    let r = es
        .call(
            "PUT",
            "/_security/user/search",
            ADMIN,
            Some(r#"{"password":"search-pw-123","roles":["superuser"]}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seed = |id: &str, invalidated: bool| es_double::SeedApiKey {
        id: id.into(),
        name: "search-key".into(),
        secret: "k3y-s3cret".into(),
        owner: "search".into(),
        creation_millis: Some(1_700_000_000_000),
        expiration_millis: None,
        invalidated,
    };
    es.double.seed_api_key(&seed("copied-id-1", false)).unwrap();
    es.double.seed_api_key(&seed("copied-id-2", true)).unwrap();
    assert!(es
        .double
        .seed_api_key(&es_double::SeedApiKey {
            owner: "nobody".into(),
            ..seed("x", false)
        })
        .is_err());
    assert!(!format!("{:?}", seed("copied-id-1", false)).contains("k3y-s3cret"));
    let enc =
        |id: &str| base64::engine::general_purpose::STANDARD.encode(format!("{id}:k3y-s3cret"));
    let ok = enc("copied-id-1");
    let r = es.get("/_security/_authenticate", Auth::ApiKey(&ok)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["username"], json!("search"));
    assert_eq!(r.json["api_key"]["id"], json!("copied-id-1"));
    let wrong = base64::engine::general_purpose::STANDARD.encode("copied-id-1:other");
    assert_eq!(
        es.get("/_security/_authenticate", Auth::ApiKey(&wrong))
            .await
            .status,
        401
    );
    let dead = enc("copied-id-2");
    assert_eq!(
        es.get("/_security/_authenticate", Auth::ApiKey(&dead))
            .await
            .status,
        401
    );
    let r = es.get("/_security/api_key?id=copied-id-1", ADMIN).await;
    assert_eq!(r.json["api_keys"][0]["name"], json!("search-key"));
    assert_eq!(
        r.json["api_keys"][0]["creation"],
        json!(1_700_000_000_000u64)
    );
}
