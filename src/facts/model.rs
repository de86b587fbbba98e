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
    /// ES username (basic) or API key id (api key), before the command.
    pub principal_before: String,
    /// The credential appeared in the before credential graph.
    pub existed: bool,
    /// The credential appears in the after credential graph.
    pub exists: bool,
    /// At least one consumer had running tasks (before or after).
    pub live: bool,
    /// Total running tasks of the consumers, before the command.
    pub running_tasks_before: i64,
    /// Total running tasks of the consumers, after the command.
    pub running_tasks_after: i64,

    /// The ES user (or API key) existed before the command.
    pub principal_existed: bool,
    /// The ES user (or API key) exists after the command.
    pub principal_exists: bool,
    /// Before the command, the ES user was enabled (for an API key: not
    /// invalidated, not expired).
    pub enabled_before: bool,
    /// After the command, the ES user is enabled (for an API key: not
    /// invalidated, not expired).
    pub enabled_after: bool,
    /// The ES user's roles before the command.
    pub roles_before: Vec<String>,
    /// The ES user's roles after the command.
    pub roles_after: Vec<String>,
    /// Roles in `roles_before` and not in `roles_after`.
    pub roles_lost: Vec<String>,
    /// Roles in `roles_after` and not in `roles_before`.
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
    /// How the credential stopped existing, in words: `user search was
    /// disabled`, `API key k1 was deleted`, `secret s was deleted or
    /// scheduled for deletion` (joined with `; `); empty when it did not.
    pub removal: String,
    /// Names of the secrets this credential is read from.
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
    /// The ECS cluster (with `[[aws.targets]]`: `TARGET:CLUSTER`).
    pub cluster: String,
    /// The service's name.
    pub name: String,
    /// From the name's prefix (`prod-search-api` → `prod`); empty when none matches.
    pub environment: String,
    /// The service existed before the command.
    pub existed: bool,
    /// The service exists after the command.
    pub exists: bool,
    /// Desired task count before the command.
    pub desired_before: i64,
    /// Desired task count after the command.
    pub desired_after: i64,
    /// Running task count before the command.
    pub running_before: i64,
    /// Running task count after the command.
    pub running_after: i64,
    /// Pending task count after the command.
    pub pending_after: i64,
    /// Rollout state of the primary deployment (`COMPLETED`, `IN_PROGRESS`, `FAILED`).
    pub rollout_before: String,
    /// Rollout state of the primary deployment after the command.
    pub rollout_after: String,
    /// Number of deployments after the command (more than one: a rollout is
    /// under way).
    pub deployments_after: i64,
    /// Failed tasks of the primary deployment after the command.
    pub failed_tasks_after: i64,
    /// Running tasks whose health check reports UNHEALTHY, before the command.
    pub unhealthy_tasks_before: i64,
    /// Running tasks whose health check reports UNHEALTHY, after the command.
    pub unhealthy_tasks_after: i64,
    /// running ≥ desired, no failed rollout, no unhealthy task.
    pub healthy_before: bool,
    /// running ≥ desired, no failed rollout, no unhealthy task, after the command.
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
    /// The secret's ARN (empty when it does not exist).
    pub arn: String,
    /// The secret existed before the command.
    pub existed: bool,
    /// The secret exists after the command.
    pub exists: bool,
    /// The secret was scheduled for deletion before the command.
    pub deletion_scheduled_before: bool,
    /// The secret is scheduled for deletion after the command.
    pub deletion_scheduled_after: bool,
    /// The version AWSCURRENT was on before the command.
    pub version_before: String,
    /// The version AWSCURRENT is on after the command.
    pub version_after: String,
    /// AWSCURRENT moved to another version, value changed or not.
    pub version_moved: bool,
    /// The value (fingerprint) changed; a new version with the same value is no change.
    pub value_changed: bool,
    /// When the new value was created (RFC 3339), if it changed.
    pub value_changed_at: String,
    /// `cluster/service` of every service whose task definition references the secret.
    pub consumers: Vec<String>,
    /// Some consumer has running tasks.
    pub live: bool,
    /// Credential ids built from this secret.
    pub credentials: Vec<String>,
}
