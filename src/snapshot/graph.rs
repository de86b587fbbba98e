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

struct Group {
    spec: usize,
    /// (role, env name, origin, pinned)
    parts: Vec<(&'static str, String, Origin, bool)>,
    /// Plain environment values for parts that come from `environment`.
    plain: BTreeMap<String, String>,
    consumers: BTreeMap<ServiceRef, (BTreeSet<String>, BTreeSet<String>)>,
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
pub fn build(
    specs: &[CredentialSpec],
    services: &mut [ServiceState],
    task_defs: &BTreeMap<String, TaskDefinition>,
    resolved: &HashMap<String, Resolution>,
    secrets: &mut BTreeMap<SecretName, SecretState>,
    vault: &Vault,
    key: &FingerprintKey,
) -> Graph {
    // Secret → consuming services (every secret reference, credential or not).
    for s in services.iter() {
        for td in task_definitions_of(s) {
            let Some(td) = task_defs.get(td) else {
                continue;
            };
            for c in &td.containers {
                for (_, vf) in &c.secrets {
                    if let Some(Resolution::Secret { name, .. }) = resolved.get(vf) {
                        if let Some(st) = secrets.get_mut(name) {
                            if !st.consumers.contains(&s.service) {
                                st.consumers.push(s.service.clone());
                            }
                        }
                    }
                }
            }
        }
    }
    for st in secrets.values_mut() {
        st.consumers.sort();
    }

    // Group containers into credentials by the origin of their parts.
    let mut groups: BTreeMap<(usize, Vec<Origin>), Group> = BTreeMap::new();
    for s in services.iter() {
        for td_arn in task_definitions_of(s) {
            let Some(td) = task_defs.get(td_arn) else {
                continue;
            };
            for c in &td.containers {
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
                        let (origin, pinned) = if let Some((_, vf)) =
                            c.secrets.iter().find(|(n, _)| n == env)
                        {
                            match resolved.get(vf) {
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
                                Some(Resolution::SsmParameter { name }) => {
                                    (Origin::SsmParameter(name.clone()), false)
                                }
                                Some(Resolution::Problem(p)) => (Origin::Problem(p.clone()), false),
                                None => (
                                    Origin::Problem(format!("valueFrom {vf:?} was not resolved")),
                                    false,
                                ),
                            }
                        } else if let Some((_, v)) = c.environment.iter().find(|(n, _)| n == env) {
                            plain.insert(env.to_owned(), v.clone());
                            (
                                Origin::Environment {
                                    fingerprint: key.fingerprint_bytes(v.as_bytes()),
                                },
                                false,
                            )
                        } else {
                            (Origin::Missing, false)
                        };
                        parts.push((role, env.to_owned(), origin, pinned));
                    }
                    let id = (i, parts.iter().map(|p| p.2.clone()).collect::<Vec<_>>());
                    let g = groups.entry(id).or_insert_with(|| Group {
                        spec: i,
                        parts,
                        plain,
                        consumers: BTreeMap::new(),
                    });
                    let entry = g.consumers.entry(s.service.clone()).or_default();
                    entry.0.insert(c.name.clone());
                    entry.1.insert(td.arn.clone());
                }
            }
        }
    }

    // Assemble each credential's value and describe it.
    let mut creds: Vec<(CredentialState, Option<ProbeAuth>)> = Vec::new();
    for g in groups.into_values() {
        let spec = &specs[g.spec];
        let mut sources = Vec::new();
        let mut values: Vec<Result<SecretString, String>> = Vec::new();
        let mut secret_names = BTreeSet::new();
        for (role, env, origin, _) in &g.parts {
            let mut src = SourceState {
                role: (*role).to_owned(),
                env: env.clone(),
                from: String::new(),
                secret: None,
                json_key: None,
                version_stage: None,
                version_id: None,
                version_read: None,
                fingerprint: None,
            };
            let value = match origin {
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
                    secret_names.insert(name.clone());
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
                    if *role == "username" {
                        Ok(SecretString::from(
                            g.plain.get(env).cloned().unwrap_or_default(),
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
            sources.push(src);
            values.push(value);
        }

        let assembled = assemble(spec, values);
        let (principal, auth, problem) = match assembled {
            Ok((principal, auth)) => (Some(principal), Some(auth), None),
            Err((principal, p)) => (principal, None, Some(p)),
        };
        let pinned = g.parts.iter().any(|p| p.3);
        let origin = origin_key(spec.kind(), &g.parts);
        let consumers = g
            .consumers
            .into_iter()
            .map(|(service, (containers, tds))| {
                let running = services
                    .iter()
                    .find(|s| s.service == service)
                    .map(|s| {
                        s.tasks
                            .iter()
                            .filter(|t| {
                                t.last_status == "RUNNING" && tds.contains(&t.task_definition_arn)
                            })
                            .count() as u32
                    })
                    .unwrap_or(0);
                ConsumerState {
                    service,
                    containers: containers.into_iter().collect(),
                    task_definitions: tds.into_iter().collect(),
                    running_tasks: running,
                }
            })
            .collect();
        creds.push((
            CredentialState {
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
        ));
    }

    // Ids: the principal when unique; else qualified by where the secret part
    // comes from; else numbered. Ids must be unique: probes and waivers key on them.
    let mut by_base: BTreeMap<String, usize> = BTreeMap::new();
    for (c, _) in &creds {
        *by_base.entry(base_id(c)).or_default() += 1;
    }
    let mut ids: Vec<String> = creds
        .iter()
        .map(|(c, _)| {
            let base = base_id(c);
            if by_base[&base] > 1 {
                format!("{base}@{}", qualifier(c))
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
    for ((mut c, a), id) in creds.into_iter().zip(ids) {
        c.id = id;
        if let Some(a) = a {
            auth.insert(c.id.clone(), a);
        }
        credentials.push(c);
    }
    credentials.sort_by(|a, b| a.id.cmp(&b.id));

    for s in services.iter_mut() {
        s.consumes = credentials
            .iter()
            .filter(|c| c.consumers.iter().any(|k| k.service == s.service))
            .map(|c| c.id.clone())
            .collect();
    }
    Graph { credentials, auth }
}

/// A canonical text of where each part comes from: the identity that joins a
/// credential across two snapshots, whatever its id or principal became.
fn origin_key(kind: CredentialKind, parts: &[(&'static str, String, Origin, bool)]) -> String {
    let kind = match kind {
        CredentialKind::ElasticsearchBasic => "elasticsearch-basic",
        CredentialKind::ElasticsearchApiKey => "elasticsearch-api-key",
    };
    let parts: Vec<String> = parts
        .iter()
        .map(|(role, env, origin, _)| {
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
        })
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
