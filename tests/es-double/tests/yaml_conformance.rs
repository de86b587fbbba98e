//! Conformance with Elasticsearch's own YAML REST tests.
//!
//! Each test below restates, in our own words and code, one test case of
//! `x-pack/plugin/src/yamlRestTest/resources/rest-api-spec/test/` in the
//! elastic/elasticsearch repository, and runs it over real HTTP against the
//! double. The YAML `setup` steps are restated at the start of each test.
//! (`catch: unauthorized` means 401, `forbidden` 403, `bad_request` 400.)

mod common;

use common::{Auth, Es, ADMIN};
use serde_json::json;

const JOE: Auth<'static> = Auth::Basic("joe", "s3krit-password");
const JOE2: Auth<'static> = Auth::Basic("joe", "s3krit-password2");

async fn assert_health_ok(es: &Es, auth: Auth<'_>) {
    let r = es.health(auth).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["timed_out"], json!(false));
}

async fn assert_unauthorized(es: &Es, auth: Auth<'_>) {
    let r = es.health(auth).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.error_type(), "security_exception");
}

fn joe_full_body(extra: &str) -> String {
    format!(
        r#"{{ {extra} "password" : "s3krit-password", "roles" : [ "superuser" ],
            "full_name" : "Bazooka Joe", "email" : "joe@bazooka.gum",
            "metadata" : {{ "key1" : "val1", "key2" : "val2" }} }}"#
    )
}

async fn assert_joe_details(es: &Es) {
    let r = es.get("/_security/user/joe", ADMIN).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let joe = &r.json["joe"];
    assert_eq!(joe["username"], "joe");
    assert_eq!(joe["roles"][0], "superuser");
    assert_eq!(joe["full_name"], "Bazooka Joe");
    assert_eq!(joe["email"], "joe@bazooka.gum");
    assert_eq!(joe["metadata"]["key1"], "val1");
    assert_eq!(joe["metadata"]["key2"], "val2");
}

// ---- users/10_basic.yml -------------------------------------------------------------

/// users/10_basic.yml, "Test put user api": creating a superuser with full
/// name, email and metadata reports `created: true`; the new user can call
/// cluster health; get_user returns every field as stored.
#[tokio::test]
async fn users_10_basic_put_user_api() {
    let es = Es::start();
    assert_health_ok(&es, ADMIN).await; // setup: wait for yellow
    let r = es
        .put("/_security/user/joe", ADMIN, &joe_full_body(""))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["created"], json!(true));
    assert_health_ok(&es, JOE).await;
    assert_joe_details(&es).await;
}

/// users/10_basic.yml, "Test put user with username in body": a `username`
/// field equal to the path's name is accepted and changes nothing else.
#[tokio::test]
async fn users_10_basic_put_user_with_username_in_body() {
    let es = Es::start();
    let r = es
        .put(
            "/_security/user/joe",
            ADMIN,
            &joe_full_body(r#""username": "joe","#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["created"], json!(true));
    assert_health_ok(&es, JOE).await;
    assert_joe_details(&es).await;
}

/// users/10_basic.yml, "Test put user with different username in body": a
/// body `username` that differs from the path is a bad request.
#[tokio::test]
async fn users_10_basic_put_user_with_different_username_in_body() {
    let es = Es::start();
    let r = es
        .put(
            "/_security/user/joe",
            ADMIN,
            &joe_full_body(r#""username": "joey","#),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_type(), "illegal_argument_exception");
    assert_eq!(
        r.reason(),
        "[username] in source does not match the username provided [joe]"
    );
    // nothing was created
    assert_eq!(es.get("/_security/user/joe", ADMIN).await.status, 404);
}

/// users/10_basic.yml, "Test put user with password hash": the YAML case
/// reads a bcrypt hash out of the `.security` index and creates a user from
/// it. The double has no `.security` index and stores no bcrypt hashes, so
/// the case cannot be restated; this test pins the double's documented
/// answer instead: `password_hash` is refused with a 400, and nothing is
/// created.
#[tokio::test]
async fn users_10_basic_put_user_with_password_hash_is_refused() {
    let es = Es::start();
    let r = es
        .put(
            "/_security/user/joe",
            ADMIN,
            r#"{"password_hash": "$2a$10$abcdefghijklmnopqrstuu", "roles": ["superuser"]}"#,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_type(), "illegal_argument_exception");
    assert!(r.reason().contains("password_hash"), "{}", r.text);
    assert_eq!(es.get("/_security/user/joe", ADMIN).await.status, 404);
}

// ---- users/15_overwrite_user.yml ----------------------------------------------------

/// users/15_overwrite_user.yml, "Test overwriting a user": putting an
/// existing user again reports `created: false`, replaces roles, full name,
/// email and metadata, and the new password takes effect.
#[tokio::test]
async fn users_15_overwrite_user_overwriting_a_user() {
    let es = Es::start();
    es.put_user(
        "joe",
        r#"{"password": "s3krit-password", "roles": ["superuser"]}"#,
    )
    .await;
    let r = es.get("/_security/user/joe", ADMIN).await;
    assert_eq!(r.json["joe"]["username"], "joe");
    assert_eq!(r.json["joe"]["roles"][0], "superuser");
    assert_health_ok(&es, JOE).await;

    let r = es
        .put(
            "/_security/user/joe",
            ADMIN,
            r#"{"password": "s3krit-password2", "roles": ["superuser", "foo"],
                "full_name": "Bazooka Joe", "email": "joe@bazooka.gum",
                "metadata": {"key1": "val1", "key2": "val2"}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["created"], json!(false));

    let r = es.get("/_security/user/joe", ADMIN).await;
    let joe = &r.json["joe"];
    assert_eq!(joe["username"], "joe");
    assert_eq!(joe["roles"], json!(["superuser", "foo"]));
    assert_eq!(joe["full_name"], "Bazooka Joe");
    assert_eq!(joe["email"], "joe@bazooka.gum");
    assert_eq!(joe["metadata"], json!({"key1": "val1", "key2": "val2"}));
    assert_health_ok(&es, JOE2).await;
    // and the old password no longer works
    assert_unauthorized(&es, JOE).await;
}

// ---- users/30_enable_disable.yml ----------------------------------------------------

async fn setup_enabled_joe(es: &Es) {
    es.put_user(
        "joe",
        r#"{"password": "s3krit-password", "roles": ["superuser"]}"#,
    )
    .await;
}

async fn set_enabled(es: &Es, user: &str, enabled: bool, auth: Auth<'_>) -> common::Resp {
    let verb = if enabled { "_enable" } else { "_disable" };
    es.put(&format!("/_security/user/{user}/{verb}"), auth, "")
        .await
}

/// users/30_enable_disable.yml, "Test disable then enable user": a disabled
/// user gets 401; once enabled again it can log in.
#[tokio::test]
async fn users_30_enable_disable_disable_then_enable_user() {
    let es = Es::start();
    setup_enabled_joe(&es).await;
    assert_health_ok(&es, JOE).await;
    let r = set_enabled(&es, "joe", false, ADMIN).await;
    assert_eq!((r.status, &r.json), (200, &json!({})), "{}", r.text);
    assert_unauthorized(&es, JOE).await;
    let r = set_enabled(&es, "joe", true, ADMIN).await;
    assert_eq!((r.status, &r.json), (200, &json!({})), "{}", r.text);
    assert_health_ok(&es, JOE).await;
}

/// users/30_enable_disable.yml, "Test enabling already enabled user":
/// enabling an enabled user succeeds and the user keeps working.
#[tokio::test]
async fn users_30_enable_disable_enabling_already_enabled_user() {
    let es = Es::start();
    setup_enabled_joe(&es).await;
    assert_health_ok(&es, JOE).await;
    assert_eq!(set_enabled(&es, "joe", true, ADMIN).await.status, 200);
    assert_health_ok(&es, JOE).await;
}

/// users/30_enable_disable.yml, "Test disabling already disabled user":
/// disabling twice succeeds both times; enabling afterwards succeeds.
#[tokio::test]
async fn users_30_enable_disable_disabling_already_disabled_user() {
    let es = Es::start();
    setup_enabled_joe(&es).await;
    assert_health_ok(&es, JOE).await;
    assert_eq!(set_enabled(&es, "joe", false, ADMIN).await.status, 200);
    assert_unauthorized(&es, JOE).await;
    assert_eq!(set_enabled(&es, "joe", false, ADMIN).await.status, 200);
    assert_unauthorized(&es, JOE).await;
    assert_eq!(set_enabled(&es, "joe", true, ADMIN).await.status, 200);
    assert_health_ok(&es, JOE).await;
}

/// users/30_enable_disable.yml, "Test disabling yourself": a user may not
/// disable their own account; the error says so and the user stays enabled.
#[tokio::test]
async fn users_30_enable_disable_disabling_yourself() {
    let es = Es::start();
    setup_enabled_joe(&es).await;
    assert_health_ok(&es, JOE).await;
    let r = set_enabled(&es, "joe", false, JOE).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_type(), "illegal_argument_exception");
    assert!(
        r.text
            .contains("users may not update the enabled status of their own account"),
        "{}",
        r.text
    );
    assert_health_ok(&es, JOE).await;
}

// ---- users/31_create_disabled.yml ---------------------------------------------------

/// users/31_create_disabled.yml, "Test disable then enable user": a user
/// created with `enabled: false` cannot log in until enabled.
#[tokio::test]
async fn users_31_create_disabled_create_disabled_then_enable() {
    let es = Es::start();
    es.put_user(
        "joe",
        r#"{"password": "s3krit-password", "roles": ["superuser"], "enabled": false}"#,
    )
    .await;
    assert_unauthorized(&es, JOE).await;
    let r = es.get("/_security/user/joe", ADMIN).await;
    assert_eq!(r.json["joe"]["enabled"], json!(false));
    assert_eq!(set_enabled(&es, "joe", true, ADMIN).await.status, 200);
    assert_health_ok(&es, JOE).await;
}

// ---- change_password/10_basic.yml ---------------------------------------------------

const UNPRIVILEGED: Auth<'static> = Auth::Basic("unprivileged_user", "s3krit-password");
const UNPRIVILEGED2: Auth<'static> = Auth::Basic("unprivileged_user", "s3krit-password2");

/// The YAML file's setup: superuser joe, a role "user" with cluster
/// `monitor` and all privileges on every index, and unprivileged_user with
/// that role.
async fn change_password_setup(es: &Es) {
    es.put_user(
        "joe",
        r#"{"password": "s3krit-password", "roles": ["superuser"]}"#,
    )
    .await;
    let r = es
        .put_role(
            "user",
            r#"{"cluster": ["monitor"], "indices": [{"names": "*", "privileges": ["all"]}]}"#,
        )
        .await;
    assert_eq!(r.json, json!({"role": {"created": true}}));
    es.put_user(
        "unprivileged_user",
        r#"{"password": "s3krit-password", "roles": ["user"]}"#,
    )
    .await;
}

/// change_password/10_basic.yml, "Test changing users password": after an
/// admin changes joe's password the old one is refused and the new one works.
#[tokio::test]
async fn change_password_10_basic_changing_users_password() {
    let es = Es::start();
    change_password_setup(&es).await;
    assert_health_ok(&es, JOE).await;
    let r = es
        .put(
            "/_security/user/joe/_password",
            ADMIN,
            r#"{"password": "s3krit-password2"}"#,
        )
        .await;
    assert_eq!((r.status, &r.json), (200, &json!({})), "{}", r.text);
    assert_unauthorized(&es, JOE).await;
    assert_health_ok(&es, JOE2).await;
}

/// change_password/10_basic.yml, "Test changing users password with
/// prehashed password": the YAML case reads joe's bcrypt hash from the
/// `.security` index and sets it back with `password_hash`. The double keeps
/// no bcrypt hashes, so the case cannot be restated; the double refuses
/// `password_hash` with a 400, and — the YAML case's final assertion — joe's
/// credentials still work afterwards.
#[tokio::test]
async fn change_password_10_basic_prehashed_password_is_refused_and_credentials_still_work() {
    let es = Es::start();
    change_password_setup(&es).await;
    assert_health_ok(&es, JOE).await;
    let r = es
        .put(
            "/_security/user/joe/_password",
            ADMIN,
            r#"{"password_hash": "$2a$10$abcdefghijklmnopqrstuu"}"#,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.reason().contains("password_hash"), "{}", r.text);
    assert_health_ok(&es, JOE).await;
}

/// change_password/10_basic.yml, "Test user changing their own password": a
/// user whose role grants only `monitor` may change their own password
/// (`security.change_password` without a username); the old password then
/// fails and the new one works.
#[tokio::test]
async fn change_password_10_basic_user_changing_their_own_password() {
    let es = Es::start();
    change_password_setup(&es).await;
    assert_health_ok(&es, UNPRIVILEGED).await;
    let r = es
        .put(
            "/_security/user/_password",
            UNPRIVILEGED,
            r#"{"password": "s3krit-password2"}"#,
        )
        .await;
    assert_eq!((r.status, &r.json), (200, &json!({})), "{}", r.text);
    assert_unauthorized(&es, UNPRIVILEGED).await;
    assert_health_ok(&es, UNPRIVILEGED2).await;
}

/// change_password/10_basic.yml, "Test unauthorized user changing anothers
/// password": the same user may not change another user's password (403).
#[tokio::test]
async fn change_password_10_basic_unauthorized_user_changing_anothers_password() {
    let es = Es::start();
    change_password_setup(&es).await;
    assert_health_ok(&es, UNPRIVILEGED).await;
    let r = es
        .put(
            "/_security/user/anotheruser/_password",
            UNPRIVILEGED,
            r#"{"password": "s3krit-password2"}"#,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error_type(), "security_exception");
    assert_eq!(
        r.reason(),
        "action [cluster:admin/xpack/security/user/change_password] is unauthorized for user [unprivileged_user] with effective roles [user], this action is granted by the cluster privileges [manage_security,all]"
    );
}

// ---- authenticate/10_basic.yml ------------------------------------------------------

/// authenticate/10_basic.yml, "Test authenticate api": `_authenticate`
/// reports the caller's username, roles, full name and `realm` authentication.
#[tokio::test]
async fn authenticate_10_basic_authenticate_api() {
    let es = Es::start();
    es.put_user(
        "authenticate_user",
        r#"{"password": "x-pack-test-password", "roles": ["superuser"], "full_name": "Authenticate User"}"#,
    )
    .await;
    let r = es
        .get(
            "/_security/_authenticate",
            Auth::Basic("authenticate_user", "x-pack-test-password"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["username"], "authenticate_user");
    assert_eq!(r.json["roles"][0], "superuser");
    assert_eq!(r.json["full_name"], "Authenticate User");
    assert_eq!(r.json["authentication_type"], "realm");
    assert_eq!(
        r.json["authentication_realm"],
        json!({"name": "default_native", "type": "native"})
    );
}
