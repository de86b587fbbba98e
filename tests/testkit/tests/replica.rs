//! The incident replica, checked through the AWS SDK and the ES double's HTTP
//! API rather than through what `seed` says it did.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use es_double::EsDouble;
use opsguard_testkit::replica::{random_password, secret_name, CLUSTER, USERS};
use opsguard_testkit::{seed, Account, Ministack, Replica};

async fn seeded() -> (EsDouble, Replica) {
    let account = Ministack::shared().fresh_account();
    let elastic_password = random_password();
    let es = EsDouble::start(&elastic_password);
    let started = Instant::now();
    let replica = seed(&account, &es, &elastic_password).await;
    eprintln!("seeded the replica in {:?}", started.elapsed());
    (es, replica)
}

async fn ecs(account: &Account) -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::new(&account.sdk_config().await)
}

async fn secrets(account: &Account) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&account.sdk_config().await)
}

#[tokio::test]
async fn the_cluster_runs_the_four_services_with_their_tasks() {
    let (_es, replica) = seeded().await;
    let ecs = ecs(&replica.account).await;

    let arns = ecs
        .list_services()
        .cluster(CLUSTER)
        .send()
        .await
        .expect("ListServices")
        .service_arns()
        .to_vec();
    assert_eq!(arns.len(), 4, "{arns:?}");
    let described = ecs
        .describe_services()
        .cluster(CLUSTER)
        .set_services(Some(arns))
        .send()
        .await
        .expect("DescribeServices");
    let counts: BTreeMap<&str, (i32, i32)> = described
        .services()
        .iter()
        .map(|s| {
            (
                s.service_name().unwrap(),
                (s.desired_count(), s.running_count()),
            )
        })
        .collect();
    let expected: BTreeMap<&str, (i32, i32)> = [
        ("prod-search-api", (3, 3)),
        ("prod-items-api", (3, 3)),
        ("stage-search-api", (1, 1)),
        ("stage-items-api", (1, 1)),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, expected);

    for service in &replica.services {
        let task_arns = ecs
            .list_tasks()
            .cluster(CLUSTER)
            .service_name(&service.name)
            .send()
            .await
            .expect("ListTasks")
            .task_arns()
            .to_vec();
        assert_eq!(
            task_arns.len() as i32,
            service.desired_count,
            "{}",
            service.name
        );
        let tasks = ecs
            .describe_tasks()
            .cluster(CLUSTER)
            .set_tasks(Some(task_arns))
            .send()
            .await
            .expect("DescribeTasks");
        assert_eq!(tasks.tasks().len() as i32, service.desired_count);
        for task in tasks.tasks() {
            assert_eq!(task.last_status(), Some("RUNNING"), "{}", service.name);
            assert!(
                task.started_at().is_some(),
                "{} task without startedAt",
                service.name
            );
            assert_eq!(
                task.task_definition_arn(),
                Some(service.task_definition_arn.as_str())
            );
        }
    }
}

#[tokio::test]
async fn task_definitions_reference_the_search_and_items_secrets_only() {
    let (_es, replica) = seeded().await;
    let ecs = ecs(&replica.account).await;
    let mut referenced = BTreeSet::new();
    for service in &replica.services {
        let definition = ecs
            .describe_task_definition()
            .task_definition(&service.task_definition_arn)
            .send()
            .await
            .expect("DescribeTaskDefinition");
        let containers = definition
            .task_definition()
            .unwrap()
            .container_definitions();
        assert_eq!(containers.len(), 1);
        let app = &containers[0];
        assert_eq!(app.name(), Some("app"));
        assert!(
            app.environment()
                .iter()
                .any(|kv| kv.name() == Some("es_host")),
            "a plain environment entry"
        );
        let secrets: BTreeMap<&str, &str> = app
            .secrets()
            .iter()
            .map(|s| (s.name(), s.value_from()))
            .collect();
        assert_eq!(
            secrets.keys().copied().collect::<Vec<_>>(),
            ["es_password", "es_username"]
        );
        for (env, field) in [("es_username", "username"), ("es_password", "password")] {
            let secret = replica.secret_of(&service.user, field);
            let expected = match service.user.as_str() {
                "search" => format!("/aws/reference/secretsmanager/{}", secret.name),
                "items" => secret.arn.clone(),
                other => panic!("{} consumes {other}", service.name),
            };
            assert_eq!(secrets[env], expected, "{} {env}", service.name);
            referenced.insert(secret.name.clone());
        }
    }
    let expected: BTreeSet<String> = ["search", "items"]
        .iter()
        .flat_map(|u| [secret_name(u, "username"), secret_name(u, "password")])
        .collect();
    assert_eq!(
        referenced, expected,
        "diff_tool, replication_manager and internal_model_tool are unused"
    );
}

#[tokio::test]
async fn every_user_has_a_username_and_password_secret_at_awscurrent() {
    let (_es, replica) = seeded().await;
    let client = secrets(&replica.account).await;
    let listed: BTreeSet<String> = client
        .list_secrets()
        .send()
        .await
        .expect("ListSecrets")
        .secret_list()
        .iter()
        .map(|s| s.name().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = USERS
        .iter()
        .flat_map(|u| [secret_name(u, "username"), secret_name(u, "password")])
        .collect();
    assert_eq!(listed, expected);

    for secret in &replica.secrets {
        let described = client
            .describe_secret()
            .secret_id(&secret.arn)
            .send()
            .await
            .expect("DescribeSecret");
        assert_eq!(described.name(), Some(secret.name.as_str()));
        let stages = described
            .version_ids_to_stages()
            .and_then(|v| v.get(&secret.version_id))
            .unwrap_or_else(|| panic!("{} has no version {}", secret.name, secret.version_id));
        assert!(
            stages.iter().any(|s| s == "AWSCURRENT"),
            "{}: {stages:?}",
            secret.name
        );

        let value = client
            .get_secret_value()
            .secret_id(&secret.name)
            .send()
            .await
            .expect("GetSecretValue");
        assert_eq!(
            value.secret_string(),
            Some(secret.value.as_str()),
            "{}",
            secret.name
        );
        let expected = match secret.field.as_str() {
            "username" => secret.user.as_str(),
            _ => replica.password(&secret.user),
        };
        assert_eq!(secret.value, expected);
    }
}

#[tokio::test]
async fn users_authenticate_against_the_double_with_their_passwords() {
    let (es, replica) = seeded().await;
    let http = reqwest::Client::new();
    let authenticate = |user: &str, password: &str| {
        http.get(format!("{}/_security/_authenticate", es.url()))
            .basic_auth(user, Some(password))
            .send()
    };
    for user in &replica.users {
        let password = replica.password(user);
        assert_eq!(password.len(), 32);
        assert!(password.bytes().all(|b| b.is_ascii_hexdigit()));
        let response = authenticate(user, password)
            .await
            .expect("GET _authenticate");
        assert_eq!(response.status(), 200, "{user}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["username"], user.as_str());
        assert_eq!(
            body["roles"],
            serde_json::json!(["catalogue_read"]),
            "{user}"
        );

        let wrong = authenticate(user, "not-the-password").await.unwrap();
        assert_eq!(wrong.status(), 401, "{user} with a wrong password");
    }
    let admin = authenticate("elastic", &replica.elastic_password)
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);

    let role: serde_json::Value = http
        .get(format!("{}/_security/role/catalogue_read", es.url()))
        .basic_auth("elastic", Some(&replica.elastic_password))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let role = &role["catalogue_read"];
    assert_eq!(role["cluster"], serde_json::json!(["monitor"]));
    assert_eq!(
        role["indices"][0]["names"],
        serde_json::json!(["works-*", "images-*"])
    );
    assert_eq!(
        role["indices"][0]["privileges"],
        serde_json::json!(["read"])
    );

    // Every password and the admin password are scanned for leaks; usernames
    // are not secret.
    let mut expected: Vec<&str> = USERS.iter().map(|u| replica.password(u)).collect();
    expected.push(&replica.elastic_password);
    assert_eq!(replica.secret_values, expected);
    let distinct: BTreeSet<&String> = replica.secret_values.iter().collect();
    assert_eq!(distinct.len(), 6, "passwords are random");
}

#[tokio::test]
async fn two_replicas_share_one_ministack_without_colliding() {
    let ((_es_a, a), (_es_b, b)) = tokio::join!(seeded(), seeded());
    assert_ne!(a.account.id, b.account.id);
    assert_ne!(
        a.secret_of("search", "password").arn,
        b.secret_of("search", "password").arn
    );
    let value = secrets(&a.account)
        .await
        .get_secret_value()
        .secret_id("elasticsearch/catalogue_api/search/password")
        .send()
        .await
        .unwrap();
    assert_eq!(value.secret_string(), Some(a.password("search")));
    assert_ne!(a.password("search"), b.password("search"));
}

#[test]
fn write_config_describes_the_replica() {
    let account = Account {
        id: "123456789012".into(),
        access_key_id: "123456789012".into(),
        secret_access_key: "not-in-the-config".into(),
        region: "eu-west-1".into(),
        endpoint: "http://127.0.0.1:4566".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = opsguard_testkit::write_config(dir.path(), "http://127.0.0.1:9200", &account);
    assert_eq!(path, dir.path().join("opsguard.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains(&account.secret_access_key),
        "no credentials in the config"
    );
    let config: toml::Value = toml::from_str(&text).unwrap();
    let expected: toml::Value = toml::from_str(&format!(
        r#"
        [elasticsearch]
        url = "http://127.0.0.1:9200"
        username = "elastic"
        password_env = "OPSGUARD_ES_PASSWORD"

        [aws]
        region = "eu-west-1"
        endpoint_url = "{}"

        [ecs]
        clusters = ["catalogue-api-2021-04-26"]

        [[credentials]]
        kind = "elasticsearch-basic"
        username_env = "es_username"
        password_env = "es_password"
        "#,
        account.endpoint
    ))
    .unwrap();
    assert_eq!(config, expected);
}
