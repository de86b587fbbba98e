//! The credential graph: which services consume which credential, and which
//! secrets a credential is made of. Pure: it works on what the providers
//! returned and never calls out, so every case can be unit-tested.
//!
//! A credential is identified by *where its parts come from* — the resolved
//! secret (canonical name), JSON key and pinned version of each configured env
//! var — not by how a task definition spelled the reference. Two services
//! reading `/aws/reference/secretsmanager/NAME` and the secret's ARN share one
//! credential, as they share one password in the real world.

use super::fingerprint::FingerprintKey;
use super::model::{
    ConsumerState, CredentialState, Probe, ProbeResult, SecretState, ServiceState, SourceState,
};
use crate::config::{CredentialKind, CredentialSpec};
use crate::model::{SecretName, ServiceRef};
use crate::providers::{ProbeAuth, TaskDefinition};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a `valueFrom` resolved to.
#[derive(Clone, Debug)]
pub enum Resolution {
    Secret {
        name: SecretName,
        json_key: Option<String>,
        version_stage: Option<String>,
        version_id: Option<String>,
        pinned: bool,
    },
    /// A plain Parameter Store parameter.
    SsmParameter { name: String },
    /// Malformed, not found, or out of reach; the text says which.
    Problem(String),
}

/// Secret values read for this snapshot, by secret name and version id.
/// Memory only; dropped with the snapshot run.
#[derive(Default)]
pub struct Vault {
    values: HashMap<(SecretName, String), SecretString>,
}

impl Vault {
    pub fn insert(&mut self, name: SecretName, version_id: String, value: SecretString) {
        self.values.insert((name, version_id), value);
    }
    pub fn get(&self, name: &SecretName, version_id: &str) -> Option<&SecretString> {
        self.values.get(&(name.clone(), version_id.to_owned()))
    }
}

/// The graph as built, plus the assembled credential values to probe with.
pub struct Graph {
    pub credentials: Vec<CredentialState>,
    /// Credential id → the value to authenticate with (absent when unresolved).
    pub auth: BTreeMap<String, ProbeAuth>,
}

/// Task definitions whose containers a service's tasks run, or will run.
pub fn task_definitions_of(s: &ServiceState) -> BTreeSet<&str> {
    let mut tds: BTreeSet<&str> = BTreeSet::new();
    tds.insert(&s.task_definition);
    tds.extend(s.deployments.iter().map(|d| d.task_definition.as_str()));
    tds.extend(s.tasks.iter().map(|t| t.task_definition_arn.as_str()));
    tds.retain(|t| !t.is_empty());
    tds
}

/// Where one env var of a credential comes from, as an identity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Origin {
    Secret {
        name: SecretName,
        json_key: Option<String>,
        version_stage: Option<String>,
        version_id: Option<String>,
    },
    /// Plain text in the task definition; keyed by a fingerprint of the value.
    Environment {
        fingerprint: String,
    },
    SsmParameter(String),
    Problem(String),
    Missing,
}

/// One configured env var of a credential, as one container supplies it.
#[derive(Clone, Debug)]
struct Part {
    /// `username`, `password`, `credentials-json` or `api-key`.
    role: &'static str,
    env: String,
    origin: Origin,
    /// Reads a fixed version instead of following AWSCURRENT.
    pinned: bool,
}

/// Which services (and which of their containers and task definitions)
/// carry one credential.
#[derive(Default)]
struct Consumer {
    containers: BTreeSet<String>,
    task_definitions: BTreeSet<String>,
}

/// The containers that carry the same credential: the same `[[credentials]]`
/// entry, with every part coming from the same place.
struct Group {
    /// Index of the `[[credentials]]` entry.
    spec: usize,
    parts: Vec<Part>,
    /// Plain environment values for parts that come from `environment`.
    plain: BTreeMap<String, String>,
    consumers: BTreeMap<ServiceRef, Consumer>,
}

/// What makes two containers' credentials the same one.
type GroupKey = (usize, Vec<Origin>);

/// A credential described, before the ids of all credentials are settled.
struct Described {
    state: CredentialState,
    /// The value to probe with; `None` when it could not be assembled.
    auth: Option<ProbeAuth>,
}

fn roles(spec: &CredentialSpec) -> Vec<(&'static str, &str)> {
    match spec {
        CredentialSpec::Basic {
            username_env,
            password_env,
        } => vec![("username", username_env), ("password", password_env)],
        CredentialSpec::BasicJson { json_env, .. } => vec![("credentials-json", json_env)],
        CredentialSpec::ApiKey { api_key_env } => vec![("api-key", api_key_env)],
    }
}

/// Build the credential graph.
///
/// `secrets` must hold a state for every secret a resolution names (missing
/// ones with `exists: false`); it gains its `consumers`, and `services` gain
/// their `consumes`.
///
/// Four steps: link every secret to the services that reference it; group
/// containers into credentials by where their parts come from; describe each
/// credential (its sources, its value to probe with, its consumers); name
/// them.
pub fn build(
    specs: &[CredentialSpec],
    services: &mut [ServiceState],
    task_defs: &BTreeMap<String, TaskDefinition>,
    resolved: &HashMap<String, Resolution>,
    secrets: &mut BTreeMap<SecretName, SecretState>,
    vault: &Vault,
    key: &FingerprintKey,
) -> Graph {
    link_secret_consumers(services, task_defs, resolved, secrets);
    let groups = group_containers(specs, services, task_defs, resolved, key);
    let described: Vec<Described> = groups
        .into_values()
        .map(|g| describe(&specs[g.spec], g, services, secrets, vault, key))
        .collect();
    let graph = name(described);
    for s in services.iter_mut() {
        s.consumes = graph
            .credentials
            .iter()
            .filter(|c| c.consumers.iter().any(|k| k.service == s.service))
            .map(|c| c.id.clone())
            .collect();
    }
    graph
}

/// The containers of every task definition a service runs, or will run.
fn containers_of<'a>(
    s: &'a ServiceState,
    task_defs: &'a BTreeMap<String, TaskDefinition>,
) -> impl Iterator<Item = (&'a TaskDefinition, &'a crate::providers::Container)> + 'a {
    task_definitions_of(s)
        .into_iter()
        .filter_map(|arn| task_defs.get(arn))
        .flat_map(|td| td.containers.iter().map(move |c| (td, c)))
}

/// Secret → the services whose task definitions reference it (every secret
/// reference, part of a credential or not), sorted.
fn link_secret_consumers(
    services: &[ServiceState],
    task_defs: &BTreeMap<String, TaskDefinition>,
    resolved: &HashMap<String, Resolution>,
    secrets: &mut BTreeMap<SecretName, SecretState>,
) {
    for s in services {
        for (_, c) in containers_of(s, task_defs) {
            for (_, vf) in &c.secrets {
                let Some(Resolution::Secret { name, .. }) = resolved.get(vf) else {
                    continue;
                };
                if let Some(st) = secrets.get_mut(name) {
                    if !st.consumers.contains(&s.service) {
                        st.consumers.push(s.service.clone());
                    }
                }
            }
        }
    }
    for st in secrets.values_mut() {
        st.consumers.sort();
    }
}

/// Containers grouped into credentials by the origin of their parts: two
/// containers whose parts come from the same places hold the same credential,
/// however their task definitions spelt the references.
fn group_containers(
    specs: &[CredentialSpec],
    services: &[ServiceState],
    task_defs: &BTreeMap<String, TaskDefinition>,
    resolved: &HashMap<String, Resolution>,
    key: &FingerprintKey,
) -> BTreeMap<GroupKey, Group> {
    let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
    for s in services {
        for (td, c) in containers_of(s, task_defs) {
            for (i, spec) in specs.iter().enumerate() {
                let roles = roles(spec);
                let present = roles.iter().any(|(_, env)| {
                    c.secrets.iter().any(|(n, _)| n == env)
                        || c.environment.iter().any(|(n, _)| n == env)
                });
                if !present {
                    continue;
                }
                let mut parts = Vec::new();
                let mut plain = BTreeMap::new();
                for (role, env) in roles {
                    let (origin, pinned) = part_origin(c, env, resolved, key, &mut plain);
                    parts.push(Part {
                        role,
                        env: env.to_owned(),
                        origin,
                        pinned,
                    });
                }
                let id = (i, parts.iter().map(|p| p.origin.clone()).collect());
                let g = groups.entry(id).or_insert_with(|| Group {
                    spec: i,
                    parts,
                    plain,
                    consumers: BTreeMap::new(),
                });
                let consumer = g.consumers.entry(s.service.clone()).or_default();
                consumer.containers.insert(c.name.clone());
                consumer.task_definitions.insert(td.arn.clone());
            }
        }
    }
    groups
}

/// Where env var `env` of container `c` comes from, and whether it is
/// pinned. A plain environment value is kept in `plain` (a username may be
/// one) and identified by its fingerprint.
fn part_origin(
    c: &crate::providers::Container,
    env: &str,
    resolved: &HashMap<String, Resolution>,
    key: &FingerprintKey,
    plain: &mut BTreeMap<String, String>,
) -> (Origin, bool) {
    if let Some((_, vf)) = c.secrets.iter().find(|(n, _)| n == env) {
        return match resolved.get(vf) {
            Some(Resolution::Secret {
                name,
                json_key,
                version_stage,
                version_id,
                pinned,
            }) => (
                Origin::Secret {
                    name: name.clone(),
                    json_key: json_key.clone(),
                    version_stage: version_stage.clone(),
                    version_id: version_id.clone(),
                },
                *pinned,
            ),
            Some(Resolution::SsmParameter { name }) => (Origin::SsmParameter(name.clone()), false),
            Some(Resolution::Problem(p)) => (Origin::Problem(p.clone()), false),
            None => (
                Origin::Problem(format!("valueFrom {vf:?} was not resolved")),
                false,
            ),
        };
    }
    if let Some((_, v)) = c.environment.iter().find(|(n, _)| n == env) {
        plain.insert(env.to_owned(), v.clone());
        let fingerprint = key.fingerprint_bytes(v.as_bytes());
        return (Origin::Environment { fingerprint }, false);
    }
    (Origin::Missing, false)
}

/// One credential: where each part comes from (and, for the parts that can
/// be read, the value's fingerprint), its value assembled to probe with, and
/// its consumers with their running tasks. The probe itself is made later;
/// here it is `unresolved`, with the reason when the value could not be
/// assembled.
fn describe(
    spec: &CredentialSpec,
    g: Group,
    services: &[ServiceState],
    secrets: &BTreeMap<SecretName, SecretState>,
    vault: &Vault,
    key: &FingerprintKey,
) -> Described {
    let mut sources = Vec::new();
    let mut values: Vec<Result<SecretString, String>> = Vec::new();
    let mut secret_names = BTreeSet::new();
    for part in &g.parts {
        if let Origin::Secret { name, .. } = &part.origin {
            secret_names.insert(name.clone());
        }
        let (src, value) = read_part(part, &g.plain, secrets, vault, key);
        sources.push(src);
        values.push(value);
    }
    let (principal, auth, problem) = match assemble(spec, values) {
        Ok((principal, auth)) => (Some(principal), Some(auth), None),
        Err((principal, p)) => (principal, None, Some(p)),
    };
    let pinned = g.parts.iter().any(|p| p.pinned);
    let origin = origin_key(spec.kind(), &g.parts);
    let consumers = g
        .consumers
        .into_iter()
        .map(|(service, seen)| consumer_state(service, seen, services))
        .collect();
    Described {
        state: CredentialState {
            id: String::new(),
            origin,
            kind: spec.kind(),
            principal,
            sources,
            secrets: secret_names.into_iter().collect(),
            consumers,
            pinned,
            probe: Probe {
                result: ProbeResult::Unresolved,
                authenticated_as: None,
                detail: problem,
            },
        },
        auth,
    }
}

/// One part as a source of the snapshot, and its value (or why there is none).
fn read_part(
    part: &Part,
    plain: &BTreeMap<String, String>,
    secrets: &BTreeMap<SecretName, SecretState>,
    vault: &Vault,
    key: &FingerprintKey,
) -> (SourceState, Result<SecretString, String>) {
    let env = &part.env;
    let mut src = SourceState {
        role: part.role.to_owned(),
        env: env.clone(),
        from: String::new(),
        secret: None,
        json_key: None,
        version_stage: None,
        version_id: None,
        version_read: None,
        fingerprint: None,
    };
    let value = match &part.origin {
        Origin::Secret {
            name,
            json_key,
            version_stage,
            version_id,
        } => {
            src.from = "secret".into();
            src.secret = Some(name.clone());
            src.json_key = json_key.clone();
            src.version_stage = version_stage.clone();
            src.version_id = version_id.clone();
            read_secret(
                secrets.get(name),
                vault,
                json_key,
                version_stage,
                version_id,
            )
            .map(|(v, version)| {
                src.version_read = Some(version);
                v
            })
        }
        Origin::Environment { .. } => {
            src.from = "environment".into();
            if part.role == "username" {
                Ok(SecretString::from(
                    plain.get(env).cloned().unwrap_or_default(),
                ))
            } else {
                Err(format!(
                    "{env} is plain text in the task definition, not a secret; opsguard reads only secrets"
                ))
            }
        }
        Origin::SsmParameter(p) => {
            src.from = "ssm-parameter".into();
            Err(format!(
                "{env} comes from the SSM parameter {p:?}, not from Secrets Manager; opsguard cannot read it"
            ))
        }
        Origin::Problem(p) => {
            src.from = "secret".into();
            Err(format!("{env}: {p}"))
        }
        Origin::Missing => {
            src.from = "missing".into();
            Err(format!("{env} is not set by the container"))
        }
    };
    if let Ok(v) = &value {
        src.fingerprint = Some(key.fingerprint(v));
    }
    (src, value)
}

/// A consumer with the number of its running tasks that carry the credential.
fn consumer_state(service: ServiceRef, seen: Consumer, services: &[ServiceState]) -> ConsumerState {
    let running = services
        .iter()
        .find(|s| s.service == service)
        .map(|s| {
            s.tasks
                .iter()
                .filter(|t| {
                    t.last_status == "RUNNING"
                        && seen.task_definitions.contains(&t.task_definition_arn)
                })
                .count() as u32
        })
        .unwrap_or(0);
    ConsumerState {
        service,
        containers: seen.containers.into_iter().collect(),
        task_definitions: seen.task_definitions.into_iter().collect(),
        running_tasks: running,
    }
}

/// Ids: the principal when unique; else qualified by where the secret part
/// comes from; else numbered. Ids must be unique: probes and waivers key on
/// them. Returns the credentials sorted by id, with the values to probe.
fn name(described: Vec<Described>) -> Graph {
    let mut by_base: BTreeMap<String, usize> = BTreeMap::new();
    for d in &described {
        *by_base.entry(base_id(&d.state)).or_default() += 1;
    }
    let mut ids: Vec<String> = described
        .iter()
        .map(|d| {
            let base = base_id(&d.state);
            if by_base[&base] > 1 {
                format!("{base}@{}", qualifier(&d.state))
            } else {
                base
            }
        })
        .collect();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        *count.entry(id.clone()).or_default() += 1;
    }
    let mut nth: BTreeMap<String, usize> = BTreeMap::new();
    for id in ids.iter_mut() {
        if count[id.as_str()] > 1 {
            let n = nth.entry(id.clone()).or_default();
            *n += 1;
            *id = format!("{id}#{n}");
        }
    }
    let mut auth = BTreeMap::new();
    let mut credentials = Vec::new();
    for (d, id) in described.into_iter().zip(ids) {
        let mut c = d.state;
        c.id = id;
        if let Some(a) = d.auth {
            auth.insert(c.id.clone(), a);
        }
        credentials.push(c);
    }
    credentials.sort_by(|a, b| a.id.cmp(&b.id));
    Graph { credentials, auth }
}
/// A canonical text of where each part comes from: the identity that joins a
/// credential across two snapshots, whatever its id or principal became.
fn origin_key(kind: CredentialKind, parts: &[Part]) -> String {
    let kind = match kind {
        CredentialKind::ElasticsearchBasic => "elasticsearch-basic",
        CredentialKind::ElasticsearchApiKey => "elasticsearch-api-key",
    };
    let parts: Vec<String> = parts
        .iter()
        .map(
            |Part {
                 role, env, origin, ..
             }| {
                let from = match origin {
                    Origin::Secret {
                        name,
                        json_key,
                        version_stage,
                        version_id,
                    } => format!(
                        "secret:{name}:{}:{}:{}",
                        json_key.as_deref().unwrap_or(""),
                        version_stage.as_deref().unwrap_or(""),
                        version_id.as_deref().unwrap_or("")
                    ),
                    Origin::Environment { fingerprint } => format!("environment:{fingerprint}"),
                    Origin::SsmParameter(p) => format!("ssm-parameter:{p}"),
                    Origin::Problem(p) => format!("problem:{p}"),
                    Origin::Missing => "missing".to_owned(),
                };
                format!("{role}={env}<-{from}")
            },
        )
        .collect();
    format!("{kind}|{}", parts.join("|"))
}

/// Where the credential's secret part (the last source: password, key or
/// JSON) comes from: `secret[:json-key][@version-or-stage]`.
fn qualifier(c: &CredentialState) -> String {
    let Some(src) = c.sources.last() else {
        return "?".into();
    };
    let mut q = match &src.secret {
        Some(s) => s.to_string(),
        None => format!("{}:{}", src.from, src.env),
    };
    if let Some(k) = &src.json_key {
        q = format!("{q}:{k}");
    }
    if let Some(v) = src.version_id.as_ref().or(src.version_stage.as_ref()) {
        q = format!("{q}@{v}");
    }
    q
}

fn base_id(c: &CredentialState) -> String {
    // An API key's id changes every time the key is recreated; the secret
    // that holds it does not, and names the credential across a rotation.
    let principal = match c.kind {
        CredentialKind::ElasticsearchApiKey => None,
        CredentialKind::ElasticsearchBasic => c.principal.clone(),
    };
    principal
        .or_else(|| c.secrets.first().map(|s| s.to_string()))
        .or_else(|| c.sources.first().map(|s| s.env.clone()))
        .unwrap_or_else(|| "?".into())
}

/// The value a task would get for one secret-sourced variable.
fn read_secret(
    state: Option<&SecretState>,
    vault: &Vault,
    json_key: &Option<String>,
    version_stage: &Option<String>,
    version_id: &Option<String>,
) -> Result<(SecretString, String), String> {
    let Some(st) = state.filter(|s| s.exists) else {
        return Err("the secret does not exist".into());
    };
    if st.deleted_date.is_some() {
        return Err(format!("the secret {} is scheduled for deletion", st.name));
    }
    let version = match (version_id, version_stage) {
        (Some(v), _) => Some(v.clone()),
        (None, Some(stage)) => st
            .versions
            .iter()
            .find(|v| v.stages.iter().any(|s| s == stage))
            .map(|v| v.version_id.clone()),
        (None, None) => st.current_version_id.clone(),
    };
    let Some(version) = version else {
        return Err(format!("the secret {} has no version to read", st.name));
    };
    let Some(raw) = vault.get(&st.name, &version) else {
        return Err(format!(
            "the secret {} has no readable value at version {version}",
            st.name
        ));
    };
    match json_key {
        None => Ok((raw.clone(), version)),
        Some(k) => json_field(raw, k)
            .map(|v| (v, version))
            .map_err(|e| format!("the secret {}: {e}", st.name)),
    }
}

/// One field of a JSON secret. Errors never quote the value.
pub(crate) fn json_field(raw: &SecretString, key: &str) -> Result<SecretString, String> {
    let v: serde_json::Value = serde_json::from_str(raw.expose_secret())
        .map_err(|_| "the value is not JSON".to_owned())?;
    match v.get(key) {
        Some(serde_json::Value::String(s)) => Ok(SecretString::from(s.clone())),
        Some(serde_json::Value::Null) | None => Err(format!("the JSON value has no key {key:?}")),
        Some(other) => Ok(SecretString::from(other.to_string())),
    }
}

type Assembled = Result<(String, ProbeAuth), (Option<String>, String)>;

/// Turn a credential's part values into something to authenticate with.
fn assemble(spec: &CredentialSpec, mut values: Vec<Result<SecretString, String>>) -> Assembled {
    match spec {
        CredentialSpec::Basic { .. } => {
            let password = values.pop().expect("two parts");
            let username = values.pop().expect("two parts");
            let username = username.map(|u| u.expose_secret().to_owned());
            match (username, password) {
                (Ok(u), Ok(p)) => Ok((
                    u.clone(),
                    ProbeAuth::Basic {
                        username: u,
                        password: p,
                    },
                )),
                (Ok(u), Err(e)) => Err((Some(u), e)),
                (Err(e), _) => Err((None, e)),
            }
        }
        CredentialSpec::BasicJson {
            username_key,
            password_key,
            ..
        } => {
            let raw = values.pop().expect("one part").map_err(|e| (None, e))?;
            let u = json_field(&raw, username_key).map_err(|e| (None, e))?;
            let u = u.expose_secret().to_owned();
            let p = json_field(&raw, password_key).map_err(|e| (Some(u.clone()), e))?;
            Ok((
                u.clone(),
                ProbeAuth::Basic {
                    username: u,
                    password: p,
                },
            ))
        }
        CredentialSpec::ApiKey { .. } => {
            let raw = values.pop().expect("one part").map_err(|e| (None, e))?;
            let (id, encoded) = api_key_parts(&raw).ok_or((
                None,
                "the value is neither an encoded API key (base64 of id:key) nor id:key".to_owned(),
            ))?;
            Ok((id, ProbeAuth::ApiKey { encoded }))
        }
    }
}

/// `(id, base64(id:key))` from an encoded key or a raw `id:key`.
pub fn api_key_parts(raw: &SecretString) -> Option<(String, SecretString)> {
    let s = raw.expose_secret().trim();
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Ok(decoded) = b64.decode(s) {
        if let Ok(text) = String::from_utf8(decoded) {
            if let Some((id, key)) = text.split_once(':') {
                if !id.is_empty() && !key.is_empty() {
                    return Some((id.to_owned(), SecretString::from(s.to_owned())));
                }
            }
        }
    }
    let (id, key) = s.split_once(':')?;
    if id.is_empty() || key.is_empty() {
        return None;
    }
    Some((id.to_owned(), SecretString::from(b64.encode(s))))
}

#[cfg(test)]
mod tests;
