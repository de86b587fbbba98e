//! The write side of the providers (what rollback and redeploy call), proven
//! against the real wire protocols: ministack for Secrets Manager and ECS, the
//! ES double for Elasticsearch, both seeded with the incident replica.
//!
//! Every test checks the live state afterwards through an independent path
//! (the raw SDK, an `_authenticate` probe, a fresh read), the operations the
//! providers counted, and that no secret value reaches an error or a log line.

use aws_sdk_secretsmanager::Client as SmClient;
use es_double::EsDouble;
use opsguard::config::{EsAuth, EsConfig};
use opsguard::model::{SecretName, ServiceRef};
use opsguard::providers::ecs::AwsEcs;
use opsguard::providers::elasticsearch::{AdminAuth, Es};
use opsguard::providers::secretsmanager::AwsSecrets;
use opsguard::providers::{
    Calls, EcsWriter, EsReader, EsWriter, ProbeAuth, ProbeOutcome, SecretsReader, SecretsWriter,
};
use opsguard::snapshot::model::EsUser;
use opsguard_testkit::{assert_no_leak_named, seed, Ministack, Replica};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ADMIN_PW: &str = "elastic-admin-pw-9b3e";

struct Env {
    es: EsDouble,
    replica: Replica,
    sdk: aws_config::SdkConfig,
    calls: Calls,
    secrets: AwsSecrets,
    ecs: AwsEcs,
    elastic: Es,
}

async fn setup() -> Env {
    let account = Ministack::shared().fresh_account();
    let es = EsDouble::start(ADMIN_PW);
    let replica = seed(&account, &es, ADMIN_PW).await;
    let sdk = account.sdk_config().await;
    let calls = Calls::default();
    let cfg = EsConfig {
        url: es.url().parse().unwrap(),
        auth: EsAuth::Offline,
        ca_cert: None,
        timeout: Duration::from_secs(10),
        max_concurrency: 4,
    };
    let admin = AdminAuth::Basic {
        username: "elastic".into(),
        password: SecretString::from(ADMIN_PW.to_owned()),
    };
    Env {
        secrets: AwsSecrets::new(&sdk, calls.clone()),
        ecs: AwsEcs::new(&sdk, calls.clone()),
        elastic: Es::new(&cfg, admin, calls.clone()).unwrap(),
        es,
        replica,
        sdk,
        calls,
    }
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

// ---------------------------------------------------------------- Secrets Manager

/// `version id → stages`, as ListSecretVersionIds says (deprecated included).
async fn stages(sm: &SmClient, name: &str) -> BTreeMap<String, Vec<String>> {
    let out = sm
        .list_secret_version_ids()
        .secret_id(name)
        .include_deprecated(true)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .map(|v| {
            let mut s = v.version_stages().to_vec();
            s.sort();
            (v.version_id().unwrap().to_owned(), s)
        })
        .collect()
}

fn holders<'a>(stages: &'a BTreeMap<String, Vec<String>>, stage: &str) -> Vec<&'a str> {
    stages
        .iter()
        .filter(|(_, s)| s.iter().any(|x| x == stage))
        .map(|(v, _)| v.as_str())
        .collect()
}

async fn current_value(sm: &SmClient, name: &str) -> (String, String) {
    let out = sm.get_secret_value().secret_id(name).send().await.unwrap();
    (
        out.version_id().unwrap().to_owned(),
        out.secret_string().unwrap().to_owned(),
    )
}

async fn put_value(sm: &SmClient, name: &str, value: &str) -> String {
    sm.put_secret_value()
        .secret_id(name)
        .secret_string(value)
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn move_current_puts_awscurrent_back_on_the_old_version() {
    let env = setup().await;
    let sm = SmClient::new(&env.sdk);
    let before = env.replica.secret_of("search", "password").clone();
    let name = SecretName::new(&before.name);
    let new_value = "rotated-by-the-script-0001";
    let new_version = put_value(&sm, &before.name, new_value).await;
    assert_eq!(current_value(&sm, &before.name).await.1, new_value);

    env.secrets
        .move_current(&name, &before.version_id, &new_version)
        .await
        .unwrap();

    let after = stages(&sm, &before.name).await;
    assert_eq!(
        holders(&after, "AWSCURRENT"),
        [before.version_id.as_str()],
        "exactly one AWSCURRENT, on the old version: {after:?}"
    );
    assert_eq!(
        holders(&after, "AWSPREVIOUS"),
        [new_version.as_str()],
        "AWSPREVIOUS follows the version AWSCURRENT left: {after:?}"
    );
    assert_eq!(
        current_value(&sm, &before.name).await,
        (before.version_id.clone(), before.value.clone())
    );
    assert_eq!(
        env.calls.snapshot(),
        counts(&[
            ("secretsmanager:DescribeSecret", 1),
            ("secretsmanager:UpdateSecretVersionStage", 1),
        ])
    );

    // Idempotent: the stage is already there, so nothing is sent.
    env.secrets
        .move_current(&name, &before.version_id, &new_version)
        .await
        .unwrap();
    assert_eq!(stages(&sm, &before.name).await, after);
    assert_eq!(
        env.calls.snapshot(),
        counts(&[
            ("secretsmanager:DescribeSecret", 2),
            ("secretsmanager:UpdateSecretVersionStage", 1),
        ])
    );
}

#[tokio::test]
async fn move_current_refuses_what_it_cannot_do_and_says_why() {
    let env = setup().await;
    let sm = SmClient::new(&env.sdk);
    let s = env.replica.secret_of("items", "password").clone();
    let name = SecretName::new(&s.name);
    let v2 = put_value(&sm, &s.name, "second-value-0002").await;
    let untouched = stages(&sm, &s.name).await;

    // A version id the secret does not have: the service's own words, with ours.
    let bogus = "00000000-1111-2222-3333-444444444444";
    let e = env
        .secrets
        .move_current(&name, bogus, &v2)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Secrets Manager UpdateSecretVersionStage failed"),
        "{e}"
    );
    assert!(e.contains(&s.name) && e.contains(bogus), "{e}");
    assert!(e.contains("can't find the specified secret version"), "{e}");
    assert_eq!(stages(&sm, &s.name).await, untouched);

    // AWSCURRENT moved on again since the snapshot: refuse rather than clobber.
    let v3 = put_value(&sm, &s.name, "third-value-0003").await;
    let moved_on = stages(&sm, &s.name).await;
    let e = env
        .secrets
        .move_current(&name, &s.version_id, &v2)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("AWSCURRENT is on version {v3}, not on {v2}")),
        "{e}"
    );
    assert_eq!(stages(&sm, &s.name).await, moved_on);

    // A missing secret, and one scheduled for deletion.
    let e = env
        .secrets
        .move_current(&SecretName::new("no/such/secret"), &s.version_id, &v3)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("secret no/such/secret does not exist"), "{e}");
    sm.delete_secret()
        .secret_id(&s.name)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let e = env
        .secrets
        .move_current(&name, &v2, &v3)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("scheduled for deletion"), "{e}");

    // Refusals decided from DescribeSecret send no update.
    let calls = env.calls.snapshot();
    assert_eq!(
        calls["secretsmanager:UpdateSecretVersionStage"], 1,
        "{calls:?}"
    );
    // The failed update is followed by one look at whether it landed anyway.
    assert_eq!(calls["secretsmanager:DescribeSecret"], 5, "{calls:?}");
}

#[tokio::test]
async fn a_version_that_lost_its_stage_can_be_read_and_made_current_again() {
    let env = setup().await;
    let sm = SmClient::new(&env.sdk);
    let s = env.replica.secret_of("search", "password").clone();
    let name = SecretName::new(&s.name);
    let v2 = put_value(&sm, &s.name, "second-value-0002").await;
    // The original loses AWSPREVIOUS and carries no stage at all.
    sm.update_secret_version_stage()
        .secret_id(&s.name)
        .version_stage("AWSPREVIOUS")
        .remove_from_version_id(&s.version_id)
        .send()
        .await
        .unwrap();
    let st = stages(&sm, &s.name).await;
    assert_eq!(st[&s.version_id], Vec::<String>::new(), "{st:?}");

    let read = env
        .secrets
        .value_at(&name, Some(&s.version_id), None)
        .await
        .unwrap()
        .expect("a stage-less version is still readable by id");
    assert_eq!(read.version_id, s.version_id);
    assert_eq!(read.value.expose_secret(), s.value);

    // Rollback can put AWSCURRENT back on it.
    env.secrets
        .move_current(&name, &s.version_id, &v2)
        .await
        .unwrap();
    let st = stages(&sm, &s.name).await;
    assert_eq!(holders(&st, "AWSCURRENT"), [s.version_id.as_str()]);
    assert_eq!(current_value(&sm, &s.name).await.1, s.value);

    // An unknown version id is "none", not an error.
    let none = env
        .secrets
        .value_at(&name, Some("00000000-1111-2222-3333-444444444444"), None)
        .await
        .unwrap();
    assert!(none.is_none());
}

#[tokio::test]
async fn restore_secret_cancels_a_scheduled_deletion() {
    let env = setup().await;
    let sm = SmClient::new(&env.sdk);
    let s = env.replica.secret_of("items", "username").clone();
    let name = SecretName::new(&s.name);
    sm.delete_secret()
        .secret_id(&s.name)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let meta = env.secrets.describe(&s.name).await.unwrap().unwrap();
    assert!(meta.deleted_date.is_some());

    env.secrets.restore_secret(&name).await.unwrap();
    let out = sm
        .describe_secret()
        .secret_id(&s.name)
        .send()
        .await
        .unwrap();
    assert!(out.deleted_date().is_none(), "{out:?}");
    assert_eq!(current_value(&sm, &s.name).await.1, s.value);

    // Idempotent: a second restore sends nothing.
    env.secrets.restore_secret(&name).await.unwrap();
    assert_eq!(
        env.calls.snapshot(),
        counts(&[
            ("secretsmanager:DescribeSecret", 3),
            ("secretsmanager:RestoreSecret", 1),
        ])
    );

    let e = env
        .secrets
        .restore_secret(&SecretName::new("no/such/secret"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("secret no/such/secret does not exist"), "{e}");
}

// ---------------------------------------------------------------- Elasticsearch

async fn probe(env: &Env, user: &str, password: &str) -> ProbeOutcome {
    env.elastic
        .authenticate(&ProbeAuth::Basic {
            username: user.into(),
            password: secret(password),
        })
        .await
        .unwrap()
}

fn authenticated(user: &str) -> ProbeOutcome {
    ProbeOutcome::Authenticated {
        username: user.into(),
    }
}

async fn user(env: &Env, name: &str) -> Option<EsUser> {
    env.elastic
        .users()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.username == name)
}

/// An admin client outside opsguard's providers, to break things the way a
/// provisioning script would.
fn raw_admin(es: &EsDouble) -> elasticsearch::Elasticsearch {
    use elasticsearch::auth::Credentials;
    use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
    let t = TransportBuilder::new(SingleNodeConnectionPool::new(es.url().parse().unwrap()))
        .auth(Credentials::Basic("elastic".into(), ADMIN_PW.into()))
        .disable_proxy()
        .build()
        .unwrap();
    elasticsearch::Elasticsearch::new(t)
}

#[tokio::test]
async fn set_password_then_the_new_password_authenticates() {
    let env = setup().await;
    let old = env.replica.password("search").to_owned();
    let new = "reset-by-rollback-7f3a9c";
    env.elastic
        .set_password("search", &secret(new))
        .await
        .unwrap();
    assert_eq!(probe(&env, "search", new).await, authenticated("search"));
    assert!(matches!(
        probe(&env, "search", &old).await,
        ProbeOutcome::Rejected { .. }
    ));
    // Back to the old one, as a rollback would.
    env.elastic
        .set_password("search", &secret(&old))
        .await
        .unwrap();
    assert_eq!(probe(&env, "search", &old).await, authenticated("search"));
    let calls = env.calls.snapshot();
    assert_eq!(calls["elasticsearch:security.change_password"], 2);
    let posts: Vec<_> = env
        .es
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/_security/user/search/_password"))
        .map(|r| (r.method, r.status, r.principal))
        .collect();
    assert_eq!(
        posts,
        vec![("POST".into(), 200, Some("elastic".into())); 2],
        "through the admin transport"
    );
}

#[tokio::test]
async fn put_user_restores_roles_full_name_and_metadata_and_keeps_the_password() {
    let env = setup().await;
    let before = user(&env, "search").await.unwrap();
    assert_eq!(before.roles, ["catalogue_read"]);

    // The script's damage: roles gone, name and metadata replaced, disabled.
    raw_admin(&env.es)
        .security()
        .put_user(elasticsearch::security::SecurityPutUserParts::Username(
            "search",
        ))
        .body(serde_json::json!({
            "roles": [], "full_name": "someone else", "email": "x@example.org",
            "metadata": {"provisioned_by": "another-script"}, "enabled": false
        }))
        .send()
        .await
        .unwrap()
        .error_for_status_code()
        .unwrap();
    let damaged = user(&env, "search").await.unwrap();
    assert_ne!(damaged, before);

    // The before state, as a snapshot holds it; a reserved metadata key that
    // Elasticsearch would refuse on a PUT is dropped on the way.
    let mut want = before.clone();
    want.metadata
        .insert("_reserved".into(), serde_json::Value::Bool(false));
    env.elastic.put_user(&want, None).await.unwrap();

    assert_eq!(user(&env, "search").await.unwrap(), before);
    assert_eq!(
        probe(&env, "search", env.replica.password("search")).await,
        authenticated("search"),
        "the password was kept"
    );
    assert_eq!(env.calls.snapshot()["elasticsearch:security.put_user"], 1);
}

#[tokio::test]
async fn put_user_with_a_password_recreates_a_deleted_user() {
    let env = setup().await;
    let before = user(&env, "items").await.unwrap();
    let password = env.replica.password("items").to_owned();
    let deleted = raw_admin(&env.es)
        .security()
        .delete_user(elasticsearch::security::SecurityDeleteUserParts::Username(
            "items",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status_code().as_u16(), 200);
    assert!(user(&env, "items").await.is_none());

    // Without a password there is nothing to recreate it with.
    let e = env
        .elastic
        .put_user(&before, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("password must be specified unless you are updating an existing user"),
        "{e}"
    );

    env.elastic
        .put_user(&before, Some(&secret(&password)))
        .await
        .unwrap();
    assert_eq!(user(&env, "items").await.unwrap(), before);
    assert_eq!(
        probe(&env, "items", &password).await,
        authenticated("items")
    );
    assert_eq!(env.calls.snapshot()["elasticsearch:security.put_user"], 2);
}

#[tokio::test]
async fn set_enabled_disables_and_enables_a_user() {
    let env = setup().await;
    let pw = env.replica.password("search").to_owned();
    env.elastic.set_enabled("search", false).await.unwrap();
    assert!(!user(&env, "search").await.unwrap().enabled);
    assert!(matches!(
        probe(&env, "search", &pw).await,
        ProbeOutcome::Rejected { .. }
    ));
    env.elastic.set_enabled("search", true).await.unwrap();
    env.elastic.set_enabled("search", true).await.unwrap();
    assert!(user(&env, "search").await.unwrap().enabled);
    assert_eq!(probe(&env, "search", &pw).await, authenticated("search"));

    let e = env
        .elastic
        .set_enabled("nobody", true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("user [nobody]") && e.contains("only existing users can be enabled"),
        "{e}"
    );

    let calls = env.calls.snapshot();
    assert_eq!(calls["elasticsearch:security.disable_user"], 1);
    assert_eq!(calls["elasticsearch:security.enable_user"], 3);
}

#[tokio::test]
async fn reserved_users_are_refused() {
    let env = setup().await;
    let elastic = user(&env, "elastic").await.unwrap();
    assert!(elastic.reserved);
    env.es.clear_requests();
    let e = env
        .elastic
        .put_user(&elastic, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("user [elastic] is reserved: only its password can be changed"),
        "{e}"
    );
    assert!(env.es.requests().is_empty(), "refused without a call");
    assert!(!env
        .calls
        .snapshot()
        .contains_key("elasticsearch:security.put_user"));

    // A reserved user the caller did not mark as such: Elasticsearch refuses.
    let mut kibana = user(&env, "kibana_system").await.unwrap();
    kibana.reserved = false;
    kibana.metadata.clear();
    let e = env
        .elastic
        .put_user(&kibana, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("HTTP 400")
            && e.contains("user [kibana_system] is reserved and only the password can be changed"),
        "{e}"
    );
}

#[tokio::test]
async fn transient_errors_are_retried_and_persistent_ones_are_not_hidden() {
    let env = setup().await;
    let new = "after-a-hiccup-0a1b2c";
    let path = "/_security/user/search/_password";

    // One 503, then success: one operation, two requests.
    env.es.clear_requests();
    env.es.fail_next("POST", path, 503, 1);
    env.elastic
        .set_password("search", &secret(new))
        .await
        .unwrap();
    let statuses: Vec<u16> = env.es.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 200]);
    assert_eq!(probe(&env, "search", new).await, authenticated("search"));
    assert_eq!(
        env.calls.snapshot()["elasticsearch:security.change_password"],
        1,
        "a retry is not a second operation"
    );

    // A 500 is not transient: reported at once.
    env.es.clear_requests();
    env.es
        .fail_next("PUT", "/_security/user/items/_enable", 500, 10);
    env.es
        .fail_next("POST", "/_security/user/items/_enable", 500, 10);
    let e = env
        .elastic
        .set_enabled("items", true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("security.enable_user failed") && e.contains("HTTP 500"),
        "{e}"
    );
    assert_eq!(env.es.requests().len(), 1);

    // A 503 that never clears: a bounded number of attempts, then Err.
    env.es.clear_requests();
    let before = user(&env, "items").await.unwrap();
    env.es.clear_requests();
    env.es.fail_next("PUT", "/_security/user/items", 503, 100);
    let e = env
        .elastic
        .put_user(&before, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("security.put_user failed") && e.contains("HTTP 503"),
        "{e}"
    );
    let attempts = env.es.requests().len();
    assert!((2..=5).contains(&attempts), "{attempts} attempts");
}

#[tokio::test]
async fn secret_values_never_reach_errors_or_logs() {
    let env = setup().await;
    let pw = "never-print-me-4c0ffee";
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = {
        let logs = logs.clone();
        move || LogWriter(logs.clone())
    };
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(writer)
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);

    let mut errors = Vec::new();
    // A user that does not exist.
    let e = env
        .elastic
        .set_password("no_such_user", &secret(pw))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("user must exist in order to change password"),
        "{e}"
    );
    errors.push(format!("{e} {e:?}"));
    // A failure injected on the transport's answer.
    env.es
        .fail_next("POST", "/_security/user/search/_password", 500, 1);
    let e = env
        .elastic
        .set_password("search", &secret(pw))
        .await
        .unwrap_err();
    errors.push(format!("{e} {e:?}"));
    // Recreating a user with a bad name.
    let mut bad = user(&env, "search").await.unwrap();
    bad.username = " leading-space".into();
    let e = env
        .elastic
        .put_user(&bad, Some(&secret(pw)))
        .await
        .unwrap_err();
    errors.push(format!("{e} {e:?}"));
    // And the successful paths, for the logs.
    env.elastic
        .set_password("search", &secret(pw))
        .await
        .unwrap();
    let search = user(&env, "search").await.unwrap();
    env.elastic
        .put_user(&search, Some(&secret(pw)))
        .await
        .unwrap();
    drop(guard);

    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("security.change_password"),
        "debug logs were captured"
    );
    let mut secrets = env.replica.secret_values.clone();
    secrets.push(pw.to_owned());
    let mut haystacks: Vec<(&str, &str)> = errors.iter().map(|e| ("error", e.as_str())).collect();
    haystacks.push(("logs", &logs));
    assert_no_leak_named(&haystacks, &secrets);
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------- ECS

async fn running_task_arns(env: &Env, svc: &ServiceRef) -> Vec<String> {
    let ecs = aws_sdk_ecs::Client::new(&env.sdk);
    let mut arns = ecs
        .list_tasks()
        .cluster(&svc.cluster)
        .service_name(&svc.service)
        .send()
        .await
        .unwrap()
        .task_arns()
        .to_vec();
    arns.sort();
    arns
}

fn arns(state: &opsguard::snapshot::model::ServiceState) -> Vec<String> {
    let mut a: Vec<String> = state.tasks.iter().map(|t| t.arn.clone()).collect();
    a.sort();
    a
}

#[tokio::test]
async fn service_reads_one_service_with_its_running_tasks() {
    let env = setup().await;
    let svc = ServiceRef::new(&env.replica.cluster, "prod-search-api");
    let state = env.ecs.service(&svc).await.unwrap();
    assert_eq!(state.service, svc);
    assert_eq!(state.arn, env.replica.service("prod-search-api").arn);
    assert_eq!((state.desired_count, state.running_count), (3, 3));
    assert_eq!(state.tasks.len(), 3);
    assert_eq!(arns(&state), running_task_arns(&env, &svc).await);
    for t in &state.tasks {
        assert_eq!(t.last_status, "RUNNING");
        assert_eq!(t.task_definition_arn, state.task_definition);
        assert!(t.started_at.is_some());
    }
    assert_eq!(state.deployments.len(), 1);
    assert_eq!(
        env.calls.snapshot(),
        counts(&[
            ("ecs:DescribeServices", 1),
            ("ecs:ListTasks", 2),
            ("ecs:DescribeTasks", 1),
        ])
    );

    let missing = ServiceRef::new(&env.replica.cluster, "prod-nothing-api");
    let e = env.ecs.service(&missing).await.unwrap_err().to_string();
    assert!(
        e.contains(&format!("service {missing} does not exist")),
        "{e}"
    );
    let no_cluster = ServiceRef::new("no-such-cluster", "prod-search-api");
    let e = env.ecs.service(&no_cluster).await.unwrap_err().to_string();
    assert!(
        e.contains("ECS DescribeServices failed") && e.contains("no-such-cluster"),
        "{e}"
    );
}

#[tokio::test]
async fn set_desired_count_scales_and_restores() {
    let env = setup().await;
    let svc = ServiceRef::new(&env.replica.cluster, "stage-search-api");
    // The incident's stage service sat at 3 instead of 1.
    env.ecs.set_desired_count(&svc, 3).await.unwrap();
    let state = env.ecs.service(&svc).await.unwrap();
    assert_eq!((state.desired_count, state.running_count), (3, 3));
    assert_eq!(state.tasks.len(), 3);
    assert_eq!(arns(&state), running_task_arns(&env, &svc).await);

    env.ecs.set_desired_count(&svc, 1).await.unwrap();
    env.ecs.set_desired_count(&svc, 1).await.unwrap();
    let state = env.ecs.service(&svc).await.unwrap();
    assert_eq!((state.desired_count, state.running_count), (1, 1));
    assert_eq!(state.tasks.len(), 1);

    let e = env
        .ecs
        .set_desired_count(&svc, -1)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("desired count -1 is negative"), "{e}");
    let missing = ServiceRef::new(&env.replica.cluster, "prod-nothing-api");
    let e = env
        .ecs
        .set_desired_count(&missing, 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ServiceNotFoundException") && e.contains(&missing.to_string()),
        "{e}"
    );
    assert_eq!(
        env.calls.snapshot()["ecs:UpdateService"],
        4,
        "the negative count sent nothing"
    );
}

#[tokio::test]
async fn force_new_deployment_replaces_every_task() {
    let env = setup().await;
    let svc = ServiceRef::new(&env.replica.cluster, "prod-items-api");
    let before = env.ecs.service(&svc).await.unwrap();
    assert_eq!(before.tasks.len(), 3);
    // ECS startedAt has whole-second resolution.
    let call_second = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();

    env.ecs.force_new_deployment(&svc).await.unwrap();

    let after = env.ecs.service(&svc).await.unwrap();
    assert_eq!((after.desired_count, after.running_count), (3, 3));
    assert_eq!(after.tasks.len(), 3);
    for t in &after.tasks {
        assert!(
            !before.tasks.iter().any(|b| b.arn == t.arn),
            "task {} survived the deployment",
            t.arn
        );
        assert!(
            t.started_at.unwrap() >= call_second,
            "task {} started at {:?}, before the call ({call_second})",
            t.arn,
            t.started_at
        );
        assert_eq!(t.last_status, "RUNNING");
    }
    assert_eq!(arns(&after), running_task_arns(&env, &svc).await);
    let primary = &after.deployments[0];
    assert_eq!(primary.status, "PRIMARY");
    assert_eq!(primary.rollout_state.as_deref(), Some("COMPLETED"));
    assert_eq!(primary.task_definition, before.task_definition);

    let e = env
        .ecs
        .force_new_deployment(&ServiceRef::new(&env.replica.cluster, "prod-nothing-api"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("forcing a new deployment") && e.contains("ServiceNotFoundException"),
        "{e}"
    );
    assert_eq!(env.calls.snapshot()["ecs:UpdateService"], 2);
}
