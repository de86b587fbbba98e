//! The snapshot document (`opsguard.snapshot/v1`): everything observed at one
//! instant, redacted. It is written to disk, diffed, and read back by
//! `opsguard diff`, so every field here is part of a file format: add fields,
//! don't rename them.
//!
//! What it never holds: a password, an API key, a secret value, or any
//! environment value from a task definition. Secret values are represented by
//! keyed fingerprints only (see [`super::fingerprint`]).

use super::{CredentialKind, SecretArn, SecretName, ServiceRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

pub const SCHEMA: &str = "opsguard.snapshot/v1";

pub type Timestamp = OffsetDateTime;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub schema: String,
    #[serde(with = "time::serde::rfc3339")]
    pub taken_at: Timestamp,
    pub opsguard_version: String,
    /// Identifies the key that made the fingerprints, so two snapshots can be
    /// compared only when their fingerprints are comparable.
    pub fingerprint_key_id: String,
    pub elasticsearch: EsState,
    pub secrets: Vec<SecretState>,
    pub services: Vec<ServiceState>,
    pub task_definitions: Vec<TaskDefinitionState>,
    pub credentials: Vec<CredentialState>,
    pub collection: Collection,
}

/// How the snapshot was taken: for figures and for `--verbose`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Collection {
    pub duration_ms: u64,
    /// Operations made, by `service:Operation` (retries not counted twice).
    pub api_calls: BTreeMap<String, u64>,
    /// Answers that said "slow down" (throttling, HTTP 429), by service; each
    /// was retried with backoff. Absent when there were none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub throttled: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EsState {
    pub url: String,
    pub cluster_name: String,
    pub cluster_uuid: String,
    pub version: String,
    pub health: ClusterHealth,
    pub users: Vec<EsUser>,
    /// The API keys that credentials resolve to (not every key in the cluster).
    pub api_keys: Vec<ApiKeyState>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterHealth {
    pub status: String,
    pub number_of_nodes: u64,
    pub number_of_data_nodes: u64,
    pub active_shards_percent: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EsUser {
    pub username: String,
    pub roles: Vec<String>,
    pub full_name: Option<String>,
    pub email: Option<String>,
    pub enabled: bool,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// A built-in user (elastic, kibana_system, …): only its password can change.
    pub reserved: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyState {
    pub id: String,
    /// False when no key with this id exists (deleted or never existed).
    pub found: bool,
    pub name: Option<String>,
    pub username: Option<String>,
    pub realm: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub creation: Option<Timestamp>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expiration: Option<Timestamp>,
    pub invalidated: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretState {
    pub name: SecretName,
    /// None when the secret does not exist (a task definition names a secret
    /// that was deleted, or never created).
    pub arn: Option<SecretArn>,
    pub exists: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_date: Option<Timestamp>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_changed_date: Option<Timestamp>,
    /// Set when the secret is scheduled for deletion.
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_date: Option<Timestamp>,
    pub current_version_id: Option<String>,
    /// Keyed fingerprint of the AWSCURRENT value.
    pub current_fingerprint: Option<String>,
    pub versions: Vec<SecretVersionState>,
    /// Every `valueFrom` spelling that resolved to this secret.
    pub referenced_as: Vec<String>,
    /// Services whose task definitions reference this secret.
    pub consumers: Vec<ServiceRef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecretVersionState {
    pub version_id: String,
    pub stages: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_date: Option<Timestamp>,
    /// Keyed fingerprint, for the versions that were read (AWSCURRENT and
    /// any version a task definition pins).
    pub fingerprint: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceState {
    pub service: ServiceRef,
    pub arn: String,
    pub status: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
    pub task_definition: String,
    pub launch_type: Option<String>,
    pub deployments: Vec<DeploymentState>,
    /// Tasks that are running or about to (not the stopped ones).
    pub tasks: Vec<TaskState>,
    /// Ids of the credentials this service consumes.
    pub consumes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentState {
    pub id: String,
    pub status: String,
    pub task_definition: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
    pub failed_tasks: i32,
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<Timestamp>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    pub arn: String,
    pub task_definition_arn: String,
    pub last_status: String,
    pub desired_status: String,
    pub health_status: Option<String>,
    /// Whole-second resolution on ECS: compare with that in mind.
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<Timestamp>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<Timestamp>,
    pub started_by: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskDefinitionState {
    pub arn: String,
    pub family: String,
    pub revision: i32,
    pub containers: Vec<ContainerState>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainerState {
    pub name: String,
    pub secrets: Vec<SecretEnvState>,
    /// Names (never values) of plain `environment` variables.
    pub environment: Vec<String>,
}

/// One `secrets[]` entry of a container: an env var and where ECS reads it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretEnvState {
    pub env: String,
    pub value_from: String,
    /// The Secrets Manager secret it resolved to, if any.
    pub secret: Option<SecretName>,
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
    /// Reads a fixed version instead of following AWSCURRENT.
    pub pinned: bool,
    /// Why it did not resolve (malformed, a plain SSM parameter, not found, …).
    pub problem: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CredentialState {
    /// Stable name: the Elasticsearch user or API key id it resolves to, made
    /// unique with the secret's name when two credentials share a principal.
    pub id: String,
    /// Where each part comes from, canonically: what joins this credential
    /// across two snapshots (its id and principal may change with a rotation).
    pub origin: String,
    pub kind: CredentialKind,
    /// The ES username (basic) or API key id (api key) the value resolves to.
    pub principal: Option<String>,
    pub sources: Vec<SourceState>,
    pub secrets: Vec<SecretName>,
    pub consumers: Vec<ConsumerState>,
    /// True when any source reads a pinned version.
    pub pinned: bool,
    pub probe: Probe,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    /// `username`, `password`, `credentials-json` or `api-key`.
    pub role: String,
    pub env: String,
    /// `secret`, `environment` (plain text in the task definition),
    /// `ssm-parameter`, or `missing` (the container does not set it).
    pub from: String,
    pub secret: Option<SecretName>,
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
    /// The secret version whose value was read.
    pub version_read: Option<String>,
    /// Keyed fingerprint of the value this source yields (after the JSON key).
    pub fingerprint: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerState {
    pub service: ServiceRef,
    pub containers: Vec<String>,
    pub task_definitions: Vec<String>,
    /// Running tasks of this service whose task definition carries the credential.
    pub running_tasks: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeResult {
    /// `GET /_security/_authenticate` accepted the value.
    Authenticated,
    /// Elasticsearch answered 401: the next task to start with it will fail.
    Rejected,
    /// The value could not be assembled (secret missing, deleted, JSON key absent, …).
    Unresolved,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub result: ProbeResult,
    pub authenticated_as: Option<String>,
    pub detail: Option<String>,
}
