//! Many accounts: the incident's two AWS accounts (catalogue and identity),
//! each reached by assuming a role, around one Elasticsearch cluster.
//!
//! ministack scopes resources by account and honours STS AssumeRole into
//! another account, but it does not let one account read another's secret by
//! ARN (there are no resource policies): so a test that passes proves that
//! opsguard assumed each role and read every secret through the target of
//! its account.

mod common;

use common::*;
use opsguard_testkit::{Account, Cmd, Ministack};
use serde_json::Value;

const IDENTITY_CLUSTER: &str = "identity-api";

/// In account `identity`: a cluster whose service reads the catalogue
/// account's search secrets by ARN, as a cross-account consumer does.
async fn seed_identity(identity: &Account, env: &Env) {
    let ecs = aws_sdk_ecs::Client::new(&identity.sdk_config().await);
    ecs.create_cluster()
        .cluster_name(IDENTITY_CLUSTER)
        .send()
        .await
        .unwrap();
    let secret = |field: &str| {
        aws_sdk_ecs::types::Secret::builder()
            .name(format!("es_{field}"))
            .value_from(env.replica.secret_of("search", field).arn.clone())
            .build()
            .unwrap()
    };
    let td = ecs
        .register_task_definition()
        .family("prod-identity-api")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("app")
                .image("identity-api:latest")
                .memory(256)
                .secrets(secret("username"))
                .secrets(secret("password"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    ecs.create_service()
        .cluster(IDENTITY_CLUSTER)
        .service_name("prod-identity-api")
        .task_definition(td.task_definition().unwrap().task_definition_arn().unwrap())
        .desired_count(2)
        .send()
        .await
        .unwrap();
}

/// A config with two targets, and the environment of a third account whose
/// credentials only assume the roles.
async fn two_accounts() -> (Env, Account, Vec<(String, String)>) {
    let env = setup().await;
    let identity = Ministack::shared().fresh_account();
    seed_identity(&identity, &env).await;
    let catalogue = &env.replica.account;
    let config = format!(
        r#"[elasticsearch]
url = "{es}"
username = "elastic"
password_env = "OPSGUARD_ES_PASSWORD"

[aws]
region = "{region}"
endpoint_url = "{endpoint}"

[[aws.targets]]
name = "catalogue"
role_arn = "arn:aws:iam::{cat}:role/opsguard"
clusters = ["{cluster}"]

[[aws.targets]]
name = "identity"
role_arn = "arn:aws:iam::{id}:role/opsguard"
clusters = ["{IDENTITY_CLUSTER}"]

[[credentials]]
kind = "elasticsearch-basic"
username_env = "es_username"
password_env = "es_password"
"#,
        es = env.replica.es_url,
        region = catalogue.region,
        endpoint = catalogue.endpoint,
        cat = catalogue.id,
        id = identity.id,
        cluster = env.replica.cluster,
    );
    std::fs::write(&env.config, config).unwrap();
    // The base identity belongs to neither account: only the roles reach them.
    let base = Ministack::shared().fresh_account();
    let mut vars = base.env();
    vars.push(("OPSGUARD_ES_PASSWORD".into(), ADMIN_PW.into()));
    (env, identity, vars)
}

#[tokio::test]
async fn one_credential_graph_spans_both_accounts() {
    let (env, _identity, vars) = two_accounts().await;
    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(vars)
        .args(["snapshot", "--config"])
        .arg(&env.config)
        .output();
    out.assert_code(0);
    let snap: Value = serde_json::from_str(&out.stdout).unwrap();
    let services: Vec<&str> = snap["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert!(
        services.contains(&"catalogue:catalogue-api-2021-04-26/prod-search-api"),
        "{services:?}"
    );
    assert!(
        services.contains(&"identity:identity-api/prod-identity-api"),
        "{services:?}"
    );
    let search = snap["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "search")
        .unwrap();
    let consumers: Vec<&str> = search["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["service"].as_str().unwrap())
        .collect();
    assert_eq!(
        consumers,
        [
            "catalogue:catalogue-api-2021-04-26/prod-search-api",
            "catalogue:catalogue-api-2021-04-26/stage-search-api",
            "identity:identity-api/prod-identity-api",
        ]
    );
    assert_eq!(search["probe"]["result"], "authenticated");
    // The SSM-form and the cross-account ARN references meet on one secret.
    let pw = snap["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "catalogue:elasticsearch/catalogue_api/search/password")
        .unwrap_or_else(|| panic!("{:#}", snap["secrets"]));
    assert_eq!(pw["referenced_as"].as_array().unwrap().len(), 2, "{pw:#}");
    assert_eq!(pw["consumers"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_2021_script_across_accounts_is_rolled_back() {
    let (env, _identity, vars) = two_accounts().await;
    let report = env.dir.path().join("report.json");
    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(vars)
        .env("NO_COLOR", "1")
        // The script itself works in the catalogue account, as in 2021.
        .env("ES_URL", &env.replica.es_url)
        .env("ES_PASSWORD", ADMIN_PW)
        .current_dir(env.dir.path())
        .args(["run", "--on-violation", "rollback", "--config"])
        .arg(&env.config)
        .arg("--report")
        .arg(&report)
        .args(["--", "env"])
        .args(
            env.replica
                .account
                .env()
                .iter()
                .map(|(k, v)| format!("{k}={v}")),
        )
        .arg(python())
        .arg(script("create_elastic_users.py"))
        .output();
    out.assert_code(10);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let broken = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "live-credential-broken" && v["target"] == "search")
        .unwrap();
    assert!(
        broken["consumers"]
            .to_string()
            .contains("identity:identity-api/prod-identity-api"),
        "{broken:#}"
    );
    assert_before_state(&env, &["search", "items"]).await;
}
