//! Read-only discovery for `opsguard init`: which ECS clusters the account
//! has in a region, their services, the task definitions those run and the
//! Secrets Manager secrets they reference.
//!
//! It reads what a snapshot reads, plus `ecs:ListClusters`, and never a
//! secret's value: `init` pairs environment variables by their names, and
//! DescribeSecret only confirms that a referenced secret exists (and gives
//! its name when a task definition spells it by ARN). A secret that cannot
//! be described — missing, or not permitted — is recorded as such, not an
//! error: the config is still worth writing, and the comment says what to
//! look at.

use super::ecs::AwsEcs;
use super::secretsmanager::AwsSecrets;
use super::{Calls, EcsReader, ProviderError, SecretsReader, TaskDefinition};
use crate::model::value_from::{self, ValueFrom};
use futures::stream::{self, StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet};

const DESCRIBE_CLUSTERS_MAX: usize = 100;
const CONCURRENCY: usize = 4;

/// Everything `init` found.
pub struct Discovery {
    /// The region the calls went to.
    pub region: Option<String>,
    pub clusters: Vec<DiscoveredCluster>,
    /// Task definitions by ARN, each described once.
    pub task_definitions: BTreeMap<String, TaskDefinition>,
    /// `valueFrom` secret id → what DescribeSecret said.
    pub secrets: BTreeMap<String, SecretLookup>,
}

pub struct DiscoveredCluster {
    pub name: String,
    pub services: Vec<DiscoveredService>,
}

pub struct DiscoveredService {
    pub name: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub task_definition: String,
}

/// What DescribeSecret said about one referenced secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretLookup {
    Found {
        name: String,
    },
    Missing,
    /// The call failed (e.g. AccessDenied); the message says why.
    Failed(String),
}

/// Discover from `sdk`: the given clusters (each must exist), or every
/// active cluster ListClusters returns.
pub async fn discover(
    sdk: &aws_config::SdkConfig,
    clusters: &[String],
    calls: &Calls,
) -> Result<Discovery, ProviderError> {
    let ecs = AwsEcs::new(sdk, calls.clone());
    let names = if clusters.is_empty() {
        list_active_clusters(&aws_sdk_ecs::Client::new(sdk), calls).await?
    } else {
        ecs.check_clusters(clusters).await?;
        clusters.to_vec()
    };

    let mut found = Vec::new();
    for name in names {
        let services = ecs
            .services(&name)
            .await?
            .into_iter()
            .map(|s| DiscoveredService {
                name: s.service.service.clone(),
                desired_count: s.desired_count,
                running_count: s.running_count,
                task_definition: s.task_definition,
            })
            .collect();
        found.push(DiscoveredCluster { name, services });
    }

    let arns: BTreeSet<String> = found
        .iter()
        .flat_map(|c| c.services.iter().map(|s| s.task_definition.clone()))
        .filter(|a| !a.is_empty())
        .collect();
    let ecs = &ecs;
    let task_definitions: BTreeMap<String, TaskDefinition> = stream::iter(arns)
        .map(|arn| async move {
            let td = ecs.task_definition(&arn).await?;
            Ok::<_, ProviderError>((arn, td))
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;

    let secret_ids: BTreeSet<String> = task_definitions
        .values()
        .flat_map(|td| td.containers.iter())
        .flat_map(|c| c.secrets.iter())
        .filter_map(|(_, vf)| match value_from::parse(vf) {
            Ok(ValueFrom::Secret(r)) => Some(r.secret_id),
            _ => None,
        })
        .collect();
    let sm = AwsSecrets::new(sdk, calls.clone());
    let sm = &sm;
    let secrets: BTreeMap<String, SecretLookup> = stream::iter(secret_ids)
        .map(|id| async move {
            let lookup = match sm.describe(&id).await {
                Ok(Some(meta)) => SecretLookup::Found {
                    name: meta.name.as_str().to_owned(),
                },
                Ok(None) => SecretLookup::Missing,
                Err(e) => SecretLookup::Failed(e.message),
            };
            (id, lookup)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;

    Ok(Discovery {
        region: sdk.region().map(|r| r.to_string()),
        clusters: found,
        task_definitions,
        secrets,
    })
}

/// Names of the account's ACTIVE clusters in the SDK's region, sorted.
pub async fn list_active_clusters(
    client: &aws_sdk_ecs::Client,
    calls: &Calls,
) -> Result<Vec<String>, ProviderError> {
    let mut arns = Vec::new();
    let mut pages = client
        .list_clusters()
        .max_results(100)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let call = calls.hit("ecs:ListClusters");
        let page =
            page.map_err(|e| ProviderError::new("ECS", "ListClusters", super::aws::sdk_err(&e)))?;
        call.done(format_args!("{} clusters", page.cluster_arns().len()));
        arns.extend(page.cluster_arns().iter().cloned());
    }
    let mut names = Vec::new();
    for chunk in arns.chunks(DESCRIBE_CLUSTERS_MAX) {
        let call = calls.hit("ecs:DescribeClusters");
        let out = client
            .describe_clusters()
            .set_clusters(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| ProviderError::new("ECS", "DescribeClusters", super::aws::sdk_err(&e)))?;
        call.done(format_args!("{} clusters", out.clusters().len()));
        names.extend(
            out.clusters()
                .iter()
                .filter(|c| c.status() == Some("ACTIVE"))
                .filter_map(|c| c.cluster_name().map(str::to_owned)),
        );
    }
    names.sort();
    names.dedup();
    Ok(names)
}
