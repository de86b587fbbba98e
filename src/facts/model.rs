//! The facts document (`opsguard.facts/v1`): before, after and probes joined
//! into one flat, typed record per credential, service and secret.
//!
//! Rules read these and nothing else. Every field is a plain value (bool,
//! integer, string, list of strings) so a CEL condition can use it without
//! knowing where it came from, and every field has a default so a rule's test
//! case can state only the facts it cares about.
//!
//! In `check` (one snapshot) the facts are built with before = after: nothing
//! changed, so rules about changes cannot fire and only steady-state rules
//! (about how things are now) can. That is what makes a rule "steady-state":
//! it fires on facts where before and after are the same.

use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "opsguard.facts/v1";

/// What a credential value did when presented to Elasticsearch.
/// `unknown`: not probed (offline `diff` has no values).
pub const PROBE_STATES: [&str; 4] = ["authenticated", "rejected", "unresolved", "unknown"];

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Facts {
    pub schema: String,
    /// `run`, `check` or `diff`.
    pub mode: String,
    pub before_taken_at: String,
    pub after_taken_at: String,
    pub credentials: Vec<CredentialFact>,
    pub services: Vec<ServiceFact>,
    pub secrets: Vec<SecretFact>,
}

/// One Elasticsearch credential consumed by task definitions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialFact {
    /// The credential's id: its ES username, or the secret holding an API key.
    pub id: String,
    /// `elasticsearch-basic` or `elasticsearch-api-key`.
    pub kind: String,
    /// ES username (basic) or API key id (api key), after the command.
    pub principal: String,
    pub principal_before: String,
    /// The credential appeared in the before / after credential graph.
    pub existed: bool,
    pub exists: bool,
    /// At least one consumer had running tasks (before or after).
    pub live: bool,
    /// Total running tasks of the consumers, before / after.
    pub running_tasks_before: i64,
    pub running_tasks_after: i64,

    /// The ES user (or API key) exists, before / after.
    pub principal_existed: bool,
    pub principal_exists: bool,
    /// The ES user is enabled (for an API key: not invalidated, not expired).
    pub enabled_before: bool,
    pub enabled_after: bool,
    pub roles_before: Vec<String>,
    pub roles_after: Vec<String>,
    /// Roles in `roles_before` and not in `roles_after`.
    pub roles_lost: Vec<String>,
    pub roles_gained: Vec<String>,

    /// Probe of the value the consumers held before the command, made before it.
    pub authenticated_before: String,
    /// Probe of the value the consumers held before, made after the command:
    /// what running tasks (which read their value at start-up) experience now.
    pub before_value_after: String,
    /// Probe of the current value (what the next task to start will read).
    pub current_value_after: String,

    /// The value (fingerprint) changed; a new version with the same value is no change.
    pub value_changed: bool,
    /// When the new value was created (RFC 3339), if it changed.
    pub value_changed_at: String,
    /// Secrets whose AWSCURRENT version moved, value changed or not.
    pub versions_moved: Vec<String>,
    /// A source reads a pinned version instead of following AWSCURRENT.
    pub pinned: bool,
    /// Secrets of this credential deleted, or scheduled for deletion, by the command.
    pub secrets_removed: Vec<String>,
    pub secrets: Vec<String>,

    /// `cluster/service` of every consumer.
    pub consumers: Vec<String>,
    /// Consumers with running tasks.
    pub live_consumers: Vec<String>,
    /// Consumers still running tasks that started before the value changed
    /// (so they hold the old value). Empty unless `value_changed`.
    pub stale_consumers: Vec<String>,
    /// Running tasks that started before the value changed.
    pub stale_tasks: i64,
    /// Environments of the consumers (`prod`, `stage`, …), sorted, unique.
    pub environments: Vec<String>,
}

/// One ECS service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceFact {
    /// `cluster/service`.
    pub id: String,
    pub cluster: String,
    pub name: String,
    /// From the name's prefix (`prod-search-api` → `prod`); empty when none matches.
    pub environment: String,
    pub existed: bool,
    pub exists: bool,
    pub desired_before: i64,
    pub desired_after: i64,
    pub running_before: i64,
    pub running_after: i64,
    pub pending_after: i64,
    /// Rollout state of the primary deployment (`COMPLETED`, `IN_PROGRESS`, `FAILED`).
    pub rollout_before: String,
    pub rollout_after: String,
    pub deployments_after: i64,
    pub failed_tasks_after: i64,
    pub unhealthy_tasks_before: i64,
    pub unhealthy_tasks_after: i64,
    /// running ≥ desired, no failed rollout, no unhealthy task.
    pub healthy_before: bool,
    pub healthy_after: bool,
    /// Why it is not healthy after, in words; empty when healthy.
    pub degraded_reason: String,
    /// Running tasks that were already running before the command.
    pub tasks_from_before: i64,
    /// Credential ids this service consumes.
    pub consumes: Vec<String>,
}

/// One Secrets Manager secret referenced by a task definition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretFact {
    /// The secret's name.
    pub id: String,
    pub arn: String,
    pub existed: bool,
    pub exists: bool,
    pub deletion_scheduled_before: bool,
    pub deletion_scheduled_after: bool,
    pub version_before: String,
    pub version_after: String,
    pub version_moved: bool,
    pub value_changed: bool,
    pub value_changed_at: String,
    pub consumers: Vec<String>,
    /// Some consumer has running tasks.
    pub live: bool,
    /// Credential ids built from this secret.
    pub credentials: Vec<String>,
}
