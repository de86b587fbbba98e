//! Taking a snapshot: the order of the reads and their batching.
//!
//! ```text
//! ECS services + tasks (per cluster)  ┐
//! ES cluster info, health, all users  ┘ concurrently
//!   → task definitions, each described once
//!   → every secret they reference: resolved (by name first), described,
//!     versions listed, AWSCURRENT values fetched 20 at a time
//!   → credential graph (pure)
//!   → API keys the credentials name, and one probe per credential
//! ```
//!
//! Any failed read fails the whole snapshot: a safety check that quietly
//! works on a partial picture would report "no violation" for whatever it
//! could not see.

use super::fingerprint::FingerprintKey;
use super::graph::{self, Graph, Resolution, Vault};
use super::model::*;
use crate::config::{Config, CredentialKind};
use crate::model::value_from::{self, RefForm, SecretRef, ValueFrom};
use crate::model::SecretName;
use crate::providers::{
    Calls, EcsReader, EsReader, ProbeAuth, ProbeOutcome, ProviderError, SecretMeta, SecretsReader,
    TaskDefinition,
};
use futures::stream::{self, StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

const CONCURRENCY: usize = 8;

/// A snapshot and what it read into memory to make it.
pub struct Taken {
    pub snapshot: Snapshot,
    /// The credential values the probes used, by credential id. A `run`
    /// keeps the before-values to check whether they still authenticate after.
    pub auth: BTreeMap<String, ProbeAuth>,
}

/// The providers a snapshot reads through.
pub struct Sources<'a, E, S, X> {
    pub ecs: &'a E,
    pub secrets: &'a S,
    pub es: &'a X,
    pub calls: &'a Calls,
    /// The Elasticsearch URL as configured (for the record; no credentials).
    pub es_url: String,
}

pub async fn take<E: EcsReader, S: SecretsReader, X: EsReader>(
    config: &Config,
    src: Sources<'_, E, S, X>,
    key: &FingerprintKey,
) -> Result<Taken, ProviderError> {
    let started = Instant::now();
    let taken_at = time::OffsetDateTime::now_utc();

    // 1. ECS and Elasticsearch, independently.
    let ecs = async {
        let clusters = config.clusters();
        src.ecs.check_clusters(&clusters).await?;
        let per_cluster: Vec<Vec<ServiceState>> = stream::iter(clusters.iter())
            .map(|c| src.ecs.services(c))
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok::<_, ProviderError>(per_cluster.into_iter().flatten().collect::<Vec<_>>())
    };
    let es = async {
        let (info, health, users) =
            futures::try_join!(src.es.cluster_info(), src.es.health(), src.es.users())?;
        Ok::<_, ProviderError>((info, health, users))
    };
    let (services, es) = futures::join!(ecs, es);
    let mut services = services?;
    let (info, health, users) = es?;
    services.sort_by(|a, b| a.service.cmp(&b.service));

    // 2. Task definitions, each once.
    let td_arns: BTreeSet<String> = services
        .iter()
        .flat_map(|s| graph::task_definitions_of(s).into_iter().map(str::to_owned))
        .collect();
    let tds: Vec<TaskDefinition> = stream::iter(td_arns)
        .map(|arn| async move { src.ecs.task_definition(&arn).await })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let task_defs: BTreeMap<String, TaskDefinition> =
        tds.into_iter().map(|t| (t.arn.clone(), t)).collect();

    // 3. Secrets.
    let value_froms: BTreeSet<&str> = task_defs
        .values()
        .flat_map(|td| td.containers.iter())
        .flat_map(|c| c.secrets.iter().map(|(_, vf)| vf.as_str()))
        .collect();
    let (resolved, mut secrets, vault) = read_secrets(&value_froms, src.secrets, key).await?;

    // 4. The graph.
    let Graph {
        mut credentials,
        auth,
    } = graph::build(
        &config.credentials,
        &mut services,
        &task_defs,
        &resolved,
        &mut secrets,
        &vault,
        key,
    );
    drop(vault);

    // 5. API keys and probes.
    let key_ids: BTreeSet<String> = credentials
        .iter()
        .filter(|c| c.kind == CredentialKind::ElasticsearchApiKey)
        .filter_map(|c| c.principal.clone())
        .collect();
    let api_keys = async {
        stream::iter(key_ids)
            .map(|id| async move { src.es.api_key(&id).await })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await
    };
    let probes = async {
        stream::iter(auth.iter())
            .map(|(id, a)| async move { src.es.authenticate(a).await.map(|o| (id.clone(), o)) })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await
    };
    let (api_keys, probes) = futures::join!(api_keys, probes);
    let mut api_keys = api_keys?;
    api_keys.sort_by(|a, b| a.id.cmp(&b.id));
    let probes: HashMap<String, ProbeOutcome> = probes?.into_iter().collect();
    for c in &mut credentials {
        match probes.get(&c.id) {
            Some(ProbeOutcome::Authenticated { username }) => {
                c.probe = Probe {
                    result: ProbeResult::Authenticated,
                    authenticated_as: Some(username.clone()),
                    detail: None,
                }
            }
            Some(ProbeOutcome::Rejected { reason }) => {
                c.probe = Probe {
                    result: ProbeResult::Rejected,
                    authenticated_as: None,
                    detail: Some(reason.clone()),
                }
            }
            None => {} // unresolved; graph::build set the detail
        }
    }

    let snapshot = Snapshot {
        schema: SCHEMA.to_owned(),
        taken_at,
        opsguard_version: env!("CARGO_PKG_VERSION").to_owned(),
        fingerprint_key_id: key.id(),
        elasticsearch: EsState {
            url: src.es_url,
            cluster_name: info.cluster_name,
            cluster_uuid: info.cluster_uuid,
            version: info.version,
            health,
            users,
            api_keys,
        },
        secrets: secrets.into_values().collect(),
        services,
        task_definitions: task_defs
            .values()
            .map(|td| describe_td(td, &resolved))
            .collect(),
        credentials,
        collection: Collection {
            duration_ms: started.elapsed().as_millis() as u64,
            api_calls: src.calls.snapshot(),
        },
    };
    Ok(Taken { snapshot, auth })
}

type SecretsRead = (
    HashMap<String, Resolution>,
    BTreeMap<SecretName, SecretState>,
    Vault,
);

/// Resolve every `valueFrom`, describe each secret once, read its versions
/// and the values the credentials need.
async fn read_secrets<S: SecretsReader>(
    value_froms: &BTreeSet<&str>,
    sm: &S,
    key: &FingerprintKey,
) -> Result<SecretsRead, ProviderError> {
    let mut resolved: HashMap<String, Resolution> = HashMap::new();
    let mut refs: Vec<(String, SecretRef)> = Vec::new();
    for vf in value_froms {
        match value_from::parse(vf) {
            Ok(ValueFrom::Secret(r)) => refs.push(((*vf).to_owned(), r)),
            Ok(ValueFrom::SsmParameter { name }) => {
                resolved.insert((*vf).to_owned(), Resolution::SsmParameter { name });
            }
            Err(e) => {
                resolved.insert((*vf).to_owned(), Resolution::Problem(e.to_string()));
            }
        }
    }

    // Describe by name first: one cheap lookup per distinct name.
    let guesses: BTreeSet<String> = refs.iter().map(|(_, r)| sm.locate(r)).collect();
    let by_name: HashMap<String, Option<SecretMeta>> = stream::iter(guesses)
        .map(|n| async move { sm.describe(&n).await.map(|m| (n, m)) })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    // An ARN whose guessed name found a different secret (or none): ask by ARN.
    let arn_matches = |r: &SecretRef, m: &SecretMeta| {
        let arn = m.arn.as_str();
        arn == r.secret_id
            || arn
                .strip_prefix(r.secret_id.as_str())
                .is_some_and(|rest| rest.len() == 7 && rest.starts_with('-'))
    };
    let by_arn_needed: BTreeSet<String> = refs
        .iter()
        .filter(|(_, r)| r.form == RefForm::SecretsManagerArn)
        .filter(|(_, r)| !matches!(by_name.get(&sm.locate(r)), Some(Some(m)) if arn_matches(r, m)))
        .map(|(_, r)| r.secret_id.clone())
        .collect();
    let by_arn: HashMap<String, Option<SecretMeta>> = stream::iter(by_arn_needed)
        .map(|a| async move { sm.describe(&a).await.map(|m| (a, m)) })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;

    let mut metas: BTreeMap<SecretName, SecretMeta> = BTreeMap::new();
    let mut referenced_as: BTreeMap<SecretName, BTreeSet<String>> = BTreeMap::new();
    let mut missing: BTreeMap<SecretName, BTreeSet<String>> = BTreeMap::new();
    for (vf, r) in &refs {
        let meta = match r.form {
            RefForm::SecretsManagerArn => match by_name.get(&sm.locate(r)) {
                Some(Some(m)) if arn_matches(r, m) => Some(m.clone()),
                _ => by_arn.get(&r.secret_id).cloned().flatten(),
            },
            RefForm::SsmReference | RefForm::SsmReferenceArn => {
                by_name.get(&sm.locate(r)).cloned().flatten()
            }
        };
        let name = match &meta {
            Some(m) => {
                metas.insert(m.name.clone(), m.clone());
                referenced_as
                    .entry(m.name.clone())
                    .or_default()
                    .insert(vf.clone());
                m.name.clone()
            }
            None => {
                let n = SecretName::new(sm.locate(r));
                missing.entry(n.clone()).or_default().insert(vf.clone());
                n
            }
        };
        // Naming AWSCURRENT is the same as naming no stage: one origin, not two.
        let version_stage = r
            .version_stage
            .clone()
            .filter(|s| s != "AWSCURRENT" || r.version_id.is_some());
        resolved.insert(
            vf.clone(),
            Resolution::Secret {
                name,
                json_key: r.json_key.clone(),
                version_stage,
                version_id: r.version_id.clone(),
                pinned: r.is_pinned(),
            },
        );
    }

    // Versions of every existing secret; values of the live ones.
    let names: Vec<SecretName> = metas.keys().cloned().collect();
    let versions: HashMap<SecretName, Vec<SecretVersionState>> = stream::iter(names.clone())
        .map(|n| async move { sm.versions(&n).await.map(|v| (n, v)) })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let readable: Vec<SecretName> = names
        .iter()
        .filter(|n| metas[*n].deleted_date.is_none())
        .cloned()
        .collect();
    let mut vault = Vault::default();
    let mut current: HashMap<SecretName, String> = HashMap::new();
    for v in sm.current_values(&readable).await? {
        current.insert(v.name.clone(), v.version_id.clone());
        vault.insert(v.name, v.version_id, v.value);
    }
    // Pinned versions other than AWSCURRENT, read one by one.
    let mut pinned: BTreeSet<(SecretName, Option<String>, Option<String>)> = BTreeSet::new();
    for r in resolved.values() {
        if let Resolution::Secret {
            name,
            version_stage,
            version_id,
            pinned: true,
            ..
        } = r
        {
            if readable.contains(name) {
                pinned.insert((name.clone(), version_id.clone(), version_stage.clone()));
            }
        }
    }
    let pinned_values: Vec<_> = stream::iter(pinned)
        .map(|(n, id, stage)| async move { sm.value_at(&n, id.as_deref(), stage.as_deref()).await })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    for v in pinned_values.into_iter().flatten() {
        vault.insert(v.name, v.version_id, v.value);
    }

    let mut secrets: BTreeMap<SecretName, SecretState> = BTreeMap::new();
    for (name, m) in metas {
        let mut versions = versions.get(&name).cloned().unwrap_or_default();
        for v in &mut versions {
            v.fingerprint = vault.get(&name, &v.version_id).map(|s| key.fingerprint(s));
        }
        // The stage map of DescribeSecret is authoritative for AWSCURRENT.
        let current_version_id = current.get(&name).cloned().or_else(|| {
            m.version_stages
                .iter()
                .find(|(_, st)| st.iter().any(|s| s == "AWSCURRENT"))
                .map(|(v, _)| v.clone())
        });
        let current_fingerprint = current_version_id
            .as_ref()
            .and_then(|v| vault.get(&name, v))
            .map(|s| key.fingerprint(s));
        secrets.insert(
            name.clone(),
            SecretState {
                name: name.clone(),
                arn: Some(m.arn),
                exists: true,
                created_date: m.created_date,
                last_changed_date: m.last_changed_date,
                deleted_date: m.deleted_date,
                current_version_id,
                current_fingerprint,
                versions,
                referenced_as: referenced_as
                    .remove(&name)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                consumers: Vec::new(),
            },
        );
    }
    for (name, refs) in missing {
        secrets.entry(name.clone()).or_insert_with(|| SecretState {
            name,
            arn: None,
            exists: false,
            created_date: None,
            last_changed_date: None,
            deleted_date: None,
            current_version_id: None,
            current_fingerprint: None,
            versions: Vec::new(),
            referenced_as: refs.into_iter().collect(),
            consumers: Vec::new(),
        });
    }
    Ok((resolved, secrets, vault))
}

fn describe_td(td: &TaskDefinition, resolved: &HashMap<String, Resolution>) -> TaskDefinitionState {
    TaskDefinitionState {
        arn: td.arn.clone(),
        family: td.family.clone(),
        revision: td.revision,
        containers: td
            .containers
            .iter()
            .map(|c| ContainerState {
                name: c.name.clone(),
                secrets: c
                    .secrets
                    .iter()
                    .map(|(env, vf)| {
                        let mut s = SecretEnvState {
                            env: env.clone(),
                            value_from: vf.clone(),
                            secret: None,
                            json_key: None,
                            version_stage: None,
                            version_id: None,
                            pinned: false,
                            problem: None,
                        };
                        match resolved.get(vf) {
                            Some(Resolution::Secret {
                                name,
                                json_key,
                                version_stage,
                                version_id,
                                pinned,
                            }) => {
                                s.secret = Some(name.clone());
                                s.json_key = json_key.clone();
                                s.version_stage = version_stage.clone();
                                s.version_id = version_id.clone();
                                s.pinned = *pinned;
                            }
                            Some(Resolution::SsmParameter { name }) => {
                                s.problem = Some(format!(
                                    "plain SSM parameter {name:?}, not a Secrets Manager secret"
                                ))
                            }
                            Some(Resolution::Problem(p)) => s.problem = Some(p.clone()),
                            None => s.problem = Some("not resolved".into()),
                        }
                        s
                    })
                    .collect(),
                environment: c.environment.iter().map(|(n, _)| n.clone()).collect(),
            })
            .collect(),
    }
}
