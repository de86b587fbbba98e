//! Joining two snapshots (and, in `run`, the probes of the before-values)
//! into facts.
//!
//! Joins are by identity, not by name: credentials by `origin` (where their
//! parts come from — an API key's id changes when it is recreated, its secret
//! does not), services by `cluster/service`, secrets by name.
//!
//! "Started before the change" is judged two ways, because ECS `startedAt`
//! and Secrets Manager `CreatedDate` have whole-second resolution: a task that
//! was already in the before snapshot certainly started before anything the
//! command did; a task that appeared since is stale only if it started in a
//! second strictly before the new value was created. A task and a rotation in
//! the same second therefore count as fresh — the conservative reading for a
//! task opsguard did not see before, which can only have started during the
//! command.

use super::model::*;
use crate::config::environment_of;
use crate::snapshot::model::{
    CredentialState, ProbeResult, SecretState, ServiceState, Snapshot, TaskState, Timestamp,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Results of probing the before-values after the command, by credential
/// origin: `authenticated`, `rejected` or `unresolved`.
pub type BeforeValueProbes = HashMap<String, String>;

/// How the facts are being built.
pub struct Context<'a> {
    /// `run`, `check` or `diff`.
    pub mode: &'a str,
    pub environment_prefixes: &'a [String],
    /// `run` only: what the before-values do after the command.
    pub before_value_probes: Option<&'a BeforeValueProbes>,
}

fn probe_word(r: ProbeResult) -> String {
    match r {
        ProbeResult::Authenticated => "authenticated",
        ProbeResult::Rejected => "rejected",
        ProbeResult::Unresolved => "unresolved",
    }
    .to_owned()
}

fn rfc3339(t: &Timestamp) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Build the facts of a change from `before` to `after`. For `check`, pass
/// the same snapshot twice.
pub fn build(before: &Snapshot, after: &Snapshot, ctx: &Context<'_>) -> Facts {
    let comparable = before.fingerprint_key_id == after.fingerprint_key_id;
    let services_before: BTreeMap<String, &ServiceState> = before
        .services
        .iter()
        .map(|s| (s.service.to_string(), s))
        .collect();
    let services_after: BTreeMap<String, &ServiceState> = after
        .services
        .iter()
        .map(|s| (s.service.to_string(), s))
        .collect();
    let tasks_before: BTreeSet<&str> = before
        .services
        .iter()
        .flat_map(|s| s.tasks.iter().map(|t| t.arn.as_str()))
        .collect();

    let mut credentials = credential_facts(
        before,
        after,
        ctx,
        comparable,
        &services_after,
        &tasks_before,
    );
    credentials.sort_by(|a, b| a.id.cmp(&b.id));
    let services = service_facts(&services_before, &services_after, ctx, &tasks_before);
    let secrets = secret_facts(before, after, comparable, &credentials);

    Facts {
        schema: SCHEMA.to_owned(),
        mode: ctx.mode.to_owned(),
        before_taken_at: rfc3339(&before.taken_at),
        after_taken_at: rfc3339(&after.taken_at),
        credentials,
        services,
        secrets,
    }
}

fn credential_facts(
    before: &Snapshot,
    after: &Snapshot,
    ctx: &Context<'_>,
    comparable: bool,
    services_after: &BTreeMap<String, &ServiceState>,
    tasks_before: &BTreeSet<&str>,
) -> Vec<CredentialFact> {
    let by_origin = |s: &'_ Snapshot| -> BTreeMap<String, CredentialState> {
        s.credentials
            .iter()
            .map(|c| (c.origin.clone(), c.clone()))
            .collect()
    };
    let (b_all, a_all) = (by_origin(before), by_origin(after));
    let origins: BTreeSet<&String> = b_all.keys().chain(a_all.keys()).collect();
    let secrets_before: BTreeMap<&str, &SecretState> = before
        .secrets
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    let secrets_after: BTreeMap<&str, &SecretState> =
        after.secrets.iter().map(|s| (s.name.as_str(), s)).collect();

    let mut out = Vec::new();
    for origin in origins {
        let b = b_all.get(origin);
        let a = a_all.get(origin);
        let c = a.or(b).expect("in one of them");
        let mut f = CredentialFact {
            id: c.id.clone(),
            kind: serde_json::to_value(c.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            principal: a.and_then(|a| a.principal.clone()).unwrap_or_default(),
            principal_before: b.and_then(|b| b.principal.clone()).unwrap_or_default(),
            existed: b.is_some(),
            exists: a.is_some(),
            pinned: b.is_some_and(|b| b.pinned) || a.is_some_and(|a| a.pinned),
            ..Default::default()
        };
        f.running_tasks_before = b.map(running).unwrap_or(0);
        f.running_tasks_after = a.map(running).unwrap_or(0);
        f.live = f.running_tasks_before > 0 || f.running_tasks_after > 0;

        let mut consumers: BTreeSet<String> = BTreeSet::new();
        let mut live: BTreeSet<String> = BTreeSet::new();
        for x in b.iter().chain(a.iter()) {
            for k in &x.consumers {
                consumers.insert(k.service.to_string());
                if k.running_tasks > 0 {
                    live.insert(k.service.to_string());
                }
            }
        }
        let mut envs: BTreeSet<String> = consumers
            .iter()
            .map(|s| {
                environment_of(
                    s.split_once('/').map(|x| x.1).unwrap_or(s),
                    ctx.environment_prefixes,
                )
            })
            .filter(|e| !e.is_empty())
            .collect();
        f.environments = std::mem::take(&mut envs).into_iter().collect();
        f.consumers = consumers.into_iter().collect();
        f.live_consumers = live.into_iter().collect();

        let mut secrets: BTreeSet<String> = BTreeSet::new();
        for x in b.iter().chain(a.iter()) {
            secrets.extend(x.secrets.iter().map(|s| s.to_string()));
        }
        f.secrets_removed = secrets
            .iter()
            .filter(|s| {
                let was = secrets_before
                    .get(s.as_str())
                    .is_some_and(|x| x.exists && x.deleted_date.is_none());
                let is = secrets_after
                    .get(s.as_str())
                    .is_some_and(|x| x.exists && x.deleted_date.is_none());
                was && !is
            })
            .cloned()
            .collect();
        f.versions_moved = secrets
            .iter()
            .filter(|s| {
                let vb = secrets_before
                    .get(s.as_str())
                    .and_then(|x| x.current_version_id.as_ref());
                let va = secrets_after
                    .get(s.as_str())
                    .and_then(|x| x.current_version_id.as_ref());
                vb.is_some() && va.is_some() && vb != va
            })
            .cloned()
            .collect();
        f.secrets = secrets.into_iter().collect();

        principal_facts(&mut f, before, after, b, a);
        f.removal = removal(&f);

        f.authenticated_before = b
            .map(|b| probe_word(b.probe.result))
            .unwrap_or_else(|| "unknown".into());
        f.current_value_after = a
            .map(|a| probe_word(a.probe.result))
            .unwrap_or_else(|| "unknown".into());

        // Did the value the consumers read change?
        let (changed, changed_at) = match (b, a) {
            (Some(b), Some(a)) => value_change(b, a, comparable, &secrets_after),
            _ => (false, None),
        };
        f.value_changed = changed;
        f.value_changed_at = changed_at.as_ref().map(rfc3339).unwrap_or_default();

        f.before_value_after = match ctx.before_value_probes.and_then(|p| p.get(origin)) {
            Some(r) => r.clone(),
            // Unprobed: the before-value is the current value when it did not change.
            None if b.is_some() && a.is_some() && !changed => f.current_value_after.clone(),
            None => "unknown".into(),
        };

        if changed {
            let mut stale_consumers = Vec::new();
            for k in a.map(|a| a.consumers.as_slice()).unwrap_or(&[]) {
                let Some(svc) = services_after.get(&k.service.to_string()) else {
                    continue;
                };
                let stale = svc
                    .tasks
                    .iter()
                    .filter(|t| {
                        t.last_status == "RUNNING"
                            && k.task_definitions.contains(&t.task_definition_arn)
                    })
                    .filter(|t| is_stale(t, changed_at.as_ref(), tasks_before))
                    .count() as i64;
                if stale > 0 {
                    stale_consumers.push(k.service.to_string());
                    f.stale_tasks += stale;
                }
            }
            f.stale_consumers = stale_consumers;
        }
        out.push(f);
    }
    out
}

fn running(c: &CredentialState) -> i64 {
    c.consumers.iter().map(|k| i64::from(k.running_tasks)).sum()
}

/// A running task holds the value it read at start-up: stale when it started
/// before the value changed (see the module docs for the resolution rule).
fn is_stale(t: &TaskState, changed_at: Option<&Timestamp>, tasks_before: &BTreeSet<&str>) -> bool {
    if tasks_before.contains(t.arn.as_str()) {
        return true;
    }
    match (t.started_at, changed_at) {
        (Some(started), Some(changed)) => started.unix_timestamp() < changed.unix_timestamp(),
        // No start time: it cannot be shown fresh.
        (None, _) => true,
        (Some(_), None) => false,
    }
}

/// Whether any part's value changed, and when the newest new value was created.
fn value_change(
    b: &CredentialState,
    a: &CredentialState,
    comparable: bool,
    secrets_after: &BTreeMap<&str, &SecretState>,
) -> (bool, Option<Timestamp>) {
    let mut changed = false;
    let mut at: Option<Timestamp> = None;
    for (sb, sa) in b.sources.iter().zip(a.sources.iter()) {
        let differs = if comparable {
            match (&sb.fingerprint, &sa.fingerprint) {
                (Some(x), Some(y)) => x != y,
                // A value appeared or vanished: that is a change too.
                (x, y) => x.is_some() != y.is_some(),
            }
        } else {
            sb.version_read != sa.version_read
        };
        if differs {
            changed = true;
            let created = sa.secret.as_ref().and_then(|name| {
                let st = secrets_after.get(name.as_str())?;
                let v = sa.version_read.as_ref()?;
                st.versions
                    .iter()
                    .find(|x| &x.version_id == v)?
                    .created_date
            });
            if let Some(c) = created {
                at = Some(at.map_or(c, |x: Timestamp| x.max(c)));
            }
        }
    }
    (changed, at)
}

/// How a credential stopped existing, in words (`user search was
/// disabled`), for messages: empty when it did not.
fn removal(f: &CredentialFact) -> String {
    let api_key = f.kind == "elasticsearch-api-key";
    let principal = if f.principal_before.is_empty() {
        &f.principal
    } else {
        &f.principal_before
    };
    let who = if api_key {
        format!("API key {principal}")
    } else {
        format!("user {principal}")
    };
    let mut parts = Vec::new();
    if f.principal_existed && !f.principal_exists {
        parts.push(format!("{who} was deleted"));
    } else if f.principal_existed && f.enabled_before && !f.enabled_after {
        parts.push(if api_key {
            format!("{who} was invalidated or expired")
        } else {
            format!("{who} was disabled")
        });
    }
    match f.secrets_removed.as_slice() {
        [] => {}
        [one] => parts.push(format!(
            "secret {one} was deleted or scheduled for deletion"
        )),
        many => parts.push(format!(
            "secrets {} were deleted or scheduled for deletion",
            many.join(", ")
        )),
    }
    parts.join("; ")
}

fn principal_facts(
    f: &mut CredentialFact,
    before: &Snapshot,
    after: &Snapshot,
    b: Option<&CredentialState>,
    a: Option<&CredentialState>,
) {
    let api_key = f.kind == "elasticsearch-api-key";
    let lookup = |s: &Snapshot, c: Option<&CredentialState>| -> (bool, bool, Vec<String>) {
        let Some(p) = c.and_then(|c| c.principal.as_deref()) else {
            return (false, false, Vec::new());
        };
        if api_key {
            match s.elasticsearch.api_keys.iter().find(|k| k.id == p) {
                Some(k) if k.found => {
                    let expired = k.expiration.is_some_and(|e| e <= s.taken_at);
                    (true, !k.invalidated && !expired, Vec::new())
                }
                _ => (false, false, Vec::new()),
            }
        } else {
            match s.elasticsearch.users.iter().find(|u| u.username == p) {
                Some(u) => (true, u.enabled, u.roles.clone()),
                None => (false, false, Vec::new()),
            }
        }
    };
    // The user a credential names normally stays the same; judge "removed"
    // against the before principal, so a deleted user is not hidden by a
    // username secret that changed at the same time.
    let (existed, enabled_before, roles_before) = lookup(before, b);
    let (exists, enabled_after, roles_after) = if api_key {
        lookup(after, a)
    } else {
        lookup(after, b.or(a))
    };
    f.principal_existed = existed;
    f.principal_exists = exists;
    f.enabled_before = enabled_before;
    f.enabled_after = enabled_after;
    f.roles_lost = roles_before
        .iter()
        .filter(|r| !roles_after.contains(r))
        .cloned()
        .collect();
    f.roles_gained = roles_after
        .iter()
        .filter(|r| !roles_before.contains(r))
        .cloned()
        .collect();
    f.roles_before = roles_before;
    f.roles_after = roles_after;
}

fn service_facts(
    before: &BTreeMap<String, &ServiceState>,
    after: &BTreeMap<String, &ServiceState>,
    ctx: &Context<'_>,
    tasks_before: &BTreeSet<&str>,
) -> Vec<ServiceFact> {
    let ids: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    ids.into_iter()
        .map(|id| {
            let b = before.get(id).copied();
            let a = after.get(id).copied();
            let s = a.or(b).expect("in one of them");
            let mut f = ServiceFact {
                id: id.clone(),
                cluster: s.service.cluster.clone(),
                name: s.service.service.clone(),
                environment: environment_of(&s.service.service, ctx.environment_prefixes),
                existed: b.is_some(),
                exists: a.is_some(),
                ..Default::default()
            };
            if let Some(b) = b {
                f.desired_before = i64::from(b.desired_count);
                f.running_before = i64::from(b.running_count);
                f.rollout_before = primary_rollout(b);
                f.unhealthy_tasks_before = unhealthy(b);
                f.healthy_before = health(b).is_none();
            }
            if let Some(a) = a {
                f.desired_after = i64::from(a.desired_count);
                f.running_after = i64::from(a.running_count);
                f.pending_after = i64::from(a.pending_count);
                f.rollout_after = primary_rollout(a);
                f.deployments_after = a.deployments.len() as i64;
                f.failed_tasks_after = a
                    .deployments
                    .iter()
                    .find(|d| d.status == "PRIMARY")
                    .map(|d| i64::from(d.failed_tasks))
                    .unwrap_or(0);
                f.unhealthy_tasks_after = unhealthy(a);
                let reason = health(a);
                f.healthy_after = reason.is_none();
                f.degraded_reason = reason.unwrap_or_default();
                f.tasks_from_before = a
                    .tasks
                    .iter()
                    .filter(|t| t.last_status == "RUNNING" && tasks_before.contains(t.arn.as_str()))
                    .count() as i64;
                f.consumes = a.consumes.clone();
            } else {
                f.degraded_reason = "the service no longer exists".into();
                f.consumes = b.map(|b| b.consumes.clone()).unwrap_or_default();
            }
            f
        })
        .collect()
}

fn primary_rollout(s: &ServiceState) -> String {
    s.deployments
        .iter()
        .find(|d| d.status == "PRIMARY")
        .and_then(|d| d.rollout_state.clone())
        .unwrap_or_default()
}

fn unhealthy(s: &ServiceState) -> i64 {
    s.tasks
        .iter()
        .filter(|t| t.health_status.as_deref() == Some("UNHEALTHY"))
        .count() as i64
}

/// `None` when healthy, else why not.
fn health(s: &ServiceState) -> Option<String> {
    let mut why = Vec::new();
    if s.status != "ACTIVE" {
        why.push(format!("status {}", s.status));
    }
    if s.running_count < s.desired_count {
        why.push(format!(
            "{} of {} desired tasks running",
            s.running_count, s.desired_count
        ));
    }
    if primary_rollout(s) == "FAILED" {
        why.push("the rollout FAILED".to_owned());
    }
    let n = unhealthy(s);
    if n > 0 {
        why.push(format!(
            "{n} unhealthy task{}",
            if n == 1 { "" } else { "s" }
        ));
    }
    (!why.is_empty()).then(|| why.join(", "))
}

fn secret_facts(
    before: &Snapshot,
    after: &Snapshot,
    comparable: bool,
    creds: &[CredentialFact],
) -> Vec<SecretFact> {
    let b: BTreeMap<&str, &SecretState> = before
        .secrets
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    let a: BTreeMap<&str, &SecretState> =
        after.secrets.iter().map(|s| (s.name.as_str(), s)).collect();
    let running: BTreeMap<String, bool> = before
        .services
        .iter()
        .chain(after.services.iter())
        .map(|s| (s.service.to_string(), s.running_count > 0))
        .fold(BTreeMap::new(), |mut m, (k, v)| {
            *m.entry(k).or_insert(false) |= v;
            m
        });
    let names: BTreeSet<&str> = b.keys().chain(a.keys()).copied().collect();
    names
        .into_iter()
        .map(|name| {
            let sb = b.get(name).copied();
            let sa = a.get(name).copied();
            let s = sa.or(sb).expect("in one of them");
            let mut consumers: BTreeSet<String> = BTreeSet::new();
            for x in sb.iter().chain(sa.iter()) {
                consumers.extend(x.consumers.iter().map(|c| c.to_string()));
            }
            let version_before = sb
                .and_then(|x| x.current_version_id.clone())
                .unwrap_or_default();
            let version_after = sa
                .and_then(|x| x.current_version_id.clone())
                .unwrap_or_default();
            let version_moved = !version_before.is_empty()
                && !version_after.is_empty()
                && version_before != version_after;
            let fb = sb.and_then(|x| x.current_fingerprint.as_ref());
            let fa = sa.and_then(|x| x.current_fingerprint.as_ref());
            // Without comparable fingerprints, a moved version is the best evidence.
            let value_changed = if comparable {
                matches!((fb, fa), (Some(x), Some(y)) if x != y)
            } else {
                version_moved
            };
            let value_changed_at = if value_changed {
                sa.and_then(|x| x.versions.iter().find(|v| v.version_id == version_after))
                    .and_then(|v| v.created_date.as_ref())
                    .map(rfc3339)
                    .unwrap_or_default()
            } else {
                String::new()
            };
            SecretFact {
                id: name.to_owned(),
                arn: s.arn.as_ref().map(|a| a.to_string()).unwrap_or_default(),
                existed: sb.is_some_and(|x| x.exists),
                exists: sa.is_some_and(|x| x.exists),
                deletion_scheduled_before: sb.is_some_and(|x| x.deleted_date.is_some()),
                deletion_scheduled_after: sa.is_some_and(|x| x.deleted_date.is_some()),
                version_moved,
                version_before,
                version_after,
                value_changed,
                value_changed_at,
                live: consumers
                    .iter()
                    .any(|c| running.get(c).copied().unwrap_or(false)),
                consumers: consumers.into_iter().collect(),
                credentials: creds
                    .iter()
                    .filter(|c| c.secrets.iter().any(|s| s == name))
                    .map(|c| c.id.clone())
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
