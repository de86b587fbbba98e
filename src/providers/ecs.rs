//! ECS: services, their deployments and tasks, task definitions for the
//! snapshot; desired count, forced deployments and one service's state for
//! the remedies.
//!
//! Calls are batched to the limits AWS enforces (DescribeServices 10 ids,
//! DescribeTasks 100) even where an emulator would accept more, and a snapshot
//! lists tasks once per cluster rather than once per service. Everything that
//! does not wait on another answer is sent at once — the services and the
//! tasks of a cluster are listed side by side, every batch of a listing is
//! described together — and the shared [`Gate`] bounds what is in flight.

use super::aws::{sdk_err, ThrottleCounter};
use super::paging::all_pages;
use super::{
    aws_time, in_batches, Calls, Container, EcsReader, EcsWriter, Gate, ProviderError,
    TaskDefinition,
};
use crate::model::snapshot::{DeploymentState, ServiceState, TaskState};
use crate::model::ServiceRef;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::types::DesiredStatus;
use std::collections::BTreeMap;

const DESCRIBE_CLUSTERS_MAX: usize = 100;
const DESCRIBE_SERVICES_MAX: usize = 10;
const DESCRIBE_TASKS_MAX: usize = 100;
/// Batches handed to the gate at once; the gate decides how many fly.
const ALL_AT_ONCE: usize = usize::MAX;

pub struct AwsEcs {
    client: aws_sdk_ecs::Client,
    calls: Calls,
    gate: Gate,
}

impl AwsEcs {
    pub fn new(sdk: &aws_config::SdkConfig, calls: Calls) -> Self {
        let conf = aws_sdk_ecs::config::Builder::from(sdk)
            .interceptor(ThrottleCounter::new(calls.clone(), "ecs"))
            .build();
        Self {
            client: aws_sdk_ecs::Client::from_conf(conf),
            calls,
            gate: Gate::default(),
        }
    }

    /// Share a bound on requests in flight with other clients.
    pub fn with_gate(mut self, gate: Gate) -> Self {
        self.gate = gate;
        self
    }

    fn err<E, R>(op: &str, e: SdkError<E, R>) -> ProviderError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        ProviderError::new("ECS", op, sdk_err(&e))
    }

    async fn list_service_arns(&self, cluster: &str) -> Result<Vec<String>, ProviderError> {
        all_pages("ECS", "ListServices", async |token| {
            let _slot = self.gate.slot().await;
            let call = self.calls.hit("ecs:ListServices");
            let page = self
                .client
                .list_services()
                .cluster(cluster)
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| Self::err("ListServices", e))?;
            call.done(format_args!("{} services", page.service_arns().len()));
            Ok((
                page.service_arns().to_vec(),
                page.next_token().map(str::to_owned),
            ))
        })
        .await
    }

    /// Task ARNs of a cluster, or of one service when `service` is given.
    async fn list_task_arns(
        &self,
        cluster: &str,
        service: Option<&str>,
        status: DesiredStatus,
    ) -> Result<Vec<String>, ProviderError> {
        all_pages("ECS", "ListTasks", async |token| {
            let _slot = self.gate.slot().await;
            let call = self.calls.hit("ecs:ListTasks");
            let page = self
                .client
                .list_tasks()
                .cluster(cluster)
                .set_service_name(service.map(str::to_owned))
                .desired_status(status.clone())
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| Self::err("ListTasks", e))?;
            call.done(format_args!("{} tasks", page.task_arns().len()));
            Ok((
                page.task_arns().to_vec(),
                page.next_token().map(str::to_owned),
            ))
        })
        .await
    }

    /// Every task the cluster (or one service of it) wants running, plus
    /// stopping ones that are still up (a draining task still serves with its
    /// old credentials), each with the service it belongs to.
    async fn live_tasks(
        &self,
        cluster: &str,
        service: Option<&str>,
    ) -> Result<Vec<(Option<String>, TaskState)>, ProviderError> {
        let (running, stopping) = futures::try_join!(
            self.list_task_arns(cluster, service, DesiredStatus::Running),
            self.list_task_arns(cluster, service, DesiredStatus::Stopped),
        )?;
        let mut task_arns = running;
        task_arns.extend(stopping);
        task_arns.sort();
        task_arns.dedup();
        in_batches(
            task_arns,
            DESCRIBE_TASKS_MAX,
            ALL_AT_ONCE,
            |chunk| async move {
                let _slot = self.gate.slot().await;
                let call = self.calls.hit("ecs:DescribeTasks");
                let out = self
                    .client
                    .describe_tasks()
                    .cluster(cluster)
                    .set_tasks(Some(chunk))
                    .send()
                    .await
                    .map_err(|e| Self::err("DescribeTasks", e))?;
                call.done(format_args!(
                    "{} tasks, {} failures",
                    out.tasks().len(),
                    out.failures().len()
                ));
                refuse_failures("DescribeTasks", out.failures())?;
                Ok(out
                    .tasks()
                    .iter()
                    .filter(|t| {
                        t.last_status() != Some("STOPPED") && t.last_status() != Some("DELETED")
                    })
                    .map(|t| {
                        let svc = t
                            .group()
                            .and_then(|g| g.strip_prefix("service:"))
                            .map(str::to_owned);
                        (svc, task_state(t))
                    })
                    .collect())
            },
        )
        .await
    }
}

/// Oldest first, then by ARN: a stable order for snapshots and diffs.
fn sort_tasks(tasks: &mut [TaskState]) {
    tasks.sort_by(|a, b| {
        a.started_at
            .cmp(&b.started_at)
            .then_with(|| a.arn.cmp(&b.arn))
    });
}

/// A `MISSING` failure means the resource is gone, which is the truth; any
/// other failure means the answer is incomplete.
fn refuse_failures(
    op: &str,
    failures: &[aws_sdk_ecs::types::Failure],
) -> Result<(), ProviderError> {
    match failures.iter().find(|f| f.reason() != Some("MISSING")) {
        Some(f) => Err(ProviderError::new(
            "ECS",
            op,
            format!("{}: {}", f.arn().unwrap_or("?"), f.reason().unwrap_or("?")),
        )),
        None => Ok(()),
    }
}

fn service_state(cluster: &str, s: &aws_sdk_ecs::types::Service) -> ServiceState {
    let deployments = s
        .deployments()
        .iter()
        .map(|d| DeploymentState {
            id: d.id().unwrap_or_default().to_owned(),
            status: d.status().unwrap_or_default().to_owned(),
            task_definition: d.task_definition().unwrap_or_default().to_owned(),
            desired_count: d.desired_count(),
            running_count: d.running_count(),
            pending_count: d.pending_count(),
            failed_tasks: d.failed_tasks(),
            rollout_state: d.rollout_state().map(|r| r.as_str().to_owned()),
            rollout_state_reason: d.rollout_state_reason().map(str::to_owned),
            created_at: aws_time(d.created_at()),
            updated_at: aws_time(d.updated_at()),
        })
        .collect();
    ServiceState {
        service: ServiceRef::new(cluster, s.service_name().unwrap_or_default()),
        arn: s.service_arn().unwrap_or_default().to_owned(),
        status: s.status().unwrap_or_default().to_owned(),
        desired_count: s.desired_count(),
        running_count: s.running_count(),
        pending_count: s.pending_count(),
        task_definition: s.task_definition().unwrap_or_default().to_owned(),
        launch_type: s.launch_type().map(|l| l.as_str().to_owned()),
        deployments,
        tasks: Vec::new(),
        consumes: Vec::new(),
    }
}

fn task_state(t: &aws_sdk_ecs::types::Task) -> TaskState {
    TaskState {
        arn: t.task_arn().unwrap_or_default().to_owned(),
        task_definition_arn: t.task_definition_arn().unwrap_or_default().to_owned(),
        last_status: t.last_status().unwrap_or_default().to_owned(),
        desired_status: t.desired_status().unwrap_or_default().to_owned(),
        health_status: t.health_status().map(|h| h.as_str().to_owned()),
        started_at: aws_time(t.started_at()),
        created_at: aws_time(t.created_at()),
        started_by: t.started_by().map(str::to_owned),
    }
}

impl EcsReader for AwsEcs {
    async fn check_clusters(&self, clusters: &[String]) -> Result<(), ProviderError> {
        for chunk in clusters.chunks(DESCRIBE_CLUSTERS_MAX) {
            let _slot = self.gate.slot().await;
            let call = self.calls.hit("ecs:DescribeClusters");
            let out = self
                .client
                .describe_clusters()
                .set_clusters(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| Self::err("DescribeClusters", e))?;
            call.done(format_args!(
                "{} clusters, {} failures",
                out.clusters().len(),
                out.failures().len()
            ));
            if let Some(f) = out.failures().first() {
                return Err(ProviderError::new(
                    "ECS",
                    "DescribeClusters",
                    format!(
                        "cluster {} is {} (check [ecs] clusters and the AWS account and region)",
                        f.arn().unwrap_or("?"),
                        f.reason().unwrap_or("?")
                    ),
                ));
            }
            if let Some(c) = out.clusters().iter().find(|c| c.status() != Some("ACTIVE")) {
                return Err(ProviderError::new(
                    "ECS",
                    "DescribeClusters",
                    format!(
                        "cluster {} is {}",
                        c.cluster_name().unwrap_or("?"),
                        c.status().unwrap_or("?")
                    ),
                ));
            }
        }
        Ok(())
    }

    async fn services(&self, cluster: &str) -> Result<Vec<ServiceState>, ProviderError> {
        let described = async {
            let arns = self.list_service_arns(cluster).await?;
            self.describe_services(cluster, arns).await
        };
        // The tasks of the whole cluster, listed beside its services.
        let (services, tasks) = futures::try_join!(described, self.live_tasks(cluster, None))?;
        let mut services = services;
        let mut by_service: BTreeMap<String, Vec<TaskState>> = BTreeMap::new();
        for (svc, task) in tasks {
            if let Some(svc) = svc {
                by_service.entry(svc).or_default().push(task);
            }
        }
        for s in &mut services {
            s.tasks = by_service.remove(&s.service.service).unwrap_or_default();
            sort_tasks(&mut s.tasks);
        }
        services.sort_by(|a, b| a.service.cmp(&b.service));
        Ok(services)
    }

    async fn task_definition(&self, arn: &str) -> Result<TaskDefinition, ProviderError> {
        let _slot = self.gate.slot().await;
        let call = self.calls.hit("ecs:DescribeTaskDefinition");
        let out = self
            .client
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(|e| Self::err("DescribeTaskDefinition", e))?;
        call.done(format_args!(
            "{} containers",
            out.task_definition()
                .map_or(0, |t| t.container_definitions().len())
        ));
        task_definition(arn, out.task_definition())
    }
}

impl AwsEcs {
    /// DescribeServices, 10 ARNs a call, every batch at once.
    async fn describe_services(
        &self,
        cluster: &str,
        arns: Vec<String>,
    ) -> Result<Vec<ServiceState>, ProviderError> {
        in_batches(
            arns,
            DESCRIBE_SERVICES_MAX,
            ALL_AT_ONCE,
            |chunk| async move {
                let _slot = self.gate.slot().await;
                let call = self.calls.hit("ecs:DescribeServices");
                let out = self
                    .client
                    .describe_services()
                    .cluster(cluster)
                    .set_services(Some(chunk))
                    .send()
                    .await
                    .map_err(|e| Self::err("DescribeServices", e))?;
                call.done(format_args!(
                    "{} services, {} failures",
                    out.services().len(),
                    out.failures().len()
                ));
                // A service deleted between List and Describe comes back as a
                // MISSING failure: it no longer exists, which is the truth.
                refuse_failures("DescribeServices", out.failures())?;
                Ok(out
                    .services()
                    .iter()
                    .filter(|s| s.status() != Some("INACTIVE"))
                    .map(|s| service_state(cluster, s))
                    .collect())
            },
        )
        .await
    }
}

fn task_definition(
    arn: &str,
    td: Option<&aws_sdk_ecs::types::TaskDefinition>,
) -> Result<TaskDefinition, ProviderError> {
    let td = td.ok_or_else(|| {
        ProviderError::new(
            "ECS",
            "DescribeTaskDefinition",
            format!("{arn}: no task definition in the response"),
        )
    })?;
    Ok(TaskDefinition {
        arn: td.task_definition_arn().unwrap_or(arn).to_owned(),
        family: td.family().unwrap_or_default().to_owned(),
        revision: td.revision(),
        containers: td
            .container_definitions()
            .iter()
            .map(|c| Container {
                name: c.name().unwrap_or_default().to_owned(),
                secrets: c
                    .secrets()
                    .iter()
                    .map(|s| (s.name().to_owned(), s.value_from().to_owned()))
                    .collect(),
                environment: c
                    .environment()
                    .iter()
                    .filter_map(|kv| {
                        Some((
                            kv.name()?.to_owned(),
                            kv.value().unwrap_or_default().to_owned(),
                        ))
                    })
                    .collect(),
            })
            .collect(),
    })
}

// Retries: the SDK retries UpdateService on throttling and transient errors
// only. Setting a desired count is idempotent. Forcing a new deployment is
// not strictly so — a retry whose first attempt landed starts a second
// rollout — but the outcome asked for is the same (every task replaced by one
// started after the call), so a bounded retry is safe there too.
impl EcsWriter for AwsEcs {
    async fn set_desired_count(
        &self,
        service: &ServiceRef,
        desired: i32,
    ) -> Result<(), ProviderError> {
        if desired < 0 {
            // ministack accepts a negative count; AWS does not.
            return Err(ProviderError::new(
                "ECS",
                "UpdateService",
                format!("{service}: desired count {desired} is negative"),
            ));
        }
        tracing::debug!(%service, desired, "setting the desired count");
        let call = self.calls.hit("ecs:UpdateService");
        self.client
            .update_service()
            .cluster(&service.cluster)
            .service(&service.service)
            .desired_count(desired)
            .send()
            .await
            .map_err(|e| {
                ProviderError::new(
                    "ECS",
                    "UpdateService",
                    format!(
                        "{service}: setting desired count {desired}: {}",
                        sdk_err(&e)
                    ),
                )
            })?;
        call.done("updated");
        Ok(())
    }

    async fn force_new_deployment(&self, service: &ServiceRef) -> Result<(), ProviderError> {
        tracing::debug!(%service, "forcing a new deployment");
        let call = self.calls.hit("ecs:UpdateService");
        self.client
            .update_service()
            .cluster(&service.cluster)
            .service(&service.service)
            .force_new_deployment(true)
            .send()
            .await
            .map_err(|e| {
                ProviderError::new(
                    "ECS",
                    "UpdateService",
                    format!("{service}: forcing a new deployment: {}", sdk_err(&e)),
                )
            })?;
        call.done("new deployment");
        Ok(())
    }

    async fn service(&self, service: &ServiceRef) -> Result<ServiceState, ProviderError> {
        let call = self.calls.hit("ecs:DescribeServices");
        let out = self
            .client
            .describe_services()
            .cluster(&service.cluster)
            .services(&service.service)
            .send()
            .await
            .map_err(|e| {
                ProviderError::new(
                    "ECS",
                    "DescribeServices",
                    format!("{service}: {}", sdk_err(&e)),
                )
            })?;
        call.done(format_args!(
            "{} services, {} failures",
            out.services().len(),
            out.failures().len()
        ));
        if let Some(f) = out.failures().first() {
            let reason = match f.reason() {
                Some("MISSING") => "does not exist".to_owned(),
                r => r.unwrap_or("?").to_owned(),
            };
            return Err(ProviderError::new(
                "ECS",
                "DescribeServices",
                format!("service {service} {reason}"),
            ));
        }
        let Some(found) = out.services().iter().find(|s| {
            s.service_name() == Some(service.service.as_str())
                || s.service_arn() == Some(service.service.as_str())
        }) else {
            return Err(ProviderError::new(
                "ECS",
                "DescribeServices",
                format!("service {service} does not exist"),
            ));
        };
        if found.status() == Some("INACTIVE") {
            return Err(ProviderError::new(
                "ECS",
                "DescribeServices",
                format!("service {service} was deleted (INACTIVE)"),
            ));
        }
        let mut state = service_state(&service.cluster, found);
        let name = found.service_name().unwrap_or(&service.service).to_owned();
        state.tasks = self
            .live_tasks(&service.cluster, Some(&name))
            .await?
            .into_iter()
            // ListTasks(serviceName) is the filter; ministack also matches a
            // task whose startedBy is the name, so check the group as well.
            .filter(|(svc, _)| svc.as_deref().is_none_or(|s| s == name))
            .map(|(_, t)| t)
            .collect();
        sort_tasks(&mut state.tasks);
        Ok(state)
    }
}
