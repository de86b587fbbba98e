//! Hand-built snapshots for the report stage's unit tests: the 2021-07-27
//! environment before and after the user script ran (passwords rotated in
//! Elasticsearch and Secrets Manager, no task replaced).
//!
//! One source: `tests/report_render.rs` includes this file too (`#[path]`),
//! giving it the `crate::config`, `crate::model` and `crate::snapshot::model`
//! paths it names; use no other `crate::` path here.

use crate::config::CredentialKind;
use crate::model::{SecretArn, SecretName, ServiceRef};
use crate::snapshot::model::*;
use time::format_description::well_known::Rfc3339;

pub const CLUSTER: &str = "catalogue-api-2021-04-26";
pub const KEY_ID: &str = "k1:0011223344556677";

pub fn at(s: &str) -> Timestamp {
    Timestamp::parse(s, &Rfc3339).expect("test timestamps are RFC 3339")
}

pub fn fp(hex2: &str) -> String {
    format!("hmac-sha256:{}", hex2.repeat(16))
}

pub fn user(name: &str, roles: &[&str]) -> EsUser {
    EsUser {
        username: name.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        full_name: None,
        email: None,
        enabled: true,
        metadata: serde_json::Map::new(),
        reserved: false,
    }
}

pub fn api_key(id: &str, creation: Option<&str>) -> ApiKeyState {
    ApiKeyState {
        id: id.into(),
        found: true,
        name: Some("search-key".into()),
        username: Some("elastic".into()),
        realm: Some("reserved".into()),
        creation: creation.map(at),
        expiration: None,
        invalidated: false,
    }
}

/// A secret whose AWSCURRENT is `version` with fingerprint `fp(hex2)`.
pub fn secret(name: &str, version: &str, hex2: &str) -> SecretState {
    SecretState {
        name: SecretName::new(name),
        arn: Some(SecretArn::new(format!(
            "arn:aws:secretsmanager:eu-west-1:000000000000:secret:{name}-AbCdEf"
        ))),
        exists: true,
        created_date: Some(at("2021-04-26T10:00:00Z")),
        last_changed_date: Some(at("2021-04-26T10:00:00Z")),
        deleted_date: None,
        current_version_id: Some(version.into()),
        current_fingerprint: Some(fp(hex2)),
        versions: vec![SecretVersionState {
            version_id: version.into(),
            stages: vec!["AWSCURRENT".into()],
            created_date: Some(at("2021-04-26T10:00:00Z")),
            fingerprint: Some(fp(hex2)),
        }],
        referenced_as: vec![],
        consumers: vec![],
    }
}

/// Rotate a secret: a new AWSCURRENT version (the old one becomes AWSPREVIOUS).
pub fn rotate(s: &mut SecretState, version: &str, hex2: &str, when: &str) {
    for v in &mut s.versions {
        v.stages = vec!["AWSPREVIOUS".into()];
    }
    s.versions.push(SecretVersionState {
        version_id: version.into(),
        stages: vec!["AWSCURRENT".into()],
        created_date: Some(at(when)),
        fingerprint: Some(fp(hex2)),
    });
    s.current_version_id = Some(version.into());
    s.current_fingerprint = Some(fp(hex2));
    s.last_changed_date = Some(at(when));
}

pub fn task(id: &str, started: &str) -> TaskState {
    TaskState {
        arn: format!("arn:aws:ecs:eu-west-1:000000000000:task/{CLUSTER}/{id}"),
        task_definition_arn: String::new(),
        last_status: "RUNNING".into(),
        desired_status: "RUNNING".into(),
        health_status: Some("UNKNOWN".into()),
        started_at: Some(at(started)),
        created_at: Some(at(started)),
        started_by: Some("ecs-svc/1".into()),
    }
}

pub fn deployment(id: &str, rollout: &str) -> DeploymentState {
    DeploymentState {
        id: id.into(),
        status: "PRIMARY".into(),
        task_definition: String::new(),
        desired_count: 0,
        running_count: 0,
        pending_count: 0,
        failed_tasks: 0,
        rollout_state: Some(rollout.into()),
        rollout_state_reason: None,
        created_at: Some(at("2021-04-26T10:00:00Z")),
        updated_at: Some(at("2021-04-26T10:00:00Z")),
    }
}

pub fn service(name: &str, tasks: Vec<TaskState>) -> ServiceState {
    let td = format!("arn:aws:ecs:eu-west-1:000000000000:task-definition/{name}:1");
    let n = tasks.len() as i32;
    let tasks = tasks
        .into_iter()
        .map(|t| TaskState {
            task_definition_arn: td.clone(),
            ..t
        })
        .collect();
    ServiceState {
        service: ServiceRef::new(CLUSTER, name),
        arn: format!("arn:aws:ecs:eu-west-1:000000000000:service/{CLUSTER}/{name}"),
        status: "ACTIVE".into(),
        desired_count: n,
        running_count: n,
        pending_count: 0,
        task_definition: td.clone(),
        launch_type: Some("FARGATE".into()),
        deployments: vec![DeploymentState {
            task_definition: td,
            desired_count: n,
            running_count: n,
            ..deployment("ecs-svc/1", "COMPLETED")
        }],
        tasks,
        consumes: vec![],
    }
}

pub fn credential(user: &str, services: &[&str]) -> CredentialState {
    let secret = |f: &str| SecretName::new(format!("elasticsearch/catalogue_api/{user}/{f}"));
    CredentialState {
        id: user.into(),
        origin: format!(
            "elasticsearch-basic|username=es_username<-secret:{}:::|password=es_password<-secret:{}:::",
            secret("username"),
            secret("password")
        ),
        kind: CredentialKind::ElasticsearchBasic,
        principal: Some(user.into()),
        sources: vec![],
        secrets: vec![secret("username"), secret("password")],
        consumers: services
            .iter()
            .map(|s| ConsumerState {
                service: ServiceRef::new(CLUSTER, *s),
                containers: vec!["app".into()],
                task_definitions: vec![format!(
                    "arn:aws:ecs:eu-west-1:000000000000:task-definition/{s}:1"
                )],
                running_tasks: 1,
            })
            .collect(),
        pinned: false,
        probe: Probe {
            result: ProbeResult::Authenticated,
            authenticated_as: Some(user.into()),
            detail: None,
        },
    }
}

/// The environment at 14:30 on 2021-07-27, before the user script ran.
pub fn incident_before() -> Snapshot {
    let mut search = vec![
        secret(
            "elasticsearch/catalogue_api/search/username",
            "7a7a7a7a-0000-4000-8000-000000000001",
            "a1",
        ),
        secret(
            "elasticsearch/catalogue_api/search/password",
            "5e5e5e5e-0000-4000-8000-000000000002",
            "b2",
        ),
    ];
    let mut items = vec![
        secret(
            "elasticsearch/catalogue_api/items/username",
            "3c3c3c3c-0000-4000-8000-000000000003",
            "c3",
        ),
        secret(
            "elasticsearch/catalogue_api/items/password",
            "1a1a1a1a-0000-4000-8000-000000000004",
            "d4",
        ),
    ];
    for s in &mut search {
        s.consumers = vec![
            ServiceRef::new(CLUSTER, "prod-search-api"),
            ServiceRef::new(CLUSTER, "stage-search-api"),
        ];
    }
    for s in &mut items {
        s.consumers = vec![
            ServiceRef::new(CLUSTER, "prod-items-api"),
            ServiceRef::new(CLUSTER, "stage-items-api"),
        ];
    }
    let mut secrets = items;
    secrets.extend(search);
    Snapshot {
        schema: SCHEMA.into(),
        taken_at: at("2021-07-27T14:30:00Z"),
        opsguard_version: "0.1.0".into(),
        fingerprint_key_id: KEY_ID.into(),
        elasticsearch: EsState {
            url: "https://catalogue.es.example:9243".into(),
            cluster_name: "catalogue".into(),
            cluster_uuid: "u-1".into(),
            version: "7.13.4".into(),
            health: ClusterHealth {
                status: "green".into(),
                number_of_nodes: 3,
                number_of_data_nodes: 3,
                active_shards_percent: 100.0,
            },
            users: [
                "search",
                "items",
                "diff_tool",
                "replication_manager",
                "internal_model_tool",
            ]
            .iter()
            .map(|u| user(u, &["catalogue_read"]))
            .collect(),
            api_keys: vec![],
        },
        secrets,
        services: vec![
            service(
                "prod-items-api",
                vec![
                    task("items01", "2021-07-27T14:00:01Z"),
                    task("items02", "2021-07-27T14:00:02Z"),
                    task("items03", "2021-07-27T14:00:03Z"),
                ],
            ),
            service(
                "prod-search-api",
                vec![
                    task("search01", "2021-07-27T14:00:01Z"),
                    task("search02", "2021-07-27T14:00:02Z"),
                    task("search03", "2021-07-27T14:00:03Z"),
                ],
            ),
            service(
                "stage-items-api",
                vec![task("stgitem1", "2021-07-27T14:00:04Z")],
            ),
            service(
                "stage-search-api",
                vec![task("stgsrch1", "2021-07-27T14:00:05Z")],
            ),
        ],
        task_definitions: vec![],
        credentials: vec![
            credential("items", &["prod-items-api", "stage-items-api"]),
            credential("search", &["prod-search-api", "stage-search-api"]),
        ],
        collection: Collection::default(),
    }
}

/// After the script: every consumed secret has a new AWSCURRENT version; the
/// passwords' values changed, the usernames' did not. ES accepts the new
/// passwords (so the snapshot's probes still authenticate); the running tasks
/// hold the old ones, which only the facts' before-value probe can show.
pub fn incident_after() -> Snapshot {
    let mut s = incident_before();
    s.taken_at = at("2021-07-27T14:38:00Z");
    let when = "2021-07-27T14:37:30Z";
    for (name, version, hex2) in [
        (
            "elasticsearch/catalogue_api/search/username",
            "8b8b8b8b-0000-4000-8000-000000000011",
            "a1",
        ),
        (
            "elasticsearch/catalogue_api/search/password",
            "6f6f6f6f-0000-4000-8000-000000000012",
            "e5",
        ),
        (
            "elasticsearch/catalogue_api/items/username",
            "4d4d4d4d-0000-4000-8000-000000000013",
            "c3",
        ),
        (
            "elasticsearch/catalogue_api/items/password",
            "2b2b2b2b-0000-4000-8000-000000000014",
            "f6",
        ),
    ] {
        rotate(secret_mut(&mut s, name), version, hex2, when);
    }
    s
}

pub fn secret_mut<'a>(s: &'a mut Snapshot, name: &str) -> &'a mut SecretState {
    s.secrets
        .iter_mut()
        .find(|x| x.name.as_str() == name)
        .unwrap_or_else(|| panic!("no secret {name}"))
}

pub fn service_mut<'a>(s: &'a mut Snapshot, name: &str) -> &'a mut ServiceState {
    s.services
        .iter_mut()
        .find(|x| x.service.service == name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

pub fn credential_mut<'a>(s: &'a mut Snapshot, id: &str) -> &'a mut CredentialState {
    s.credentials
        .iter_mut()
        .find(|x| x.id == id)
        .unwrap_or_else(|| panic!("no credential {id}"))
}
