//! `opsguard snapshot` against the real wire protocols: ministack for ECS and
//! Secrets Manager, the ES double for Elasticsearch, seeded with a replica of
//! the 2021-07-27 incident's environment.

mod common;

use common::{setup, Env, ADMIN_PW};
use opsguard_testkit::{assert_no_leak_named, Account, Cmd, Output};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn opsguard(env: &Env) -> Cmd {
    Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .env("NO_COLOR", "1")
        .current_dir(env.dir.path())
}

fn snapshot_to_file(env: &Env) -> (Output, Value, String) {
    let file = env.dir.path().join("snap.json");
    let _ = std::fs::remove_file(&file);
    let out = opsguard(env)
        .args(["snapshot", "--config"])
        .arg(&env.config)
        .arg("-o")
        .arg(&file)
        .output();
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (out, json, text)
}

fn credential<'a>(snap: &'a Value, id: &str) -> &'a Value {
    snap["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no credential {id} in {:#}", snap["credentials"]))
}

fn secret<'a>(snap: &'a Value, name: &str) -> &'a Value {
    snap["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no secret {name}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn snapshot_of_the_incident_replica() {
    let env = setup().await;
    let r = &env.replica;
    env.es.clear_requests();
    let (out, snap, text) = snapshot_to_file(&env);
    out.assert_code(0);
    assert_eq!(out.stdout, "", "with -o nothing goes to stdout");
    assert_eq!(snap["schema"], "opsguard.snapshot/v1");
    opsguard_testkit::schema::assert_conforms(opsguard_testkit::schema::Schema::Snapshot, &snap);

    // Services and their running tasks.
    let services = snap["services"].as_array().unwrap();
    let counts: Vec<(String, i64, i64, usize)> = services
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_owned(),
                s["desired_count"].as_i64().unwrap(),
                s["running_count"].as_i64().unwrap(),
                s["tasks"].as_array().unwrap().len(),
            )
        })
        .collect();
    let c = &r.cluster;
    assert_eq!(
        counts,
        vec![
            (format!("{c}/prod-items-api"), 3, 3, 3),
            (format!("{c}/prod-search-api"), 3, 3, 3),
            (format!("{c}/stage-items-api"), 1, 1, 1),
            (format!("{c}/stage-search-api"), 1, 1, 1),
        ]
    );
    for s in services {
        assert_eq!(s["deployments"][0]["rollout_state"], "COMPLETED");
        for t in s["tasks"].as_array().unwrap() {
            assert_eq!(t["last_status"], "RUNNING");
            assert!(t["started_at"].is_string(), "task without startedAt: {t}");
            assert_eq!(t["task_definition_arn"], s["task_definition"]);
        }
    }

    // The credential graph: search and items are consumed, nothing else is.
    let ids: Vec<&str> = snap["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["items", "search"]);
    for user in ["search", "items"] {
        let cred = credential(&snap, user);
        assert_eq!(cred["kind"], "elasticsearch-basic");
        assert_eq!(cred["principal"], user);
        let consumers: Vec<&str> = cred["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["service"].as_str().unwrap())
            .collect();
        let mut want = r.consumer_refs(user);
        want.sort();
        assert_eq!(consumers, want);
        let running: u64 = cred["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["running_tasks"].as_u64().unwrap())
            .sum();
        assert_eq!(running, 4, "3 prod + 1 stage tasks consume {user}");
        assert_eq!(cred["probe"]["result"], "authenticated", "{cred:#}");
        assert_eq!(cred["probe"]["authenticated_as"], user);
        assert_eq!(
            strings(&cred["secrets"]),
            [
                format!("elasticsearch/catalogue_api/{user}/password"),
                format!("elasticsearch/catalogue_api/{user}/username")
            ]
        );
    }

    // Exactly the referenced secrets, with their real ARNs and versions.
    let names: Vec<&str> = snap["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    for user in ["search", "items"] {
        for field in ["username", "password"] {
            let want = r.secret_of(user, field);
            let s = secret(&snap, &want.name);
            assert_eq!(s["arn"], want.arn.as_str());
            assert_eq!(s["exists"], true);
            assert_eq!(s["current_version_id"], want.version_id.as_str());
            assert!(s["current_fingerprint"]
                .as_str()
                .unwrap()
                .starts_with("hmac-sha256:"));
            assert_eq!(
                s["versions"][0]["stages"],
                serde_json::json!(["AWSCURRENT"])
            );
            assert!(s["versions"][0]["created_date"].is_string());
            assert_eq!(s["consumers"].as_array().unwrap().len(), 2);
        }
    }
    // Search services name their secrets through Parameter Store, items by ARN.
    let search_pw = secret(&snap, "elasticsearch/catalogue_api/search/password");
    assert_eq!(
        strings(&search_pw["referenced_as"]),
        ["/aws/reference/secretsmanager/elasticsearch/catalogue_api/search/password"]
    );
    let items_pw = r.secret_of("items", "password");
    assert_eq!(
        strings(&secret(&snap, &items_pw.name)["referenced_as"]),
        [items_pw.arn.as_str()]
    );

    // Elasticsearch.
    let users: Vec<&Value> = snap["elasticsearch"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    for u in &r.users {
        let user = users.iter().find(|x| x["username"] == u.as_str()).unwrap();
        assert_eq!(user["roles"], serde_json::json!(["catalogue_read"]));
        assert_eq!(user["enabled"], true);
        assert_eq!(user["reserved"], false);
    }
    let elastic = users.iter().find(|x| x["username"] == "elastic").unwrap();
    assert_eq!(elastic["reserved"], true);
    assert_eq!(snap["elasticsearch"]["health"]["status"], "green");

    // Reads are batched: one of each per cluster or batch, task definitions once each.
    let calls = &snap["collection"]["api_calls"];
    assert_eq!(calls["ecs:DescribeClusters"], 1);
    assert_eq!(calls["ecs:ListServices"], 1);
    assert_eq!(calls["ecs:DescribeServices"], 1);
    assert_eq!(calls["ecs:DescribeTasks"], 1);
    assert_eq!(calls["ecs:DescribeTaskDefinition"], 4);
    // Secrets: one ListSecrets page for all, one batch for the values; no
    // per-secret DescribeSecret, no version history on a plain snapshot.
    assert_eq!(calls["secretsmanager:ListSecrets"], 1);
    assert_eq!(calls["secretsmanager:BatchGetSecretValue"], 1);
    assert!(
        calls.get("secretsmanager:DescribeSecret").is_none(),
        "{calls}"
    );
    assert!(
        calls.get("secretsmanager:ListSecretVersionIds").is_none(),
        "{calls}"
    );
    assert_eq!(calls["elasticsearch:security.get_user"], 1);
    assert_eq!(calls["elasticsearch:security.authenticate"], 2);
    let user_gets = env
        .es
        .requests()
        .iter()
        .filter(|q| q.method == "GET" && q.path.starts_with("/_security/user"))
        .count();
    assert_eq!(user_gets, 1, "one GET /_security/user for all users");

    // Nothing secret anywhere.
    assert_no_leak_named(
        &[
            ("stdout", &out.stdout),
            ("stderr", &out.stderr),
            ("snapshot file", &text),
        ],
        &r.secret_values,
    );
    let key = std::fs::read(env.dir.path().join(".opsguard/fingerprint.key")).unwrap();
    assert_eq!(key.len(), 32);
}

#[tokio::test]
async fn snapshot_to_stdout_with_a_human_summary_on_stderr() {
    let env = setup().await;
    let out = opsguard(&env)
        .args(["snapshot", "--config"])
        .arg(&env.config)
        .output();
    out.assert_code(0);
    let snap: Value = serde_json::from_str(&out.stdout).expect("stdout is the JSON snapshot");
    assert_eq!(snap["schema"], "opsguard.snapshot/v1");
    assert!(
        out.stderr
            .contains("4 services (8 tasks), 4 secrets, 2 credentials (2 authenticate), 12 users"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains('\u{1b}'),
        "no colour with NO_COLOR or off a terminal"
    );
    opsguard_testkit::snap::settings(&[])
        .bind(|| insta::assert_snapshot!("snapshot_human", out.stderr));
    assert_no_leak_named(
        &[("stdout", &out.stdout), ("stderr", &out.stderr)],
        &env.replica.secret_values,
    );
}

/// Change a user's password in Elasticsearch only, as half of the 2021 script did.
async fn set_es_password(es_url: &str, user: &str, password: &str) {
    use elasticsearch::auth::Credentials;
    use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
    use elasticsearch::security::SecurityChangePasswordParts;
    let t = TransportBuilder::new(SingleNodeConnectionPool::new(es_url.parse().unwrap()))
        .auth(Credentials::Basic("elastic".into(), ADMIN_PW.into()))
        .build()
        .unwrap();
    let resp = elasticsearch::Elasticsearch::new(t)
        .security()
        .change_password(SecurityChangePasswordParts::Username(user))
        .body(serde_json::json!({ "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status_code().as_u16(), 200);
}

#[tokio::test]
async fn a_password_changed_only_in_elasticsearch_no_longer_authenticates() {
    let env = setup().await;
    let fresh = "rotated-by-a-script-0f3e9a";
    set_es_password(&env.replica.es_url, "search", fresh).await;
    let (out, snap, text) = snapshot_to_file(&env);
    out.assert_code(0);
    let search = credential(&snap, "search");
    assert_eq!(search["probe"]["result"], "rejected");
    assert!(search["probe"]["detail"]
        .as_str()
        .unwrap()
        .contains("unable to authenticate user [search]"));
    assert_eq!(
        credential(&snap, "items")["probe"]["result"],
        "authenticated"
    );
    assert!(
        out.stderr
            .contains("credential search does not authenticate"),
        "{}",
        out.stderr
    );
    let mut secrets = env.replica.secret_values.clone();
    secrets.push(fresh.to_owned());
    assert_no_leak_named(
        &[("stderr", &out.stderr), ("snapshot file", &text)],
        &secrets,
    );
}

/// Register a task definition for `family` whose container reads the search
/// credential through `refs`, and run one task of it as a service.
async fn add_service(account: &Account, cluster: &str, name: &str, refs: &[(&str, String)]) {
    let sdk = account.sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let secrets: Vec<aws_sdk_ecs::types::Secret> = refs
        .iter()
        .map(|(n, vf)| {
            aws_sdk_ecs::types::Secret::builder()
                .name(*n)
                .value_from(vf)
                .build()
                .unwrap()
        })
        .collect();
    let td = ecs
        .register_task_definition()
        .family(name)
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("app")
                .image("catalogue-api:latest")
                .memory(256)
                .set_secrets(Some(secrets))
                .build(),
        )
        .send()
        .await
        .unwrap();
    ecs.create_service()
        .cluster(cluster)
        .service_name(name)
        .task_definition(td.task_definition().unwrap().task_definition_arn().unwrap())
        .desired_count(1)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn every_value_from_form_resolves_to_the_same_secret() {
    let env = setup().await;
    let r = &env.replica;
    let pw = r.secret_of("search", "password");
    let user = r.secret_of("search", "username");
    let acct = &r.account.id;
    let region = &r.account.region;
    // JSON-key / stage suffixes, the SSM parameter ARN form, and AWSCURRENT named explicitly.
    add_service(
        &r.account,
        &r.cluster,
        "prod-search-api-arn-forms",
        &[
            ("es_username", format!("{}:::", user.arn)),
            ("es_password", format!("{}::AWSCURRENT:", pw.arn)),
        ],
    )
    .await;
    add_service(
        &r.account,
        &r.cluster,
        "prod-search-api-ssm-arn",
        &[
            (
                "es_username",
                format!(
                    "arn:aws:ssm:{region}:{acct}:parameter/aws/reference/secretsmanager/{}",
                    user.name
                ),
            ),
            (
                "es_password",
                format!(
                    "arn:aws:ssm:{region}:{acct}:parameter/aws/reference/secretsmanager/{}",
                    pw.name
                ),
            ),
        ],
    )
    .await;
    let (out, snap, _) = snapshot_to_file(&env);
    out.assert_code(0);
    let search = credential(&snap, "search");
    let consumers: Vec<&str> = search["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["service"].as_str().unwrap())
        .collect();
    let c = &r.cluster;
    assert_eq!(
        consumers,
        [
            format!("{c}/prod-search-api"),
            format!("{c}/prod-search-api-arn-forms"),
            format!("{c}/prod-search-api-ssm-arn"),
            format!("{c}/stage-search-api"),
        ]
    );
    assert_eq!(
        search["pinned"], false,
        "AWSCURRENT named explicitly still follows AWSCURRENT"
    );
    assert_eq!(
        snap["secrets"].as_array().unwrap().len(),
        4,
        "no new secret from new spellings"
    );
    assert_eq!(
        secret(&snap, &pw.name)["referenced_as"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(search["probe"]["result"], "authenticated");
}

#[tokio::test]
async fn a_pinned_version_is_kept_and_reported() {
    let env = setup().await;
    let r = &env.replica;
    let pw = r.secret_of("items", "password");
    let sm = aws_sdk_secretsmanager::Client::new(&r.account.sdk_config().await);
    // A rotation: the old value becomes AWSPREVIOUS.
    sm.put_secret_value()
        .secret_id(&pw.name)
        .secret_string("items-next-password-31c7")
        .send()
        .await
        .unwrap();
    add_service(
        &r.account,
        &r.cluster,
        "prod-items-api-pinned",
        &[
            ("es_username", r.secret_of("items", "username").arn.clone()),
            ("es_password", format!("{}:::{}", pw.arn, pw.version_id)),
        ],
    )
    .await;
    let (out, snap, text) = snapshot_to_file(&env);
    out.assert_code(0);
    let creds = snap["credentials"].as_array().unwrap();
    let pinned: Vec<&Value> = creds.iter().filter(|c| c["pinned"] == true).collect();
    assert_eq!(pinned.len(), 1, "{creds:#?}");
    assert_eq!(pinned[0]["principal"], "items");
    assert_eq!(
        pinned[0]["sources"][1]["version_read"],
        pw.version_id.as_str()
    );
    // The pinned (old) value still authenticates; the new AWSCURRENT does not,
    // because only the secret moved.
    assert_eq!(pinned[0]["probe"]["result"], "authenticated");
    let following: Vec<&Value> = creds
        .iter()
        .filter(|c| c["principal"] == "items" && c["pinned"] == false)
        .collect();
    assert_eq!(following[0]["probe"]["result"], "rejected");
    let s = secret(&snap, &pw.name);
    assert_eq!(s["versions"].as_array().unwrap().len(), 2);
    assert_ne!(s["current_version_id"], pw.version_id.as_str());
    let mut secrets = r.secret_values.clone();
    secrets.push("items-next-password-31c7".into());
    assert_no_leak_named(
        &[("stderr", &out.stderr), ("snapshot file", &text)],
        &secrets,
    );
}

#[tokio::test]
async fn transient_elasticsearch_failures_are_retried() {
    let env = setup().await;
    env.es.fail_next("GET", "/_security/user", 503, 2);
    let (out, snap, _) = snapshot_to_file(&env);
    out.assert_code(0);
    assert!(snap["elasticsearch"]["users"].as_array().unwrap().len() >= 5);
    let tries = env
        .es
        .requests()
        .iter()
        .filter(|q| q.method == "GET" && q.path.starts_with("/_security/user"))
        .count();
    assert_eq!(tries, 3);
}

#[tokio::test]
async fn a_snapshot_that_cannot_complete_exits_13_and_writes_nothing() {
    let env = setup().await;
    env.es.fail_next("GET", "/_security/user", 503, 100);
    let (out, snap, _) = snapshot_to_file(&env);
    out.assert_code(13);
    assert_eq!(snap, Value::Null, "no partial snapshot file");
    assert!(
        out.stderr.contains("cannot take a snapshot"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("security.get_user"), "{}", out.stderr);
}

#[tokio::test]
async fn an_unknown_cluster_exits_13() {
    let env = setup().await;
    let text = std::fs::read_to_string(&env.config).unwrap();
    let text = text.replace(&env.replica.cluster, "no-such-cluster");
    std::fs::write(&env.config, text).unwrap();
    let (out, _, _) = snapshot_to_file(&env);
    out.assert_code(13);
    assert!(
        out.stderr.contains("cluster arn:aws:ecs:eu-west-1:"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("no-such-cluster is MISSING"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn an_unreachable_elasticsearch_exits_13() {
    let env = setup().await;
    let port = env.es.port();
    drop(env.es);
    let config = env.config.clone();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains(&port.to_string()));
    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .args(["snapshot", "--config"])
        .arg(&config)
        .output();
    out.assert_code(13);
    assert!(out.stderr.contains("Elasticsearch"), "{}", out.stderr);
}

#[test]
fn config_errors_exit_2_and_point_at_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "[elasticsearch]\nurl = \"http://127.0.0.1:9\"\nusername = \"elastic\"\npassword_env = \"OPSGUARD_TEST_UNSET_VAR\"\n[ecs]\nclusters = [\"c\"]\n",
    );
    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .env("NO_COLOR", "1")
        .args(["snapshot", "--config"])
        .arg(&config)
        .output();
    out.assert_code(2);
    assert!(
        out.stderr.contains(
            "opsguard.toml:4:16: environment variable OPSGUARD_TEST_UNSET_VAR is not set"
        ),
        "{}",
        out.stderr
    );

    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .env("OPSGUARD_CONFIG", dir.path().join("missing.toml"))
        .arg("snapshot")
        .output();
    out.assert_code(2);
    assert!(out.stderr.contains("missing.toml"), "{}", out.stderr);

    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .arg("snapshot")
        .arg("--bogus")
        .output();
    out.assert_code(2);
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("opsguard.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// A run reads the full version history (ListSecretVersionIds) only of the
/// secrets whose AWSCURRENT moved during the command, and only after it: the
/// before snapshot and every secret that did not move make do with the
/// ListSecrets stage map.
#[tokio::test]
async fn a_run_reads_version_history_only_where_awscurrent_moved() {
    let env = setup().await;
    // The 2021 script moves AWSCURRENT of every user's two secrets; the
    // snapshot holds the four that search and items services reference.
    let (out, report, _) = common::guarded(&env, "block", "create_elastic_users.py");
    out.assert_code(11);
    assert_eq!(report["outcome"], "violated", "{report:#}");
    let run = common::only_run_id(&env);
    let dir = env.dir.path().join(".opsguard/runs").join(run);
    let read = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap()
    };
    let (before, after) = (read("before.json"), read("after.json"));
    let calls = |s: &Value, op: &str| s["collection"]["api_calls"][op].as_u64().unwrap_or(0);
    assert_eq!(calls(&before, "secretsmanager:ListSecretVersionIds"), 0);
    assert_eq!(calls(&after, "secretsmanager:ListSecretVersionIds"), 4);
    assert_eq!(calls(&before, "secretsmanager:ListSecrets"), 1);
    assert_eq!(calls(&after, "secretsmanager:DescribeSecret"), 0);
    for user in ["search", "items"] {
        for field in ["username", "password"] {
            let was = env.replica.secret_of(user, field);
            let s = secret(&after, &was.name);
            assert_ne!(s["current_version_id"], was.version_id.as_str());
            // The history: the before version (now AWSPREVIOUS) and the new
            // one, both with created dates.
            let versions = s["versions"].as_array().unwrap();
            assert_eq!(versions.len(), 2, "{s:#}");
            assert!(
                versions.iter().all(|v| v["created_date"].is_string()),
                "{s:#}"
            );
            let old = versions
                .iter()
                .find(|v| v["version_id"] == was.version_id.as_str())
                .unwrap();
            assert_eq!(old["stages"], serde_json::json!(["AWSPREVIOUS"]));
        }
    }
}

/// `max_concurrency = 1` (one request in flight) reads the same picture as
/// the default: the bound changes the pace, never the content.
#[tokio::test]
async fn one_request_in_flight_reads_the_same_snapshot() {
    let env = setup().await;
    let (out, wide, _) = snapshot_to_file(&env);
    out.assert_code(0);
    let text = std::fs::read_to_string(&env.config).unwrap();
    let narrow = text
        .replacen("[aws]\n", "[aws]\nmax_concurrency = 1\n", 1)
        .replacen(
            "[elasticsearch]\n",
            "[elasticsearch]\nmax_concurrency = 1\n",
            1,
        );
    assert_ne!(
        text, narrow,
        "the config has [aws] and [elasticsearch] tables"
    );
    std::fs::write(&env.config, narrow).unwrap();
    let (out, one, _) = snapshot_to_file(&env);
    out.assert_code(0);
    for part in ["secrets", "services", "credentials", "task_definitions"] {
        assert_eq!(one[part], wide[part], "{part} differs");
    }
    assert_eq!(
        one["collection"]["api_calls"],
        wide["collection"]["api_calls"]
    );
}
