use super::*;
use crate::config::CredentialKind;
use crate::model::{SecretArn, SecretName, ServiceRef};
use crate::snapshot::model::*;
use time::macros::datetime;

const T0: Timestamp = datetime!(2021-07-27 13:00:00 UTC);
const T1: Timestamp = datetime!(2021-07-27 13:37:00 UTC);
const ORIGIN: &str =
    "elasticsearch-basic|username=es_username<-secret:u:::|password=es_password<-secret:p:::";

fn prefixes() -> Vec<String> {
    crate::config::DEFAULT_ENVIRONMENT_PREFIXES
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn task(arn: &str, started: Timestamp) -> TaskState {
    TaskState {
        arn: arn.into(),
        task_definition_arn: "td:1".into(),
        last_status: "RUNNING".into(),
        desired_status: "RUNNING".into(),
        health_status: Some("UNKNOWN".into()),
        started_at: Some(started),
        created_at: Some(started),
        started_by: None,
    }
}

fn service(name: &str, desired: i32, tasks: Vec<TaskState>) -> ServiceState {
    ServiceState {
        service: ServiceRef::new("c", name),
        arn: format!("arn:svc/{name}"),
        status: "ACTIVE".into(),
        desired_count: desired,
        running_count: tasks.len() as i32,
        pending_count: 0,
        task_definition: "td:1".into(),
        launch_type: None,
        deployments: vec![DeploymentState {
            id: "d1".into(),
            status: "PRIMARY".into(),
            task_definition: "td:1".into(),
            desired_count: desired,
            running_count: tasks.len() as i32,
            pending_count: 0,
            failed_tasks: 0,
            rollout_state: Some("COMPLETED".into()),
            rollout_state_reason: None,
            created_at: None,
            updated_at: None,
        }],
        tasks,
        consumes: vec!["search".into()],
    }
}

fn secret(name: &str, version: &str, fp: &str, created: Timestamp) -> SecretState {
    SecretState {
        name: SecretName::new(name),
        arn: Some(SecretArn::new(format!("arn:secret:{name}-AbCdEf"))),
        exists: true,
        created_date: Some(T0),
        last_changed_date: Some(created),
        deleted_date: None,
        current_version_id: Some(version.into()),
        current_fingerprint: Some(fp.into()),
        versions: vec![SecretVersionState {
            version_id: version.into(),
            stages: vec!["AWSCURRENT".into()],
            created_date: Some(created),
            fingerprint: Some(fp.into()),
        }],
        referenced_as: vec![],
        consumers: vec![
            ServiceRef::new("c", "prod-search-api"),
            ServiceRef::new("c", "stage-search-api"),
        ],
    }
}

fn source(role: &str, secret: &str, version: &str, fp: &str) -> SourceState {
    SourceState {
        role: role.into(),
        env: format!("es_{role}"),
        from: "secret".into(),
        secret: Some(SecretName::new(secret)),
        json_key: None,
        version_stage: None,
        version_id: None,
        version_read: Some(version.into()),
        fingerprint: Some(fp.into()),
    }
}

fn credential(
    pw_version: &str,
    pw_fp: &str,
    services: &[&ServiceState],
    probe: ProbeResult,
) -> CredentialState {
    CredentialState {
        id: "search".into(),
        origin: ORIGIN.into(),
        kind: CredentialKind::ElasticsearchBasic,
        principal: Some("search".into()),
        sources: vec![
            source("username", "u", "u1", "fp-u"),
            source("password", "p", pw_version, pw_fp),
        ],
        secrets: vec![SecretName::new("p"), SecretName::new("u")],
        consumers: services
            .iter()
            .map(|s| ConsumerState {
                service: s.service.clone(),
                containers: vec!["app".into()],
                task_definitions: vec!["td:1".into()],
                running_tasks: s.tasks.len() as u32,
            })
            .collect(),
        pinned: false,
        probe: Probe {
            result: probe,
            authenticated_as: None,
            detail: None,
        },
    }
}

fn user(name: &str, enabled: bool, roles: &[&str]) -> EsUser {
    EsUser {
        username: name.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        full_name: None,
        email: None,
        enabled,
        metadata: Default::default(),
        reserved: false,
    }
}

fn snapshot(
    at: Timestamp,
    users: Vec<EsUser>,
    secrets: Vec<SecretState>,
    services: Vec<ServiceState>,
    creds: Vec<CredentialState>,
) -> Snapshot {
    Snapshot {
        schema: crate::snapshot::model::SCHEMA.into(),
        taken_at: at,
        opsguard_version: "test".into(),
        fingerprint_key_id: "k1:test".into(),
        elasticsearch: EsState {
            url: "http://127.0.0.1:9200/".into(),
            cluster_name: "c".into(),
            cluster_uuid: "u".into(),
            version: "8.15.0".into(),
            health: ClusterHealth {
                status: "green".into(),
                number_of_nodes: 1,
                number_of_data_nodes: 1,
                active_shards_percent: 100.0,
            },
            users,
            api_keys: vec![],
        },
        secrets,
        services,
        task_definitions: vec![],
        credentials: creds,
        collection: Collection::default(),
    }
}

/// The replica before the script: search consumed by prod (2 tasks) and stage (1).
fn before() -> Snapshot {
    let prod = service("prod-search-api", 2, vec![task("t1", T0), task("t2", T0)]);
    let stage = service("stage-search-api", 1, vec![task("t3", T0)]);
    let cred = credential("p1", "fp-old", &[&prod, &stage], ProbeResult::Authenticated);
    snapshot(
        T0,
        vec![user("search", true, &["catalogue_read"])],
        vec![
            secret("u", "u1", "fp-u", T0),
            secret("p", "p1", "fp-old", T0),
        ],
        vec![prod, stage],
        vec![cred],
    )
}

fn after(
    pw_version: &str,
    pw_fp: &str,
    prod_tasks: Vec<TaskState>,
    probe: ProbeResult,
) -> Snapshot {
    let prod = service("prod-search-api", 2, prod_tasks);
    let stage = service("stage-search-api", 1, vec![task("t3", T0)]);
    let cred = credential(pw_version, pw_fp, &[&prod, &stage], probe);
    snapshot(
        T1,
        vec![user("search", true, &["catalogue_read"])],
        vec![
            secret("u", "u1", "fp-u", T0),
            secret("p", pw_version, pw_fp, T1),
        ],
        vec![prod, stage],
        vec![cred],
    )
}

fn run_facts(b: &Snapshot, a: &Snapshot, probes: &BeforeValueProbes) -> Facts {
    let p = prefixes();
    build(
        b,
        a,
        &Context {
            mode: "run",
            environment_prefixes: &p,
            before_value_probes: Some(probes),
        },
    )
}

#[test]
fn the_incident_is_a_changed_value_with_stale_consumers_and_a_broken_old_value() {
    let b = before();
    let a = after(
        "p2",
        "fp-new",
        vec![task("t1", T0), task("t2", T0)],
        ProbeResult::Authenticated,
    );
    let probes = BeforeValueProbes::from([(ORIGIN.to_owned(), "rejected".to_owned())]);
    let f = run_facts(&b, &a, &probes);
    let c = &f.credentials[0];
    assert_eq!(c.id, "search");
    assert!(c.live && c.existed && c.exists);
    assert_eq!(c.running_tasks_before, 3);
    assert!(c.value_changed);
    assert_eq!(c.value_changed_at, "2021-07-27T13:37:00Z");
    assert_eq!(c.versions_moved, ["p"]);
    assert_eq!(c.authenticated_before, "authenticated");
    assert_eq!(c.before_value_after, "rejected");
    assert_eq!(c.current_value_after, "authenticated");
    assert_eq!(
        c.stale_consumers,
        ["c/prod-search-api", "c/stage-search-api"]
    );
    assert_eq!(c.stale_tasks, 3);
    assert_eq!(c.environments, ["prod", "stage"]);
    assert_eq!(c.roles_lost, Vec::<String>::new());
    let s = f.secrets.iter().find(|s| s.id == "p").unwrap();
    assert!(s.value_changed && s.version_moved && s.live);
    assert_eq!(s.credentials, ["search"]);
}

#[test]
fn tasks_started_after_the_change_are_fresh_even_in_the_same_second() {
    let b = before();
    // A proper rotation: prod replaced within the same second as the new secret.
    let a = after(
        "p2",
        "fp-new",
        vec![task("t8", T1), task("t9", T1)],
        ProbeResult::Authenticated,
    );
    let probes = BeforeValueProbes::from([(ORIGIN.to_owned(), "rejected".to_owned())]);
    let f = run_facts(&b, &a, &probes);
    let c = &f.credentials[0];
    assert!(c.value_changed);
    // stage still runs t3 from before: it alone is stale.
    assert_eq!(c.stale_consumers, ["c/stage-search-api"]);
    assert_eq!(c.stale_tasks, 1);
    let prod = f
        .services
        .iter()
        .find(|s| s.name == "prod-search-api")
        .unwrap();
    assert_eq!(prod.tasks_from_before, 0);
}

#[test]
fn a_task_started_a_second_before_the_change_is_stale_even_if_unseen_before() {
    let b = before();
    let early = datetime!(2021-07-27 13:36:59 UTC);
    let a = after(
        "p2",
        "fp-new",
        vec![task("t8", early), task("t9", T1)],
        ProbeResult::Authenticated,
    );
    let f = run_facts(&b, &a, &BeforeValueProbes::new());
    assert_eq!(
        f.credentials[0].stale_consumers,
        ["c/prod-search-api", "c/stage-search-api"]
    );
    assert_eq!(f.credentials[0].stale_tasks, 2);
}

#[test]
fn a_new_version_with_the_same_value_is_no_change() {
    let b = before();
    let a = after(
        "p2",
        "fp-old",
        vec![task("t1", T0), task("t2", T0)],
        ProbeResult::Authenticated,
    );
    let f = run_facts(&b, &a, &BeforeValueProbes::new());
    let c = &f.credentials[0];
    assert!(!c.value_changed);
    assert_eq!(c.versions_moved, ["p"], "the version moved all the same");
    assert!(c.stale_consumers.is_empty());
    assert_eq!(
        c.before_value_after, "authenticated",
        "unchanged value: same probe"
    );
    assert!(
        !f.secrets
            .iter()
            .find(|s| s.id == "p")
            .unwrap()
            .value_changed
    );
}

#[test]
fn check_mode_facts_show_no_change() {
    let b = before();
    let p = prefixes();
    let f = build(
        &b,
        &b,
        &Context {
            mode: "check",
            environment_prefixes: &p,
            before_value_probes: None,
        },
    );
    assert_eq!(f.mode, "check");
    let c = &f.credentials[0];
    assert!(!c.value_changed && c.stale_consumers.is_empty());
    assert_eq!(c.removal, "");
    assert_eq!(c.before_value_after, "authenticated");
    assert_eq!(c.current_value_after, "authenticated");
    assert!(f
        .services
        .iter()
        .all(|s| s.healthy_before && s.healthy_after && s.desired_before == s.desired_after));
}

#[test]
fn a_deleted_or_disabled_user_and_lost_roles_show_in_the_facts() {
    let b = before();
    let mut a = after(
        "p1",
        "fp-old",
        vec![task("t1", T0), task("t2", T0)],
        ProbeResult::Rejected,
    );
    a.elasticsearch.users.clear();
    let f = run_facts(&b, &a, &BeforeValueProbes::new());
    let c = &f.credentials[0];
    assert!(c.principal_existed && !c.principal_exists);
    assert_eq!(c.roles_lost, ["catalogue_read"]);
    assert_eq!(c.removal, "user search was deleted");

    a.elasticsearch.users = vec![user("search", false, &[])];
    let f = run_facts(&b, &a, &BeforeValueProbes::new());
    let c = &f.credentials[0];
    assert!(c.principal_exists && c.enabled_before && !c.enabled_after);
    assert_eq!(c.current_value_after, "rejected");
    assert_eq!(c.removal, "user search was disabled");
}

#[test]
fn deleted_secrets_and_degraded_services() {
    let b = before();
    let mut a = after(
        "p1",
        "fp-old",
        vec![task("t1", T0)],
        ProbeResult::Authenticated,
    );
    a.secrets[1].deleted_date = Some(T1);
    let f = run_facts(&b, &a, &BeforeValueProbes::new());
    assert_eq!(f.credentials[0].secrets_removed, ["p"]);
    assert_eq!(
        f.credentials[0].removal,
        "secret p was deleted or scheduled for deletion"
    );
    let p = f.secrets.iter().find(|s| s.id == "p").unwrap();
    assert!(p.deletion_scheduled_after && !p.deletion_scheduled_before);
    let prod = f
        .services
        .iter()
        .find(|s| s.name == "prod-search-api")
        .unwrap();
    assert!(prod.healthy_before && !prod.healthy_after);
    assert_eq!(prod.degraded_reason, "1 of 2 desired tasks running");
    assert_eq!(prod.environment, "prod");
}

#[test]
fn desired_count_changes_are_facts() {
    let b = before();
    let mut a = after(
        "p1",
        "fp-old",
        vec![task("t1", T0), task("t2", T0)],
        ProbeResult::Authenticated,
    );
    a.services[1].desired_count = 3;
    a.services[1].running_count = 3;
    let f = run_facts(&b, &a, &BeforeValueProbes::new());
    let stage = f
        .services
        .iter()
        .find(|s| s.name == "stage-search-api")
        .unwrap();
    assert_eq!((stage.desired_before, stage.desired_after), (1, 3));
}

#[test]
fn different_fingerprint_keys_fall_back_to_versions() {
    let b = before();
    let mut a = after(
        "p1",
        "fp-other-key",
        vec![task("t1", T0), task("t2", T0)],
        ProbeResult::Authenticated,
    );
    a.fingerprint_key_id = "k1:other".into();
    let f = run_facts(&b, &a, &BeforeValueProbes::new());
    assert!(
        !f.credentials[0].value_changed,
        "same version read: no change"
    );
}
