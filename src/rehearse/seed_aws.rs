//! Seeding the shadow's AWS: secrets, clusters, task definitions, services.
//!
//! Reads go to live (through the snapshot's [`Live`] connections, plus one
//! `ListSecrets` for `[rehearse] extra_secrets`); writes go only to the
//! shadow's SDK config, whose endpoint [`super::shadow::build`] checked to
//! be loopback. Secret values pass through memory only.

use super::shadow::{live_task_definition, ShadowError};
use crate::config::Config;
use crate::model::SecretName;
use crate::providers::SecretsReader;
use crate::report::model::RehearsalSeeded;
use crate::snapshot::{Live, Taken};
use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair, LaunchType, Secret as EcsSecret};
use futures::stream::{self, StreamExt, TryStreamExt};
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeMap, BTreeSet};

/// Writes to the shadow's emulator in flight at once. ministack answers
/// one request at a time; a few in flight keep it busy while opsguard builds
/// the next request and reads the last answer.
const SHADOW_CONCURRENCY: usize = 8;

/// Task definitions read from live at once (within `[aws] max_concurrency`).
const LIVE_READS: usize = 16;

fn seed_err(what: &str, e: impl std::fmt::Display) -> ShadowError {
    ShadowError::Seed(format!("{what}: {e}"))
}

/// A failed write to the shadow's AWS emulator, said as [`seed_err`] does.
fn aws_seed_err<E, R>(
    what: String,
) -> impl FnOnce(aws_sdk_ecs::error::SdkError<E, R>) -> ShadowError
where
    E: aws_sdk_ecs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    move |e| seed_err(&what, crate::providers::aws::sdk_err(&e))
}

/// `*` and `?` globs, as `[rehearse] extra_secrets` writes them.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// Names of live secrets matching the globs (one paginated `ListSecrets`, read-only).
async fn extra_secret_names(
    live_sdk: &aws_config::SdkConfig,
    globs: &[String],
) -> Result<Vec<String>, ShadowError> {
    if globs.is_empty() {
        return Ok(Vec::new());
    }
    let sm = aws_sdk_secretsmanager::Client::new(live_sdk);
    crate::providers::paging::all_pages("Secrets Manager", "ListSecrets", async |token| {
        let page = sm
            .list_secrets()
            .max_results(100)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| {
                crate::providers::ProviderError::new(
                    "Secrets Manager",
                    "ListSecrets",
                    crate::providers::aws::sdk_err(&e),
                )
            })?;
        let names = page
            .secret_list()
            .iter()
            .filter_map(|s| s.name())
            .filter(|n| globs.iter().any(|g| glob(g, n)))
            .map(str::to_owned)
            .collect();
        Ok((names, page.next_token().map(str::to_owned)))
    })
    .await
    .map_err(ShadowError::Live)
}

/// The revision at the end of a task definition ARN (`…/family:12`), 0 if none.
fn revision(arn: &str) -> u64 {
    arn.rsplit(':')
        .next()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Register `td` in the shadow, its `valueFrom`s rewritten; the new ARN.
async fn register(
    ecs: &aws_sdk_ecs::Client,
    td: &crate::providers::TaskDefinition,
    rewrite_value_from: &impl Fn(&str) -> String,
) -> Result<String, ShadowError> {
    let containers: Vec<ContainerDefinition> = td
        .containers
        .iter()
        .map(|c| {
            let secrets: Vec<EcsSecret> = c
                .secrets
                .iter()
                .filter_map(|(n, vf)| {
                    EcsSecret::builder()
                        .name(n)
                        .value_from(rewrite_value_from(vf))
                        .build()
                        .ok()
                })
                .collect();
            let env: Vec<KeyValuePair> = c
                .environment
                .iter()
                .map(|(n, v)| KeyValuePair::builder().name(n).value(v).build())
                .collect();
            ContainerDefinition::builder()
                .name(&c.name)
                .image("opsguard/rehearsal-shadow")
                .memory(512)
                .essential(true)
                .set_secrets(Some(secrets))
                .set_environment(Some(env))
                .build()
        })
        .collect();
    let out = ecs
        .register_task_definition()
        .family(&td.family)
        .set_container_definitions(Some(containers))
        .send()
        .await
        .map_err(aws_seed_err(format!(
            "RegisterTaskDefinition {}",
            td.family
        )))?;
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(str::to_owned)
        .ok_or_else(|| seed_err("RegisterTaskDefinition", "no ARN in the answer"))
}

/// A version id Secrets Manager accepts as `ClientRequestToken` (32–64 chars).
fn usable_token(id: &str) -> bool {
    (32..=64).contains(&id.len())
}

/// Seed; returns the names of the secrets whose values were pointed at the shadow ES.
pub async fn seed(
    config: &Config,
    live: &Live,
    live_sdk: &aws_config::SdkConfig,
    shadow_sdk: &aws_config::SdkConfig,
    before: &Taken,
    shadow_es: &url::Url,
    seeded: &mut RehearsalSeeded,
) -> Result<Vec<String>, ShadowError> {
    let snap = &before.snapshot;
    let sm = aws_sdk_secretsmanager::Client::new(shadow_sdk);
    let ecs = aws_sdk_ecs::Client::new(shadow_sdk);

    // 1. Secrets: those in scope, and the extra ones.
    let mut names: BTreeSet<String> = snap
        .secrets
        .iter()
        .filter(|s| s.exists && s.deleted_date.is_none())
        .map(|s| s.name.to_string())
        .collect();
    names.extend(extra_secret_names(live_sdk, &config.rehearse.extra_secrets).await?);
    let list: Vec<SecretName> = names.iter().map(|n| SecretName::new(n.as_str())).collect();
    let current = live
        .aws()
        .current_values(&list)
        .await
        .map_err(ShadowError::Live)?;
    // Versions a task definition pins (by id, or by stage AWSPREVIOUS):
    // seeded before AWSCURRENT, so they keep their ids and stages.
    let mut older: BTreeMap<String, Vec<(String, SecretString)>> = BTreeMap::new();
    for td in &snap.task_definitions {
        for c in &td.containers {
            for s in &c.secrets {
                let (Some(name), true) = (&s.secret, s.pinned) else {
                    continue;
                };
                let current_id = current
                    .values
                    .iter()
                    .find(|v| &v.name == name)
                    .map(|v| v.version_id.clone());
                let got = live
                    .aws()
                    .value_at(name, s.version_id.as_deref(), s.version_stage.as_deref())
                    .await
                    .map_err(ShadowError::Live)?;
                if let Some(v) = got {
                    let list = older.entry(name.to_string()).or_default();
                    if Some(&v.version_id) != current_id.as_ref()
                        && !list.iter().any(|(id, _)| id == &v.version_id)
                    {
                        list.push((v.version_id.clone(), v.value));
                    }
                }
            }
        }
    }
    let live_es = &config.elasticsearch.url;
    let mut rewritten = Vec::new();
    // Each secret's versions in order (pinned ones first, AWSCURRENT last);
    // the secrets themselves side by side.
    let mut jobs: Vec<(String, Vec<(String, SecretString)>)> = Vec::new();
    for v in &current.values {
        let name = v.name.to_string();
        let mut versions: Vec<(String, SecretString)> = older.remove(&name).unwrap_or_default();
        versions.push((v.version_id.clone(), v.value.clone()));
        let mut was_rewritten = false;
        let versions: Vec<(String, SecretString)> = versions
            .into_iter()
            .map(|(id, value)| {
                match super::env::rewrite_secret_value(value.expose_secret(), live_es, shadow_es) {
                    Some(new) => {
                        was_rewritten = true;
                        (id, SecretString::from(new))
                    }
                    None => (id, value),
                }
            })
            .collect();
        if was_rewritten {
            rewritten.push(name.clone());
        }
        jobs.push((name, versions));
    }
    let sm = &sm;
    let created: Vec<(String, Option<String>)> = stream::iter(jobs)
        .map(|(name, versions)| async move {
            let mut arn = None;
            for (i, (id, value)) in versions.iter().enumerate() {
                let token = usable_token(id).then(|| id.clone());
                if i == 0 {
                    let out = sm
                        .create_secret()
                        .name(&name)
                        .secret_string(value.expose_secret())
                        .set_client_request_token(token)
                        .send()
                        .await
                        .map_err(aws_seed_err(format!("CreateSecret {name}")))?;
                    arn = out.arn().map(str::to_owned);
                } else {
                    sm.put_secret_value()
                        .secret_id(&name)
                        .secret_string(value.expose_secret())
                        .set_client_request_token(token)
                        .send()
                        .await
                        .map_err(aws_seed_err(format!("PutSecretValue {name}")))?;
                }
            }
            Ok::<_, ShadowError>((name, arn))
        })
        .buffer_unordered(SHADOW_CONCURRENCY)
        .try_collect()
        .await?;
    let arns: BTreeMap<String, String> = created
        .into_iter()
        .filter_map(|(name, arn)| Some((name, arn?)))
        .collect();
    seeded.secrets = current.values.len();

    // 2. Clusters.
    for c in &config.ecs.clusters {
        ecs.create_cluster()
            .cluster_name(c)
            .send()
            .await
            .map_err(aws_seed_err(format!("CreateCluster {c}")))?;
    }
    seeded.clusters = config.ecs.clusters.len();

    // 3. Task definitions, `valueFrom` pointing at the shadow's secrets.
    let live_by_name: BTreeMap<String, String> = snap
        .secrets
        .iter()
        .filter_map(|s| Some((s.name.to_string(), s.arn.as_ref()?.to_string())))
        .collect();
    let shadow_acct = arns
        .values()
        .next()
        .and_then(|a| a.split(':').nth(4))
        .map(str::to_owned);
    let live_acct = live_by_name
        .values()
        .next()
        .and_then(|a| a.split(':').nth(4))
        .map(str::to_owned);
    let rewrite_value_from = |vf: &str| -> String {
        let mut out = vf.to_owned();
        for (name, live_arn) in &live_by_name {
            if out.starts_with(live_arn.as_str()) {
                if let Some(sa) = arns.get(name) {
                    out = format!("{sa}{}", &out[live_arn.len()..]);
                    break;
                }
            }
        }
        if let (Some(l), Some(s)) = (&live_acct, &shadow_acct) {
            out = out.replace(&format!(":{l}:"), &format!(":{s}:"));
        }
        out
    };
    let wanted: BTreeSet<&str> = snap
        .services
        .iter()
        .map(|s| s.task_definition.as_str())
        .collect();
    // Read from live side by side (the live connections keep to
    // `[aws] max_concurrency`); register each family's revisions in live's
    // order, the families side by side.
    let read: Vec<(&str, crate::providers::TaskDefinition)> = stream::iter(wanted)
        .map(|live_arn| async move {
            Ok::<_, ShadowError>((live_arn, live_task_definition(live, live_arn).await?))
        })
        .buffered(LIVE_READS)
        .try_collect()
        .await?;
    let mut families: BTreeMap<String, Vec<(&str, crate::providers::TaskDefinition)>> =
        BTreeMap::new();
    for (arn, td) in read {
        families
            .entry(td.family.clone())
            .or_default()
            .push((arn, td));
    }
    for list in families.values_mut() {
        list.sort_by_key(|(arn, _)| revision(arn));
    }
    let ecs = &ecs;
    let rewrite_value_from = &rewrite_value_from;
    let registered: Vec<Vec<(String, String)>> = stream::iter(families.into_values())
        .map(|list| async move {
            let mut out = Vec::new();
            for (live_arn, td) in list {
                let arn = register(ecs, &td, rewrite_value_from).await?;
                out.push((live_arn.to_owned(), arn));
            }
            Ok::<_, ShadowError>(out)
        })
        .buffer_unordered(SHADOW_CONCURRENCY)
        .try_collect()
        .await?;
    let td_arns: BTreeMap<String, String> = registered.into_iter().flatten().collect();
    seeded.task_definitions = td_arns.len();

    // 4. Services with their desired counts (ministack starts their tasks at once).
    let td_arns = &td_arns;
    seeded.services = stream::iter(snap.services.iter())
        .map(|s| async move {
            let Some(td) = td_arns.get(&s.task_definition) else {
                return Ok(0usize);
            };
            ecs.create_service()
                .cluster(&s.service.cluster)
                .service_name(&s.service.service)
                .task_definition(td)
                .desired_count(s.desired_count)
                .set_launch_type(s.launch_type.as_deref().map(LaunchType::from))
                .send()
                .await
                .map_err(aws_seed_err(format!("CreateService {}", s.service)))?;
            Ok::<_, ShadowError>(1)
        })
        .buffer_unordered(SHADOW_CONCURRENCY)
        .try_fold(0, |a, n| async move { Ok(a + n) })
        .await?;
    rewritten.sort();
    Ok(rewritten)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob("es/*", "es/host"));
        assert!(glob("*admin*", "elasticsearch/admin/password"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("es/*", "other/es/host"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
    }

    #[test]
    fn a_family_is_registered_in_the_order_of_its_live_revisions() {
        let arn = |r: &str| format!("arn:aws:ecs:eu-west-1:111111111111:task-definition/api:{r}");
        let mut arns = vec![arn("10"), arn("9"), arn("x"), arn("2")];
        arns.sort_by_key(|a| revision(a));
        assert_eq!(arns, vec![arn("x"), arn("2"), arn("9"), arn("10")]);
    }

    #[test]
    fn only_real_version_ids_are_reused_as_tokens() {
        assert!(usable_token("5c0a4f5e-0e9a-4f0c-9e0f-2a4c1b5e7d3f"));
        assert!(!usable_token("v1"));
    }
}
