//! The environment of the 2021-07-27 incident, seeded into one [`Account`] and
//! one Elasticsearch double.
//!
//! * Elasticsearch: role `catalogue_read` (read on `works-*` and `images-*`,
//!   cluster `monitor`) and the five catalogue users ([`USERS`]), each with a
//!   random 32-hex-character password.
//! * Secrets Manager: `elasticsearch/catalogue_api/{user}/username` and
//!   `.../password` for each of the five users.
//! * ECS: cluster [`CLUSTER`] with `prod-search-api` (3 tasks),
//!   `prod-items-api` (3), `stage-search-api` (1) and `stage-items-api` (1).
//!   Each task definition has one container, `app`, whose `secrets` name
//!   `es_username` and `es_password`: the search services by the SSM reference
//!   form (`/aws/reference/secretsmanager/NAME`), the items services by the
//!   full secret ARN. Prod and stage share the users, as they did in 2021.
//!   `diff_tool`, `replication_manager` and `internal_model_tool` are consumed
//!   by no task definition: changing them is not a violation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, KeyValuePair,
    LaunchType, NetworkConfiguration, NetworkMode, PortMapping, Secret,
};

use crate::ministack::Account;

/// The ECS cluster of the incident.
pub const CLUSTER: &str = "catalogue-api-2021-04-26";

/// The Elasticsearch role every catalogue user has.
pub const ROLE: &str = "catalogue_read";

/// The catalogue users, in seeding order.
pub const USERS: [&str; 5] = [
    "search",
    "items",
    "diff_tool",
    "replication_manager",
    "internal_model_tool",
];

/// `(service, consumed user, desired count)`, in seeding order.
const SERVICES: [(&str, &str, i32); 4] = [
    ("prod-search-api", "search", 3),
    ("prod-items-api", "items", 3),
    ("stage-search-api", "search", 1),
    ("stage-items-api", "items", 1),
];

/// The container env var names, paired by `[[credentials]]` in the config.
pub const USERNAME_ENV: &str = "es_username";
pub const PASSWORD_ENV: &str = "es_password";

/// Everything [`seed`] created, for assertions.
#[derive(Debug, Clone)]
pub struct Replica {
    pub account: Account,
    pub es_url: String,
    pub cluster: String,
    pub cluster_arn: String,
    pub services: Vec<ReplicaService>,
    /// The five users, in [`USERS`] order.
    pub users: Vec<String>,
    /// user → password. Test code: plain strings.
    pub passwords: BTreeMap<String, String>,
    /// All ten secrets, username then password for each user in order.
    pub secrets: Vec<ReplicaSecret>,
    /// The five user passwords and the admin password: every value that must
    /// never appear in output. The username secrets' values are left out on
    /// purpose: usernames are not secret and reports name them.
    pub secret_values: Vec<String>,
    /// The `elastic` admin user's password.
    pub elastic_password: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaService {
    /// e.g. `prod-search-api`
    pub name: String,
    pub arn: String,
    /// `prod` or `stage`
    pub environment: String,
    /// The task definition family; the same as the service name.
    pub family: String,
    pub task_definition_arn: String,
    /// The Elasticsearch user whose secrets the container reads.
    pub user: String,
    pub desired_count: i32,
    /// The container's `secrets`: env var name → `valueFrom`.
    pub secret_refs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSecret {
    /// e.g. `elasticsearch/catalogue_api/search/password`
    pub name: String,
    /// As returned by CreateSecret.
    pub arn: String,
    /// The AWSCURRENT version CreateSecret made.
    pub version_id: String,
    pub user: String,
    /// `username` or `password`
    pub field: String,
    pub value: String,
}

impl Replica {
    /// The password of `user`; panics for a user the replica does not have.
    pub fn password(&self, user: &str) -> &str {
        self.passwords
            .get(user)
            .unwrap_or_else(|| panic!("the replica has no user {user:?}"))
    }

    /// The secret named `name`; panics if the replica has none.
    pub fn secret(&self, name: &str) -> &ReplicaSecret {
        self.secrets
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("the replica has no secret {name:?}"))
    }

    /// The secret holding `user`'s `field` (`username` or `password`).
    pub fn secret_of(&self, user: &str, field: &str) -> &ReplicaSecret {
        self.secret(&secret_name(user, field))
    }

    /// The service named `name`; panics if the replica has none.
    pub fn service(&self, name: &str) -> &ReplicaService {
        self.services
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("the replica has no service {name:?}"))
    }

    /// The services that consume `user`'s secrets.
    pub fn consumers_of(&self, user: &str) -> Vec<&ReplicaService> {
        self.services.iter().filter(|s| s.user == user).collect()
    }

    /// `cluster/service` for each consumer of `user`, as reports name them.
    pub fn consumer_refs(&self, user: &str) -> Vec<String> {
        self.consumers_of(user)
            .iter()
            .map(|s| format!("{}/{}", self.cluster, s.name))
            .collect()
    }

    /// Environment for the opsguard binary: the account's AWS variables and
    /// `OPSGUARD_ES_PASSWORD`, as [`write_config`]'s config expects.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.account.env();
        env.push(("OPSGUARD_ES_PASSWORD".into(), self.elastic_password.clone()));
        env
    }

    /// [`write_config`] for this replica.
    pub fn write_config(&self, dir: &Path) -> PathBuf {
        write_config(dir, &self.es_url, &self.account)
    }
}

/// `elasticsearch/catalogue_api/{user}/{field}`
pub fn secret_name(user: &str, field: &str) -> String {
    format!("elasticsearch/catalogue_api/{user}/{field}")
}

/// A random password: 32 lowercase hex characters.
pub fn random_password() -> String {
    rand::random::<[u8; 16]>()
        .iter()
        .fold(String::with_capacity(32), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Seed the incident's environment into `account` and `es` (whose `elastic`
/// user has `elastic_password`). Panics on any failure, naming the call.
pub async fn seed(account: &Account, es: &es_double::EsDouble, elastic_password: &str) -> Replica {
    seed_at(account, &es.url(), elastic_password).await
}

/// [`seed`] against the Elasticsearch at `es_url` (`http://HOST:PORT`).
pub async fn seed_at(account: &Account, es_url: &str, elastic_password: &str) -> Replica {
    let es_url = es_url.trim_end_matches('/').to_string();
    let passwords: BTreeMap<String, String> = USERS
        .iter()
        .map(|u| (u.to_string(), random_password()))
        .collect();

    seed_elasticsearch(&es_url, elastic_password, &passwords).await;

    let config = account.sdk_config().await;
    let secrets_client = aws_sdk_secretsmanager::Client::new(&config);
    let mut secrets = Vec::new();
    for user in USERS {
        for (field, value) in [("username", user), ("password", passwords[user].as_str())] {
            let name = secret_name(user, field);
            let created = secrets_client
                .create_secret()
                .name(&name)
                .description(format!(
                    "Elasticsearch {field} for the catalogue API's {user} user"
                ))
                .secret_string(value)
                .send()
                .await
                .unwrap_or_else(|e| panic!("CreateSecret {name}: {e:?}"));
            secrets.push(ReplicaSecret {
                arn: created
                    .arn()
                    .expect("CreateSecret returns an ARN")
                    .to_string(),
                version_id: created
                    .version_id()
                    .expect("CreateSecret returns a version id")
                    .to_string(),
                name,
                user: user.to_string(),
                field: field.to_string(),
                value: value.to_string(),
            });
        }
    }

    let ecs = aws_sdk_ecs::Client::new(&config);
    let cluster_arn = ecs
        .create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateCluster {CLUSTER}: {e:?}"))
        .cluster()
        .and_then(|c| c.cluster_arn())
        .expect("CreateCluster returns the cluster ARN")
        .to_string();

    let es_host = es_url.trim_start_matches("http://").to_string();
    let mut services = Vec::new();
    for (name, user, desired_count) in SERVICES {
        let environment = name
            .split('-')
            .next()
            .expect("prod-… or stage-…")
            .to_string();
        let value_from = |field: &str| {
            let name = secret_name(user, field);
            if user == "search" {
                format!("/aws/reference/secretsmanager/{name}")
            } else {
                secrets
                    .iter()
                    .find(|s| s.name == name)
                    .expect("seeded above")
                    .arn
                    .clone()
            }
        };
        let secret_refs: BTreeMap<String, String> = [
            (USERNAME_ENV.to_string(), value_from("username")),
            (PASSWORD_ENV.to_string(), value_from("password")),
        ]
        .into_iter()
        .collect();

        let mut container = ContainerDefinition::builder()
            .name("app")
            .image(format!(
                "760097843905.dkr.ecr.{}.amazonaws.com/uk.ac.wellcome/{}_api:latest",
                account.region, user
            ))
            .essential(true)
            .port_mappings(PortMapping::builder().container_port(8888).build())
            .environment(
                KeyValuePair::builder()
                    .name("es_host")
                    .value(&es_host)
                    .build(),
            )
            .environment(
                KeyValuePair::builder()
                    .name("es_protocol")
                    .value("http")
                    .build(),
            )
            .environment(
                KeyValuePair::builder()
                    .name("apm_environment")
                    .value(&environment)
                    .build(),
            );
        for (env_name, value_from) in &secret_refs {
            container = container.secrets(
                Secret::builder()
                    .name(env_name)
                    .value_from(value_from)
                    .build()
                    .expect("name and valueFrom are set"),
            );
        }
        let task_definition_arn = ecs
            .register_task_definition()
            .family(name)
            .requires_compatibilities(Compatibility::Fargate)
            .network_mode(NetworkMode::Awsvpc)
            .cpu("512")
            .memory("1024")
            .execution_role_arn(format!(
                "arn:aws:iam::{}:role/catalogue-api-task-execution-role",
                account.id
            ))
            .container_definitions(container.build())
            .send()
            .await
            .unwrap_or_else(|e| panic!("RegisterTaskDefinition {name}: {e:?}"))
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .expect("RegisterTaskDefinition returns the ARN")
            .to_string();

        let arn = ecs
            .create_service()
            .cluster(CLUSTER)
            .service_name(name)
            .task_definition(&task_definition_arn)
            .desired_count(desired_count)
            .launch_type(LaunchType::Fargate)
            .network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(
                        AwsVpcConfiguration::builder()
                            .subnets("subnet-0f4c3b2a1d0e9c8b7")
                            .assign_public_ip(AssignPublicIp::Disabled)
                            .build()
                            .expect("subnets are set"),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateService {name}: {e:?}"))
            .service()
            .and_then(|s| s.service_arn())
            .expect("CreateService returns the service ARN")
            .to_string();

        services.push(ReplicaService {
            name: name.to_string(),
            arn,
            environment,
            family: name.to_string(),
            task_definition_arn,
            user: user.to_string(),
            desired_count,
            secret_refs,
        });
    }

    let mut secret_values: Vec<String> = USERS.iter().map(|u| passwords[*u].clone()).collect();
    secret_values.push(elastic_password.to_string());
    Replica {
        account: account.clone(),
        es_url,
        cluster: CLUSTER.to_string(),
        cluster_arn,
        services,
        users: USERS.iter().map(|u| u.to_string()).collect(),
        passwords,
        secrets,
        secret_values,
        elastic_password: elastic_password.to_string(),
    }
}

async fn seed_elasticsearch(
    es_url: &str,
    elastic_password: &str,
    passwords: &BTreeMap<String, String>,
) {
    let http = reqwest::Client::new();
    let put = |path: String, body: serde_json::Value| {
        let request = http
            .put(format!("{es_url}{path}"))
            .basic_auth("elastic", Some(elastic_password))
            .json(&body);
        async move {
            let response = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("PUT {path} on the ES double: {e}"));
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                panic!("PUT {path} on the ES double answered {status}: {body}");
            }
        }
    };
    put(
        format!("/_security/role/{ROLE}"),
        serde_json::json!({
            "cluster": ["monitor"],
            "indices": [{"names": ["works-*", "images-*"], "privileges": ["read"]}],
        }),
    )
    .await;
    for user in USERS {
        put(
            format!("/_security/user/{user}"),
            serde_json::json!({
                "password": passwords[user],
                "roles": [ROLE],
                "full_name": format!("catalogue API {user}"),
                "metadata": {"provisioned_by": "create_elastic_users_catalogue.py"},
            }),
        )
        .await;
    }
}

/// Write `opsguard.toml` for the replica into `dir` and return its path. The
/// admin password is not in it: it is read from `OPSGUARD_ES_PASSWORD` (see
/// [`Replica::env`]).
pub fn write_config(dir: &Path, es_url: &str, account: &Account) -> PathBuf {
    let text = format!(
        r#"[elasticsearch]
url = {url}
username = "elastic"
password_env = "OPSGUARD_ES_PASSWORD"

[aws]
region = {region}
endpoint_url = {endpoint}

[ecs]
clusters = [{cluster}]

[[credentials]]
kind = "elasticsearch-basic"
username_env = {username_env}
password_env = {password_env}
"#,
        url = toml_string(es_url),
        region = toml_string(&account.region),
        endpoint = toml_string(&account.endpoint),
        cluster = toml_string(CLUSTER),
        username_env = toml_string(USERNAME_ENV),
        password_env = toml_string(PASSWORD_ENV),
    );
    let path = dir.join("opsguard.toml");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// A TOML string (the toml crate picks the quoting and escapes).
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}
