//! The fact plan rules read: one Terraform resource change joined to the
//! live credential graph (`opsguard plan`, see [`crate::plan`]).
//!
//! Like the other facts it is flat and every field has a default, so a
//! rule's `[[test]]` states only what it cares about. It never holds an
//! attribute value Terraform marks sensitive: identities (addresses, names,
//! key ids, ARNs), counts and the words of a provisioner's command only, and
//! those pass through the plan's redactor first.

use serde::{Deserialize, Serialize};

/// What a resource change is, for rules: the resource types opsguard knows.
pub const CHANGE_KINDS: [&str; 6] = [
    "es-api-key",     // elasticstack_elasticsearch_security_api_key
    "es-user",        // elasticstack_elasticsearch_security_user
    "secret",         // aws_secretsmanager_secret
    "secret-version", // aws_secretsmanager_secret_version
    "ecs-service",    // aws_ecs_service
    "other",
];

/// One entry of the plan's `resource_changes`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChangeFact {
    /// The resource address, e.g. `module.search.elasticstack_elasticsearch_security_api_key.search`.
    pub id: String,
    /// The Terraform resource type.
    pub resource_type: String,
    /// One of [`CHANGE_KINDS`].
    pub kind: String,
    /// Terraform's `change.actions`, e.g. `["delete", "create"]`.
    pub actions: Vec<String>,
    /// In one word: `create`, `update`, `delete`, `replace`, `read`, `no-op` or `forget`.
    pub action: String,
    /// For a replacement: `delete-before-create` (Terraform's default) or
    /// `create-before-destroy`; empty otherwise.
    pub replace_order: String,
    /// `action`, with the replacement order when there is one, for messages:
    /// `replace, delete-before-create`.
    pub action_detail: String,
    /// The apply creates the resource (a create or a replacement).
    pub creates: bool,
    /// The apply destroys the existing object (a delete or a replacement).
    pub deletes: bool,
    /// An in-place update.
    pub updates: bool,

    /// No live graph was read (`--offline`): judged by resource type alone.
    pub offline: bool,
    /// How the change was matched to the live graph, in words
    /// (`API key id …`, `username …`, `secret name …`); empty when it was not.
    pub matched_by: String,
    /// The live credential this change touches (its id in the snapshot).
    pub credential: String,
    /// Its principal: the ES username, or the API key id.
    pub principal: String,
    /// The Secrets Manager secret this change touches (its name).
    pub secret: String,
    /// Services consuming the credential or secret (`cluster/service`).
    pub consumers: Vec<String>,
    /// Those with running tasks.
    pub live_consumers: Vec<String>,
    /// A consumer has running tasks: changing this breaks something now.
    pub live: bool,
    /// Who holds it, for messages: the live consumers (for a secret version:
    /// those this plan does not redeploy, which keep the old value),
    /// `no running task`, or (offline) `unknown consumers (--offline)`.
    pub holders: String,

    /// An ES user's password changes (`password`, `password_wo` or
    /// `password_wo_version` differs, or becomes unknown).
    pub password_changed: bool,
    /// A secret version gets a new value (created, replaced, or its
    /// `secret_string`/`secret_binary`/`secret_string_wo_version` changes).
    pub value_changed: bool,
    /// Live consumers this plan redeploys (an `aws_ecs_service` change that
    /// starts new tasks: replaced, a new task definition, or
    /// `force_new_deployment` with changed `triggers`).
    pub redeployed_consumers: Vec<String>,
    /// Live consumers it does not redeploy: they keep the old value.
    pub stale_consumers: Vec<String>,
    /// Offline: addresses of the ECS services the plan redeploys.
    pub redeploys_in_plan: Vec<String>,

    /// `local-exec`/`remote-exec` provisioners of this resource, each as
    /// `TYPE: COMMAND` (a command Terraform only knows at apply is `(computed)`).
    pub provisioners: Vec<String>,

    /// ECS service: `cluster/service`, and the desired count before and
    /// after; `desired_known` is false when either side is unknown or absent.
    pub service: String,
    pub desired_before: i64,
    pub desired_after: i64,
    pub desired_known: bool,
}
