use super::*;
use crate::config::CredentialKind;
use crate::providers::Container;
use crate::snapshot::model::{SecretVersionState, TaskState};

const ACCT: &str = "000000000000";

fn key() -> FingerprintKey {
    FingerprintKey::from_bytes(b"graph-test-key-graph-test-key")
}

fn service(name: &str, td: &str, running: usize) -> ServiceState {
    ServiceState {
        service: ServiceRef::new("c", name),
        arn: format!("arn:aws:ecs:eu-west-1:{ACCT}:service/c/{name}"),
        status: "ACTIVE".into(),
        desired_count: running as i32,
        running_count: running as i32,
        pending_count: 0,
        task_definition: td.into(),
        launch_type: None,
        deployments: vec![],
        tasks: (0..running)
            .map(|i| TaskState {
                arn: format!("arn:task/{name}/{i}"),
                task_definition_arn: td.into(),
                last_status: "RUNNING".into(),
                desired_status: "RUNNING".into(),
                health_status: None,
                started_at: None,
                created_at: None,
                started_by: None,
            })
            .collect(),
        consumes: vec![],
    }
}

fn td(arn: &str, secrets: &[(&str, &str)], env: &[(&str, &str)]) -> (String, TaskDefinition) {
    (
        arn.to_owned(),
        TaskDefinition {
            arn: arn.into(),
            family: arn.into(),
            revision: 1,
            containers: vec![Container {
                name: "app".into(),
                secrets: secrets
                    .iter()
                    .map(|(a, b)| ((*a).into(), (*b).into()))
                    .collect(),
                environment: env
                    .iter()
                    .map(|(a, b)| ((*a).into(), (*b).into()))
                    .collect(),
            }],
        },
    )
}

/// A world of secrets: name → [(version id, stages, value)].
struct World {
    secrets: BTreeMap<SecretName, SecretState>,
    vault: Vault,
    resolved: HashMap<String, Resolution>,
}

impl World {
    fn new() -> Self {
        World {
            secrets: BTreeMap::new(),
            vault: Vault::default(),
            resolved: HashMap::new(),
        }
    }

    fn secret(mut self, name: &str, versions: &[(&str, &[&str], &str)]) -> Self {
        let n = SecretName::new(name);
        let mut st = SecretState {
            name: n.clone(),
            arn: Some(crate::model::SecretArn::new(format!(
                "arn:aws:secretsmanager:eu-west-1:{ACCT}:secret:{name}-AbCdEf"
            ))),
            exists: true,
            created_date: None,
            last_changed_date: None,
            deleted_date: None,
            current_version_id: None,
            current_fingerprint: None,
            versions: vec![],
            referenced_as: vec![],
            consumers: vec![],
        };
        for (id, stages, value) in versions {
            if stages.contains(&"AWSCURRENT") {
                st.current_version_id = Some((*id).into());
            }
            st.versions.push(SecretVersionState {
                version_id: (*id).into(),
                stages: stages.iter().map(|s| (*s).into()).collect(),
                created_date: None,
                fingerprint: None,
            });
            self.vault
                .insert(n.clone(), (*id).into(), SecretString::from(*value));
        }
        self.secrets.insert(n, st);
        self
    }

    fn resolve(
        mut self,
        value_from: &str,
        name: &str,
        json_key: Option<&str>,
        version_id: Option<&str>,
    ) -> Self {
        self.resolved.insert(
            value_from.into(),
            Resolution::Secret {
                name: SecretName::new(name),
                json_key: json_key.map(Into::into),
                version_stage: None,
                version_id: version_id.map(Into::into),
                pinned: version_id.is_some(),
            },
        );
        self
    }
}

fn basic() -> Vec<CredentialSpec> {
    vec![CredentialSpec::Basic {
        username_env: "es_username".into(),
        password_env: "es_password".into(),
    }]
}

fn build_world(
    specs: &[CredentialSpec],
    services: &mut [ServiceState],
    tds: &[(String, TaskDefinition)],
    w: &mut World,
) -> Graph {
    let tds: BTreeMap<String, TaskDefinition> = tds.iter().cloned().collect();
    build(
        specs,
        services,
        &tds,
        &w.resolved,
        &mut w.secrets,
        &w.vault,
        &key(),
    )
}

fn password(g: &Graph, id: &str) -> String {
    match &g.auth[id] {
        ProbeAuth::Basic { password, .. } => password.expose_secret().to_owned(),
        ProbeAuth::ApiKey { encoded } => encoded.expose_secret().to_owned(),
    }
}

#[test]
fn the_incident_graph_joins_prod_and_stage_on_one_credential() {
    let ssm_u = "/aws/reference/secretsmanager/es/search/username";
    let ssm_p = "/aws/reference/secretsmanager/es/search/password";
    let arn_u = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:es/items/username-AbCdEf";
    let arn_p = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:es/items/password-AbCdEf";
    let mut w = World::new()
        .secret("es/search/username", &[("u1", &["AWSCURRENT"], "search")])
        .secret(
            "es/search/password",
            &[("p1", &["AWSCURRENT"], "search-pw-1")],
        )
        .secret("es/items/username", &[("u2", &["AWSCURRENT"], "items")])
        .secret(
            "es/items/password",
            &[("p2", &["AWSCURRENT"], "items-pw-1")],
        )
        .resolve(ssm_u, "es/search/username", None, None)
        .resolve(ssm_p, "es/search/password", None, None)
        .resolve(arn_u, "es/items/username", None, None)
        .resolve(arn_p, "es/items/password", None, None);
    let tds = [
        td(
            "td/search:1",
            &[("es_username", ssm_u), ("es_password", ssm_p)],
            &[("es_host", "h")],
        ),
        td(
            "td/items:1",
            &[("es_username", arn_u), ("es_password", arn_p)],
            &[],
        ),
    ];
    let mut services = vec![
        service("prod-search-api", "td/search:1", 3),
        service("stage-search-api", "td/search:1", 1),
        service("prod-items-api", "td/items:1", 3),
        service("stage-items-api", "td/items:1", 1),
    ];
    let g = build_world(&basic(), &mut services, &tds, &mut w);

    let ids: Vec<&str> = g.credentials.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["items", "search"]);
    let search = &g.credentials[1];
    assert_eq!(search.kind, CredentialKind::ElasticsearchBasic);
    assert_eq!(search.principal.as_deref(), Some("search"));
    let consumers: Vec<String> = search
        .consumers
        .iter()
        .map(|c| c.service.to_string())
        .collect();
    assert_eq!(consumers, ["c/prod-search-api", "c/stage-search-api"]);
    assert_eq!(search.consumers[0].running_tasks, 3);
    assert_eq!(search.consumers[1].running_tasks, 1);
    assert_eq!(
        search.secrets,
        [
            SecretName::new("es/search/password"),
            SecretName::new("es/search/username")
        ]
    );
    assert_eq!(search.sources[1].version_read.as_deref(), Some("p1"));
    assert_eq!(
        search.sources[1].fingerprint,
        Some(key().fingerprint(&SecretString::from("search-pw-1")))
    );
    assert_eq!(password(&g, "search"), "search-pw-1");
    assert_eq!(password(&g, "items"), "items-pw-1");
    assert_eq!(services[0].consumes, ["search"]);
    assert_eq!(
        w.secrets[&SecretName::new("es/items/password")].consumers,
        [
            ServiceRef::new("c", "prod-items-api"),
            ServiceRef::new("c", "stage-items-api")
        ]
    );
}

#[test]
fn different_spellings_of_one_secret_are_one_credential() {
    let a = "/aws/reference/secretsmanager/es/search/password";
    let b = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:es/search/password-AbCdEf";
    let mut w = World::new()
        .secret(
            "es/search/password",
            &[("p1", &["AWSCURRENT"], "pw-000001")],
        )
        .resolve(a, "es/search/password", None, None)
        .resolve(b, "es/search/password", None, None);
    let tds = [
        td("td/a", &[("es_password", a)], &[("es_username", "search")]),
        td("td/b", &[("es_password", b)], &[("es_username", "search")]),
    ];
    let mut services = vec![
        service("prod-search-api", "td/a", 2),
        service("stage-search-api", "td/b", 1),
    ];
    let g = build_world(&basic(), &mut services, &tds, &mut w);
    assert_eq!(g.credentials.len(), 1, "{:?}", g.credentials);
    assert_eq!(g.credentials[0].consumers.len(), 2);
    assert_eq!(g.credentials[0].sources[0].from, "environment");
    assert_eq!(g.credentials[0].principal.as_deref(), Some("search"));
}

#[test]
fn json_keys_pick_fields_of_one_secret() {
    let u = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:es/search-AbCdEf:username::";
    let p = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:es/search-AbCdEf:password::";
    let mut w = World::new()
        .secret(
            "es/search",
            &[(
                "v1",
                &["AWSCURRENT"],
                r#"{"username":"search","password":"json-pw-1"}"#,
            )],
        )
        .resolve(u, "es/search", Some("username"), None)
        .resolve(p, "es/search", Some("password"), None);
    let tds = [td("td/a", &[("es_username", u), ("es_password", p)], &[])];
    let mut services = vec![service("prod-search-api", "td/a", 1)];
    let g = build_world(&basic(), &mut services, &tds, &mut w);
    assert_eq!(g.credentials[0].id, "search");
    assert_eq!(password(&g, "search"), "json-pw-1");
    assert_eq!(g.credentials[0].secrets, [SecretName::new("es/search")]);
}

#[test]
fn a_json_credential_spec_reads_both_keys() {
    let specs = vec![CredentialSpec::BasicJson {
        json_env: "es_credentials".into(),
        username_key: "user".into(),
        password_key: "pass".into(),
    }];
    let vf = "/aws/reference/secretsmanager/es/creds";
    let mut w = World::new()
        .secret(
            "es/creds",
            &[(
                "v1",
                &["AWSCURRENT"],
                r#"{"user":"items","pass":"pw-json-2"}"#,
            )],
        )
        .resolve(vf, "es/creds", None, None);
    let tds = [td("td/a", &[("es_credentials", vf)], &[])];
    let mut services = vec![service("prod-items-api", "td/a", 1)];
    let g = build_world(&specs, &mut services, &tds, &mut w);
    assert_eq!(g.credentials[0].id, "items");
    assert_eq!(password(&g, "items"), "pw-json-2");

    // A missing key is unresolved, and the error does not quote the value.
    let mut w = World::new()
        .secret(
            "es/creds",
            &[(
                "v1",
                &["AWSCURRENT"],
                r#"{"user":"items","secret-ish":"pw-json-2"}"#,
            )],
        )
        .resolve(vf, "es/creds", None, None);
    let g = build_world(&specs, &mut services, &tds, &mut w);
    let c = &g.credentials[0];
    assert_eq!(c.probe.result, ProbeResult::Unresolved);
    let detail = c.probe.detail.clone().unwrap();
    assert!(detail.contains("no key \"pass\""), "{detail}");
    assert!(!detail.contains("pw-json-2"));
    assert!(g.auth.is_empty());
}

#[test]
fn api_keys_resolve_to_their_id_in_both_spellings() {
    let specs = vec![CredentialSpec::ApiKey {
        api_key_env: "es_apikey".into(),
    }];
    let b64 = base64::engine::general_purpose::STANDARD;
    let encoded = b64.encode("key-id-1:key-secret-1");
    for value in [encoded.clone(), "key-id-1:key-secret-1".to_owned()] {
        let vf = "/aws/reference/secretsmanager/es/apikey";
        let mut w = World::new()
            .secret("es/apikey", &[("v1", &["AWSCURRENT"], &value)])
            .resolve(vf, "es/apikey", None, None);
        let tds = [td("td/a", &[("es_apikey", vf)], &[])];
        let mut services = vec![service("prod-search-api", "td/a", 2)];
        let g = build_world(&specs, &mut services, &tds, &mut w);
        assert_eq!(
            g.credentials[0].id, "es/apikey",
            "named by its secret, stable across key rotation"
        );
        assert_eq!(g.credentials[0].principal.as_deref(), Some("key-id-1"));
        assert_eq!(g.credentials[0].kind, CredentialKind::ElasticsearchApiKey);
        assert_eq!(password(&g, "es/apikey"), encoded);
    }
    assert!(api_key_parts(&SecretString::from("no-colon-here")).is_none());
}

#[test]
fn missing_deleted_and_plain_text_parts_are_unresolved_with_reasons() {
    let ssm_u = "/aws/reference/secretsmanager/es/search/username";
    let ssm_p = "/aws/reference/secretsmanager/es/search/password";
    // Password secret missing entirely.
    let mut w = World::new()
        .secret("es/search/username", &[("u1", &["AWSCURRENT"], "search")])
        .resolve(ssm_u, "es/search/username", None, None)
        .resolve(ssm_p, "es/search/password", None, None);
    w.secrets.insert(
        SecretName::new("es/search/password"),
        SecretState {
            exists: false,
            arn: None,
            ..w.secrets[&SecretName::new("es/search/username")].clone()
        },
    );
    let tds = [td(
        "td/a",
        &[("es_username", ssm_u), ("es_password", ssm_p)],
        &[],
    )];
    let mut services = vec![service("prod-search-api", "td/a", 1)];
    let g = build_world(&basic(), &mut services, &tds, &mut w);
    let c = &g.credentials[0];
    assert_eq!(c.id, "search", "the username still names it");
    assert_eq!(c.probe.result, ProbeResult::Unresolved);
    assert!(c
        .probe
        .detail
        .as_deref()
        .unwrap()
        .contains("does not exist"));

    // Scheduled for deletion.
    let mut w = World::new()
        .secret("es/search/username", &[("u1", &["AWSCURRENT"], "search")])
        .secret(
            "es/search/password",
            &[("p1", &["AWSCURRENT"], "pw-000001")],
        )
        .resolve(ssm_u, "es/search/username", None, None)
        .resolve(ssm_p, "es/search/password", None, None);
    w.secrets
        .get_mut(&SecretName::new("es/search/password"))
        .unwrap()
        .deleted_date = Some(time::OffsetDateTime::UNIX_EPOCH);
    let g = build_world(&basic(), &mut services, &tds, &mut w);
    assert!(g.credentials[0]
        .probe
        .detail
        .as_deref()
        .unwrap()
        .contains("scheduled for deletion"));

    // Password as plain text in the task definition.
    let tds = [td(
        "td/a",
        &[],
        &[("es_username", "search"), ("es_password", "plain-pw-9")],
    )];
    let mut w = World::new();
    let g = build_world(&basic(), &mut services, &tds, &mut w);
    let d = g.credentials[0].probe.detail.clone().unwrap();
    assert!(d.contains("plain text"), "{d}");
    assert!(!d.contains("plain-pw-9"));
}

#[test]
fn a_pinned_version_is_read_and_flagged() {
    let vf = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:es/search/password-AbCdEf:::old";
    let mut w = World::new()
        .secret(
            "es/search/password",
            &[
                ("old", &["AWSPREVIOUS"], "old-pw-1"),
                ("new", &["AWSCURRENT"], "new-pw-1"),
            ],
        )
        .resolve(vf, "es/search/password", None, Some("old"));
    let tds = [td(
        "td/a",
        &[("es_password", vf)],
        &[("es_username", "search")],
    )];
    let mut services = vec![service("prod-search-api", "td/a", 1)];
    let g = build_world(&basic(), &mut services, &tds, &mut w);
    assert!(g.credentials[0].pinned);
    assert_eq!(
        g.credentials[0].sources[1].version_read.as_deref(),
        Some("old")
    );
    assert_eq!(password(&g, "search"), "old-pw-1");
}

#[test]
fn two_credentials_for_one_user_get_distinct_ids() {
    let a = "/aws/reference/secretsmanager/prod/search/password";
    let b = "/aws/reference/secretsmanager/stage/search/password";
    let mut w = World::new()
        .secret(
            "prod/search/password",
            &[("p1", &["AWSCURRENT"], "pw-prod-1")],
        )
        .secret(
            "stage/search/password",
            &[("p2", &["AWSCURRENT"], "pw-stage-1")],
        )
        .resolve(a, "prod/search/password", None, None)
        .resolve(b, "stage/search/password", None, None);
    let tds = [
        td("td/a", &[("es_password", a)], &[("es_username", "search")]),
        td("td/b", &[("es_password", b)], &[("es_username", "search")]),
    ];
    let mut services = vec![
        service("prod-search-api", "td/a", 1),
        service("stage-search-api", "td/b", 1),
    ];
    let g = build_world(&basic(), &mut services, &tds, &mut w);
    let ids: Vec<&str> = g.credentials.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "search@prod/search/password",
            "search@stage/search/password"
        ]
    );
}

#[test]
fn running_tasks_count_only_tasks_whose_definition_carries_the_credential() {
    let vf = "/aws/reference/secretsmanager/es/search/password";
    let mut w = World::new()
        .secret(
            "es/search/password",
            &[("p1", &["AWSCURRENT"], "pw-000001")],
        )
        .resolve(vf, "es/search/password", None, None);
    // Mid-rollout: the new definition carries the credential, the old does not.
    let tds = [
        td(
            "td/new",
            &[("es_password", vf)],
            &[("es_username", "search")],
        ),
        td("td/old", &[], &[("es_host", "x")]),
    ];
    let mut s = service("prod-search-api", "td/new", 1);
    let mut old = s.tasks[0].clone();
    old.arn = "arn:task/old".into();
    old.task_definition_arn = "td/old".into();
    s.tasks.push(old);
    let mut services = vec![s];
    let g = build_world(&basic(), &mut services, &tds, &mut w);
    assert_eq!(g.credentials[0].consumers[0].running_tasks, 1);
    assert_eq!(g.credentials[0].consumers[0].task_definitions, ["td/new"]);
}

#[test]
fn a_pinned_and_a_following_credential_of_one_user_keep_distinct_ids() {
    let u = "/aws/reference/secretsmanager/es/items/username";
    let follow = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:es/items/password-AbCdEf";
    let pin = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:es/items/password-AbCdEf:::v1";
    let mut w = World::new()
        .secret("es/items/username", &[("u1", &["AWSCURRENT"], "items")])
        .secret(
            "es/items/password",
            &[
                ("v1", &["AWSPREVIOUS"], "old-pw-1"),
                ("v2", &["AWSCURRENT"], "new-pw-1"),
            ],
        )
        .resolve(u, "es/items/username", None, None)
        .resolve(follow, "es/items/password", None, None)
        .resolve(pin, "es/items/password", None, Some("v1"));
    let tds = [
        td("td/a", &[("es_username", u), ("es_password", follow)], &[]),
        td("td/b", &[("es_username", u), ("es_password", pin)], &[]),
    ];
    let mut services = vec![
        service("prod-items-api", "td/a", 1),
        service("prod-items-api-pinned", "td/b", 1),
    ];
    let g = build_world(&basic(), &mut services, &tds, &mut w);
    let ids: Vec<&str> = g.credentials.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        ["items@es/items/password", "items@es/items/password@v1"]
    );
    assert_eq!(password(&g, "items@es/items/password"), "new-pw-1");
    assert_eq!(password(&g, "items@es/items/password@v1"), "old-pw-1");
}
