//! Taking a snapshot: the order of the reads and their batching.
//!
//! ```text
//! ECS clusters, services + tasks (per cluster)  ┐
//! ES cluster info, health, all users            │ concurrently
//! ListSecrets pages (100 secrets a page)        ┘ (stops once every
//!   → task definitions, each described once        referenced secret
//!                                                  was seen)
//!   → every secret they reference, resolved against the listing
//!   → AWSCURRENT values, 20 a call (BatchGetSecretValue: value, version
//!     id, stages, created date)
//!   → the full version history only of secrets whose AWSCURRENT moved
//!     since the run's before snapshot (a rollback needs the old version)
//!   → credential graph (pure)
//!   → API keys the credentials name, and one probe per credential
//! ```
//!
//! Why this shape: over a real network every call costs tens of
//! milliseconds, so the number of calls and the length of the chain of calls
//! that wait on each other are the snapshot's cost. One ListSecrets page
//! carries names, ARNs, stage maps, created and deletion dates of 100 secrets,
//! where DescribeSecret carries one; BatchGetSecretValue carries 20 values
//! with their version ids and created dates. What does not wait on another
//! answer is sent at once, bounded by `[aws] max_concurrency` and
//! `[elasticsearch] max_concurrency`.
//!
//! ListSecrets is eventually consistent on AWS, so the listing is checked
//! against the values: a secret the listing missed, whose AWSCURRENT is not
//! where the listing says, or that the batch could no longer read is asked
//! about with DescribeSecret, which is authoritative.
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
    arn_without_suffix, Calls, EcsReader, EsReader, ProbeAuth, ProbeOutcome, ProviderError,
    SecretMeta, SecretsReader, TaskDefinition, Wanted,
};
use futures::stream::{self, StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;
use std::time::Instant;

/// Reads handed to the AWS providers at once: their gate (`[aws]
/// max_concurrency`) decides how many are in flight.
const ALL_AT_ONCE: usize = usize::MAX;

/// The AWSCURRENT version of each secret in an earlier snapshot of the same
/// run (`None`: the secret did not exist or had no current version).
pub type Baseline = BTreeMap<SecretName, Option<String>>;

/// What a snapshot's AWSCURRENT versions were, to compare a later one with.
pub fn baseline(s: &Snapshot) -> Baseline {
    s.secrets
        .iter()
        .map(|x| (x.name.clone(), x.current_version_id.clone()))
        .collect()
}

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
    /// The run's before snapshot, as far as AWSCURRENT goes: a secret whose
    /// AWSCURRENT moved since gets its full version history read.
    pub since: Option<&'a Baseline>,
}

pub async fn take<E: EcsReader, S: SecretsReader, X: EsReader>(
    config: &Config,
    src: Sources<'_, E, S, X>,
    key: &FingerprintKey,
) -> Result<Taken, ProviderError> {
    let started = Instant::now();
    let taken_at = time::OffsetDateTime::now_utc();

    // 1. ECS, Elasticsearch and the secrets listing, independently; the
    // task definitions as soon as the services are known, and with them what
    // the listing is looking for.
    let es_conc = config.elasticsearch.max_concurrency;
    // What each wait is for, on a terminal (hidden otherwise).
    let progress = src.calls.progress();
    let wanted: OnceLock<Wanted> = OnceLock::new();
    let wanted_now = || wanted.get().cloned();
    let listing = src.secrets.list(&wanted_now);
    let ecs = async {
        let clusters = config.clusters();
        let step = progress.count(
            format!("ECS services and tasks of {} cluster(s)", clusters.len()),
            clusters.len() as u64,
        );
        let check = src.ecs.check_clusters(&clusters);
        let per_cluster = stream::iter(clusters.iter())
            .map(|c| async {
                let r = src.ecs.services(c).await;
                step.inc();
                r
            })
            .buffer_unordered(ALL_AT_ONCE)
            .try_collect::<Vec<Vec<ServiceState>>>();
        // A missing cluster is better said by the check than by ListServices.
        let (checked, per_cluster) = futures::join!(check, per_cluster);
        drop(step);
        checked?;
        let mut services: Vec<ServiceState> = per_cluster?.into_iter().flatten().collect();
        services.sort_by(|a, b| a.service.cmp(&b.service));

        // 2. Task definitions, each once.
        let td_arns: BTreeSet<String> = services
            .iter()
            .flat_map(|s| graph::task_definitions_of(s).into_iter().map(str::to_owned))
            .collect();
        let step = progress.count("describing task definitions", td_arns.len() as u64);
        let tds: Vec<TaskDefinition> = stream::iter(td_arns)
            .map(|arn| {
                let step = &step;
                async move {
                    let r = src.ecs.task_definition(&arn).await;
                    step.inc();
                    r
                }
            })
            .buffer_unordered(ALL_AT_ONCE)
            .try_collect()
            .await?;
        drop(step);
        let task_defs: BTreeMap<String, TaskDefinition> =
            tds.into_iter().map(|t| (t.arn.clone(), t)).collect();
        let refs = parse_refs(&task_defs, src.secrets);
        let _ = wanted.set(refs.wanted(src.secrets));
        Ok::<_, ProviderError>((services, task_defs, refs))
    };
    let es = async {
        let _step = progress.step("Elasticsearch cluster, health and users");
        let (info, health, users) =
            futures::try_join!(src.es.cluster_info(), src.es.health(), src.es.users())?;
        Ok::<_, ProviderError>((info, health, users))
    };
    let (listed, (mut services, task_defs, refs), (info, health, users)) =
        futures::try_join!(listing, ecs, es)?;

    // 3. Secrets.
    let (resolved, mut secrets, vault) =
        read_secrets(refs, listed, src.secrets, src.since, key, &progress).await?;

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
        let _step = (!key_ids.is_empty())
            .then(|| progress.step(format!("reading {} API key(s)", key_ids.len())));
        stream::iter(key_ids)
            .map(|id| async move { src.es.api_key(&id).await })
            .buffer_unordered(es_conc)
            .try_collect::<Vec<_>>()
            .await
    };
    let probes = async {
        let step = progress.count(
            format!("probing {} credential(s)", auth.len()),
            auth.len() as u64,
        );
        let step = &step;
        stream::iter(auth.iter())
            .map(|(id, a)| async move {
                let r = src.es.authenticate(a).await.map(|o| (id.clone(), o));
                step.inc();
                r
            })
            .buffer_unordered(es_conc)
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
            throttled: src.calls.throttles(),
        },
    };
    if !snapshot.collection.throttled.is_empty() {
        let what: Vec<String> = snapshot
            .collection
            .throttled
            .iter()
            .map(|(service, n)| format!("{service} {n}×"))
            .collect();
        tracing::warn!(
            "the snapshot was throttled ({}) and retried with backoff; if this keeps \
             happening, lower [aws] max_concurrency or [elasticsearch] max_concurrency",
            what.join(", ")
        );
    }
    Ok(Taken { snapshot, auth })
}

type SecretsRead = (
    HashMap<String, Resolution>,
    BTreeMap<SecretName, SecretState>,
    Vault,
);

/// The `valueFrom`s of the task definitions, parsed.
struct Refs {
    /// Secrets Manager references, by their `valueFrom`.
    secrets: Vec<(String, SecretRef)>,
    /// What did not name a Secrets Manager secret, already resolved.
    other: HashMap<String, Resolution>,
}

impl Refs {
    /// What the listing looks for: names (Parameter Store style references)
    /// and ARNs.
    fn wanted<S: SecretsReader>(&self, sm: &S) -> Wanted {
        let mut w = Wanted::default();
        for (_, r) in &self.secrets {
            match r.form {
                RefForm::SecretsManagerArn => w.arns.insert(r.secret_id.clone()),
                RefForm::SsmReference | RefForm::SsmReferenceArn => w.names.insert(sm.locate(r)),
            };
        }
        w
    }
}

fn parse_refs<S: SecretsReader>(task_defs: &BTreeMap<String, TaskDefinition>, _sm: &S) -> Refs {
    let value_froms: BTreeSet<&str> = task_defs
        .values()
        .flat_map(|td| td.containers.iter())
        .flat_map(|c| c.secrets.iter().map(|(_, vf)| vf.as_str()))
        .collect();
    let mut refs = Refs {
        secrets: Vec::new(),
        other: HashMap::new(),
    };
    for vf in value_froms {
        match value_from::parse(vf) {
            Ok(ValueFrom::Secret(r)) => refs.secrets.push((vf.to_owned(), r)),
            Ok(ValueFrom::SsmParameter { name }) => {
                refs.other
                    .insert(vf.to_owned(), Resolution::SsmParameter { name });
            }
            Err(e) => {
                refs.other
                    .insert(vf.to_owned(), Resolution::Problem(e.to_string()));
            }
        }
    }
    refs
}

/// The listing, indexed the ways references name a secret.
struct Index<'a> {
    by_name: HashMap<&'a str, &'a SecretMeta>,
    /// Full ARNs, and ARNs without the random suffix (partial ARNs).
    by_arn: HashMap<&'a str, &'a SecretMeta>,
}

impl<'a> Index<'a> {
    fn new(listed: &'a [SecretMeta]) -> Self {
        let mut by_arn = HashMap::with_capacity(listed.len() * 2);
        for m in listed {
            by_arn.insert(arn_without_suffix(m.arn.as_str()), m);
        }
        // A full ARN wins over a suffix-less one that happens to be equal.
        for m in listed {
            by_arn.insert(m.arn.as_str(), m);
        }
        Index {
            by_name: listed.iter().map(|m| (m.name.as_str(), m)).collect(),
            by_arn,
        }
    }

    fn find<S: SecretsReader>(&self, r: &SecretRef, sm: &S) -> Option<&'a SecretMeta> {
        match r.form {
            RefForm::SecretsManagerArn => self.by_arn.get(r.secret_id.as_str()).copied(),
            RefForm::SsmReference | RefForm::SsmReferenceArn => {
                self.by_name.get(sm.locate(r).as_str()).copied()
            }
        }
    }
}

/// The id to ask DescribeSecret about a reference the listing did not show.
fn describe_id<S: SecretsReader>(r: &SecretRef, sm: &S) -> String {
    match r.form {
        RefForm::SecretsManagerArn => r.secret_id.clone(),
        RefForm::SsmReference | RefForm::SsmReferenceArn => sm.locate(r),
    }
}

/// DescribeSecret for each id at once.
async fn describe_all<S: SecretsReader>(
    sm: &S,
    ids: impl IntoIterator<Item = String>,
) -> Result<HashMap<String, Option<SecretMeta>>, ProviderError> {
    stream::iter(ids)
        .map(|id| async move { sm.describe(&id).await.map(|m| (id, m)) })
        .buffer_unordered(ALL_AT_ONCE)
        .try_collect()
        .await
}

/// Resolve every reference against the listing, read the values the
/// credentials need, and the version history where a rollback may need it.
async fn read_secrets<S: SecretsReader>(
    refs: Refs,
    listed: Vec<SecretMeta>,
    sm: &S,
    since: Option<&Baseline>,
    key: &FingerprintKey,
    progress: &crate::progress::Progress,
) -> Result<SecretsRead, ProviderError> {
    let Refs {
        secrets: refs,
        other,
    } = refs;
    let mut resolved = other;

    // Resolve against the listing; what it did not show (created a moment
    // ago, or never), ask about directly.
    let index = Index::new(&listed);
    let unlisted: BTreeSet<String> = refs
        .iter()
        .filter(|(_, r)| index.find(r, sm).is_none())
        .map(|(_, r)| describe_id(r, sm))
        .collect();
    let described = {
        let _step = (!unlisted.is_empty())
            .then(|| progress.step(format!("describing {} unlisted secret(s)", unlisted.len())));
        describe_all(sm, unlisted).await?
    };
    let mut metas: BTreeMap<SecretName, SecretMeta> = BTreeMap::new();
    let mut referenced_as: BTreeMap<SecretName, BTreeSet<String>> = BTreeMap::new();
    let mut missing: BTreeMap<SecretName, BTreeSet<String>> = BTreeMap::new();
    for (vf, r) in &refs {
        let meta = index
            .find(r, sm)
            .or_else(|| described.get(&describe_id(r, sm)).and_then(Option::as_ref));
        let name = match meta {
            Some(m) => {
                metas.entry(m.name.clone()).or_insert_with(|| m.clone());
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
    drop(index);
    drop(listed);

    // AWSCURRENT values, 20 a call, with their version ids and dates.
    let readable: Vec<SecretName> = metas
        .iter()
        .filter(|(_, m)| m.deleted_date.is_none())
        .map(|(n, _)| n.clone())
        .collect();
    let got = {
        let _step = progress.step(format!("reading {} secret value(s)", readable.len()));
        sm.current_values(&readable).await?
    };
    let mut vault = Vault::default();
    let mut current: HashMap<SecretName, (String, Option<Timestamp>)> = HashMap::new();
    for v in got.values {
        current.insert(v.name.clone(), (v.version_id.clone(), v.created_date));
        vault.insert(v.name, v.version_id, v.value);
    }
    // The listing may lag: a secret whose AWSCURRENT is elsewhere than it
    // says, or that the batch could not read (deleted, scheduled for
    // deletion) is described again.
    let stale: BTreeSet<String> = metas
        .iter()
        .filter(|(n, m)| {
            current
                .get(*n)
                .is_some_and(|(v, _)| current_in(m) != Some(v.as_str()))
        })
        .map(|(n, _)| n.as_str().to_owned())
        .chain(got.unreadable.iter().map(|n| n.as_str().to_owned()))
        .collect();
    for (id, fresh) in describe_all(sm, stale).await? {
        let name = SecretName::new(id);
        match fresh {
            Some(m) => {
                metas.insert(name, m);
            }
            None => {
                metas.remove(&name);
                current.remove(&name);
                let refs = referenced_as.remove(&name).unwrap_or_default();
                missing.entry(name).or_default().extend(refs);
            }
        }
    }

    // Pinned versions other than AWSCURRENT, one by one.
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
            if metas.get(name).is_some_and(|m| m.deleted_date.is_none()) {
                pinned.insert((name.clone(), version_id.clone(), version_stage.clone()));
            }
        }
    }
    let pinned_values: Vec<_> = stream::iter(pinned)
        .map(|(n, id, stage)| async move { sm.value_at(&n, id.as_deref(), stage.as_deref()).await })
        .buffer_unordered(ALL_AT_ONCE)
        .try_collect()
        .await?;
    // Versions read by id or stage: (secret, version) → (created, stages).
    let mut read: HashMap<(SecretName, String), (Option<Timestamp>, Vec<String>)> = HashMap::new();
    for v in pinned_values.into_iter().flatten() {
        read.insert(
            (v.name.clone(), v.version_id.clone()),
            (v.created_date, v.stages),
        );
        vault.insert(v.name, v.version_id, v.value);
    }

    // The full history only where AWSCURRENT moved since the before snapshot:
    // a rollback moves it back to a version that may have lost every stage.
    let moved: Vec<SecretName> = match since {
        None => Vec::new(),
        Some(before) => metas
            .iter()
            .filter(|(n, m)| {
                let now = current.get(*n).map(|(v, _)| v.as_str()).or(current_in(m));
                matches!(before.get(*n), Some(Some(b)) if Some(b.as_str()) != now)
            })
            .map(|(n, _)| n.clone())
            .collect(),
    };
    let _step = (!moved.is_empty())
        .then(|| progress.step(format!("version history of {} secret(s)", moved.len())));
    let history: HashMap<SecretName, Vec<SecretVersionState>> = stream::iter(moved)
        .map(|n| async move { sm.versions(&n).await.map(|v| (n, v)) })
        .buffer_unordered(ALL_AT_ONCE)
        .try_collect()
        .await?;

    let mut secrets: BTreeMap<SecretName, SecretState> = BTreeMap::new();
    for (name, m) in metas {
        // The batch's answer is authoritative for AWSCURRENT.
        let (current_version_id, current_created) = match current.get(&name) {
            Some((v, c)) => (Some(v.clone()), *c),
            None => (current_in(&m).map(str::to_owned), None),
        };
        let mut versions = match history.get(&name) {
            Some(h) => h.clone(),
            None => versions_from_stages(&m, current_version_id.as_deref(), current_created),
        };
        for ((n, vid), (created, stages)) in &read {
            if n != &name {
                continue;
            }
            match versions.iter_mut().find(|v| &v.version_id == vid) {
                Some(v) => v.created_date = v.created_date.or(*created),
                None => versions.push(SecretVersionState {
                    version_id: vid.clone(),
                    stages: stages.clone(),
                    created_date: *created,
                    fingerprint: None,
                }),
            }
        }
        for v in &mut versions {
            v.fingerprint = vault.get(&name, &v.version_id).map(|s| key.fingerprint(s));
        }
        versions.sort_by(|a, b| {
            a.created_date
                .cmp(&b.created_date)
                .then_with(|| a.version_id.cmp(&b.version_id))
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

/// The version AWSCURRENT is attached to, per a stage map.
fn current_in(m: &SecretMeta) -> Option<&str> {
    m.version_stages
        .iter()
        .find(|(_, st)| st.iter().any(|s| s == "AWSCURRENT"))
        .map(|(v, _)| v.as_str())
}

/// The versions a stage map names (every version that carries a stage),
/// with the created date the batch gave for AWSCURRENT.
fn versions_from_stages(
    m: &SecretMeta,
    current: Option<&str>,
    current_created: Option<Timestamp>,
) -> Vec<SecretVersionState> {
    let mut versions: Vec<SecretVersionState> = m
        .version_stages
        .iter()
        .map(|(vid, stages)| {
            let mut stages = stages.clone();
            stages.sort();
            SecretVersionState {
                version_id: vid.clone(),
                stages,
                created_date: if Some(vid.as_str()) == current {
                    current_created
                } else {
                    None
                },
                fingerprint: None,
            }
        })
        .collect();
    if let Some(c) = current {
        if !versions.iter().any(|v| v.version_id == c) {
            versions.push(SecretVersionState {
                version_id: c.to_owned(),
                stages: vec!["AWSCURRENT".to_owned()],
                created_date: current_created,
                fingerprint: None,
            });
        }
    }
    versions
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
