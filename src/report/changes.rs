//! What changed between two snapshots, in words: the `changes` of a report.
//!
//! This is the explanation a person reads under the verdict, so it names
//! things the way an operator does (the user, the secret, `cluster/service`)
//! and says *what kind* of change it was, not just that bytes differ: a new
//! secret version with the same value is "same value", not a rotation; a
//! password changed in Elasticsearch behind its secret's back reads as the
//! credential's probe going from `authenticated` to `rejected`.
//!
//! It is descriptive, never a verdict: rules decide what is wrong, from facts.
//! It prints no secret values (snapshots hold none) and no fingerprint at all
//! (the diff shows eight hex digits of one; this has no need to).

use super::model::Change;
use super::short;
use crate::snapshot::model::{
    ApiKeyState, CredentialState, DeploymentState, EsUser, ProbeResult, SecretState, ServiceState,
    Snapshot, TaskState, Timestamp,
};
use std::collections::{BTreeMap, BTreeSet};

/// Every change from `before` to `after`, sorted by (kind, target); the
/// changes of one target keep a fixed order (existence first, then details).
pub fn between(before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    let mut out = Changes::default();
    cluster(before, after, &mut out);
    users(before, after, &mut out);
    api_keys(before, after, &mut out);
    secrets(before, after, &mut out);
    services(before, after, &mut out);
    credentials(before, after, &mut out);
    let mut changes = out.0;
    // Stable: the order within one target is the order pushed above.
    changes.sort_by(|a, b| (&a.kind, &a.target).cmp(&(&b.kind, &b.target)));
    changes
}

#[derive(Default)]
struct Changes(Vec<Change>);

impl Changes {
    fn push(&mut self, kind: &str, target: &str, change: &str, detail: impl Into<String>) {
        self.0.push(Change {
            kind: kind.to_owned(),
            target: target.to_owned(),
            change: change.to_owned(),
            detail: detail.into(),
        });
    }
}

const ADDED: &str = "added";
const REMOVED: &str = "removed";
const CHANGED: &str = "changed";

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn opt(s: Option<&str>) -> String {
    s.map_or_else(|| "none".to_owned(), |s| format!("{s:?}"))
}

/// Items of `a` not in `b`, sorted and unique.
fn minus<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let b: BTreeSet<&T> = b.iter().collect();
    a.iter()
        .filter(|x| !b.contains(x))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn cluster(before: &Snapshot, after: &Snapshot, out: &mut Changes) {
    let (b, a) = (&before.elasticsearch, &after.elasticsearch);
    if b.health.status != a.health.status {
        out.push(
            "cluster",
            &a.cluster_name,
            CHANGED,
            format!("health {} → {}", b.health.status, a.health.status),
        );
    }
    if b.health.number_of_nodes != a.health.number_of_nodes {
        out.push(
            "cluster",
            &a.cluster_name,
            CHANGED,
            format!(
                "nodes {} → {}",
                b.health.number_of_nodes, a.health.number_of_nodes
            ),
        );
    }
}

// ---------------------------------------------------------------- users

fn users(before: &Snapshot, after: &Snapshot, out: &mut Changes) {
    let b: BTreeMap<&str, &EsUser> = by(&before.elasticsearch.users, |u| &u.username);
    let a: BTreeMap<&str, &EsUser> = by(&after.elasticsearch.users, |u| &u.username);
    for (name, u) in &a {
        if !b.contains_key(name) {
            out.push(
                "user",
                name,
                ADDED,
                format!(
                    "created, {}, roles: {}",
                    enabled_word(u.enabled),
                    list(&u.roles)
                ),
            );
        }
    }
    for (name, old) in &b {
        let Some(new) = a.get(name) else {
            out.push(
                "user",
                name,
                REMOVED,
                format!("deleted (had roles: {})", list(&old.roles)),
            );
            continue;
        };
        if old.enabled != new.enabled {
            out.push("user", name, CHANGED, enabled_word(new.enabled));
        }
        let lost = minus(&old.roles, &new.roles);
        if !lost.is_empty() {
            out.push(
                "user",
                name,
                CHANGED,
                format!("roles removed: {}", list(&lost)),
            );
        }
        let gained = minus(&new.roles, &old.roles);
        if !gained.is_empty() {
            out.push(
                "user",
                name,
                CHANGED,
                format!("roles added: {}", list(&gained)),
            );
        }
        if old.full_name != new.full_name {
            out.push(
                "user",
                name,
                CHANGED,
                format!(
                    "full_name {} → {}",
                    opt(old.full_name.as_deref()),
                    opt(new.full_name.as_deref())
                ),
            );
        }
        if old.email != new.email {
            out.push(
                "user",
                name,
                CHANGED,
                format!(
                    "email {} → {}",
                    opt(old.email.as_deref()),
                    opt(new.email.as_deref())
                ),
            );
        }
        let keys: BTreeSet<&String> = old.metadata.keys().chain(new.metadata.keys()).collect();
        for key in keys {
            const MAX: usize = 40;
            let detail = match (old.metadata.get(key), new.metadata.get(key)) {
                (Some(o), Some(n)) if o == n => continue,
                (Some(o), Some(n)) => format!(
                    "metadata.{key}: {} → {}",
                    short::json(o, MAX),
                    short::json(n, MAX)
                ),
                (None, Some(n)) => format!("metadata.{key} added: {}", short::json(n, MAX)),
                (Some(o), None) => format!("metadata.{key} removed (was {})", short::json(o, MAX)),
                (None, None) => continue,
            };
            out.push("user", name, CHANGED, detail);
        }
    }
}

fn enabled_word(enabled: bool) -> &'static str {
    if enabled {
        "enabled"
    } else {
        "disabled"
    }
}

// ---------------------------------------------------------------- API keys

fn api_keys(before: &Snapshot, after: &Snapshot, out: &mut Changes) {
    // A snapshot holds only the keys its credentials resolve to, so a key
    // missing from one side left (or entered) scope; it was not necessarily
    // deleted (or created). `found` and `invalidated` say what happened to it.
    let b: BTreeMap<&str, &ApiKeyState> = by(&before.elasticsearch.api_keys, |k| &k.id);
    let a: BTreeMap<&str, &ApiKeyState> = by(&after.elasticsearch.api_keys, |k| &k.id);
    for (id, k) in &a {
        if b.contains_key(id) {
            continue;
        }
        let detail = if !k.found {
            "referenced by a credential but does not exist".to_owned()
        } else {
            let made = match k.creation {
                Some(t) if t > before.taken_at => format!("created at {}", short::time(&t)),
                Some(t) => format!(
                    "now referenced by a credential (created {})",
                    short::time(&t)
                ),
                None => "now referenced by a credential".to_owned(),
            };
            if k.invalidated {
                format!("{made}, invalidated")
            } else {
                made
            }
        };
        out.push("api-key", id, ADDED, with_name(detail, k));
    }
    for (id, old) in &b {
        let Some(new) = a.get(id) else {
            out.push(
                "api-key",
                id,
                REMOVED,
                with_name("no longer referenced by any credential".to_owned(), old),
            );
            continue;
        };
        if old.found && !new.found {
            out.push("api-key", id, REMOVED, with_name("deleted".to_owned(), new));
        } else if !old.found && new.found {
            out.push("api-key", id, ADDED, with_name("appeared".to_owned(), new));
        }
        if !old.invalidated && new.invalidated {
            out.push(
                "api-key",
                id,
                CHANGED,
                with_name("invalidated".to_owned(), new),
            );
        }
        if old.expiration != new.expiration {
            let t = |t: &Option<Timestamp>| t.as_ref().map_or("never".to_owned(), short::time);
            out.push(
                "api-key",
                id,
                CHANGED,
                format!("expiration {} → {}", t(&old.expiration), t(&new.expiration)),
            );
        }
    }
}

fn with_name(detail: String, k: &ApiKeyState) -> String {
    match &k.name {
        Some(n) => format!("{detail} (name {n:?})"),
        None => detail,
    }
}

// ---------------------------------------------------------------- secrets

fn secrets(before: &Snapshot, after: &Snapshot, out: &mut Changes) {
    let b: BTreeMap<&str, &SecretState> = by(&before.secrets, |s| s.name.as_str());
    let a: BTreeMap<&str, &SecretState> = by(&after.secrets, |s| s.name.as_str());
    let comparable = before.fingerprint_key_id == after.fingerprint_key_id;
    for (name, new) in &a {
        let old = b.get(name);
        let existed = old.is_some_and(|s| s.exists);
        if new.exists && !existed {
            let created_now =
                old.is_some() || new.created_date.is_some_and(|t| t > before.taken_at);
            let verb = if created_now {
                "created"
            } else {
                "now referenced by a task definition"
            };
            out.push(
                "secret",
                name,
                ADDED,
                format!(
                    "{verb} (AWSCURRENT {})",
                    new.current_version_id.as_deref().map_or("none", short::id)
                ),
            );
        }
    }
    for (name, old) in &b {
        let Some(new) = a.get(name) else {
            if old.exists {
                out.push(
                    "secret",
                    name,
                    REMOVED,
                    "no longer referenced by any task definition",
                );
            }
            continue;
        };
        if old.exists && !new.exists {
            out.push("secret", name, REMOVED, "deleted");
            continue;
        }
        if !new.exists {
            continue;
        }
        match (old.deleted_date, new.deleted_date) {
            (None, Some(t)) => out.push(
                "secret",
                name,
                CHANGED,
                format!("deletion scheduled ({})", short::time(&t)),
            ),
            (Some(_), None) if old.exists => {
                out.push("secret", name, CHANGED, "deletion cancelled (restored)")
            }
            _ => {}
        }
        if !old.exists {
            continue; // reported as added above
        }
        let value = value_note(comparable, old, new);
        if old.current_version_id != new.current_version_id {
            let v = |v: &Option<String>| v.as_deref().map_or("none", short::id).to_owned();
            out.push(
                "secret",
                name,
                CHANGED,
                format!(
                    "AWSCURRENT moved {} → {} ({value})",
                    v(&old.current_version_id),
                    v(&new.current_version_id)
                ),
            );
        } else if comparable
            && old.current_fingerprint.is_some()
            && new.current_fingerprint.is_some()
            && old.current_fingerprint != new.current_fingerprint
        {
            out.push(
                "secret",
                name,
                CHANGED,
                "AWSCURRENT value changed under the same version id",
            );
        }
    }
}

/// Whether the AWSCURRENT *value* changed, as far as the fingerprints can tell.
fn value_note(comparable: bool, old: &SecretState, new: &SecretState) -> &'static str {
    if !comparable {
        return "value comparison unavailable: different fingerprint keys";
    }
    match (&old.current_fingerprint, &new.current_fingerprint) {
        (Some(o), Some(n)) if o == n => "same value",
        (Some(_), Some(_)) => "value changed",
        _ => "value not read in both snapshots",
    }
}

// ---------------------------------------------------------------- services and tasks

fn services(before: &Snapshot, after: &Snapshot, out: &mut Changes) {
    let b: BTreeMap<String, &ServiceState> = before
        .services
        .iter()
        .map(|s| (s.service.to_string(), s))
        .collect();
    let a: BTreeMap<String, &ServiceState> = after
        .services
        .iter()
        .map(|s| (s.service.to_string(), s))
        .collect();
    for (name, new) in &a {
        if !b.contains_key(name) {
            out.push(
                "service",
                name,
                ADDED,
                format!(
                    "created: desired {}, running {}, task definition {}",
                    new.desired_count,
                    new.running_count,
                    short::task_definition(&new.task_definition)
                ),
            );
            tasks(name, &[], &new.tasks, out);
        }
    }
    for (name, old) in &b {
        let Some(new) = a.get(name) else {
            out.push(
                "service",
                name,
                REMOVED,
                format!(
                    "gone (was desired {}, running {})",
                    old.desired_count, old.running_count
                ),
            );
            tasks(name, &old.tasks, &[], out);
            continue;
        };
        if old.status != new.status {
            out.push(
                "service",
                name,
                CHANGED,
                format!("status {} → {}", old.status, new.status),
            );
        }
        for (what, o, n) in [
            ("desired", old.desired_count, new.desired_count),
            ("running", old.running_count, new.running_count),
            ("pending", old.pending_count, new.pending_count),
        ] {
            if o != n {
                out.push("service", name, CHANGED, format!("{what} count {o} → {n}"));
            }
        }
        if old.task_definition != new.task_definition {
            out.push(
                "service",
                name,
                CHANGED,
                format!(
                    "task definition {} → {}",
                    short::task_definition(&old.task_definition),
                    short::task_definition(&new.task_definition)
                ),
            );
        }
        deployments(name, old, new, out);
        tasks(name, &old.tasks, &new.tasks, out);
    }
}

/// The deployment ECS is rolling towards: `PRIMARY`, else the newest.
fn primary(s: &ServiceState) -> Option<&DeploymentState> {
    s.deployments
        .iter()
        .find(|d| d.status == "PRIMARY")
        .or_else(|| s.deployments.iter().max_by_key(|d| d.created_at))
}

fn rollout(d: &DeploymentState) -> &str {
    d.rollout_state.as_deref().unwrap_or("unknown")
}

fn deployments(name: &str, old: &ServiceState, new: &ServiceState, out: &mut Changes) {
    match (primary(old), primary(new)) {
        (Some(o), Some(n)) if o.id == n.id => {
            if o.rollout_state != n.rollout_state {
                let reason = match &n.rollout_state_reason {
                    Some(r) if n.rollout_state.as_deref() == Some("FAILED") => format!(": {r}"),
                    _ => String::new(),
                };
                out.push(
                    "service",
                    name,
                    CHANGED,
                    format!("rollout {} → {}{reason}", rollout(o), rollout(n)),
                );
            }
            if n.failed_tasks > o.failed_tasks {
                out.push(
                    "service",
                    name,
                    CHANGED,
                    format!("failed tasks {} → {}", o.failed_tasks, n.failed_tasks),
                );
            }
        }
        (_, Some(n)) => {
            let td = match short::task_definition(&n.task_definition) {
                "" => String::new(),
                td => format!(", task definition {td}"),
            };
            out.push(
                "service",
                name,
                CHANGED,
                format!("new deployment {} (rollout {}{td})", n.id, rollout(n)),
            )
        }
        (Some(_), None) => out.push("service", name, CHANGED, "no deployment any more"),
        (None, None) => {}
    }
    if old.deployments.len() != new.deployments.len() {
        out.push(
            "service",
            name,
            CHANGED,
            format!(
                "deployments {} → {}",
                old.deployments.len(),
                new.deployments.len()
            ),
        );
    }
}

fn tasks(service: &str, old: &[TaskState], new: &[TaskState], out: &mut Changes) {
    let old_arns: BTreeSet<&str> = old.iter().map(|t| t.arn.as_str()).collect();
    let new_arns: BTreeSet<&str> = new.iter().map(|t| t.arn.as_str()).collect();
    let gone: Vec<&TaskState> = old
        .iter()
        .filter(|t| !new_arns.contains(t.arn.as_str()))
        .collect();
    let started: Vec<&TaskState> = new
        .iter()
        .filter(|t| !old_arns.contains(t.arn.as_str()))
        .collect();
    let tasks = |n: usize| short::count(n, "task", "tasks");
    match (gone.len(), started.len()) {
        (0, 0) => {}
        (g, 0) => out.push(
            "task",
            service,
            REMOVED,
            format!("{} gone (started {})", tasks(g), span(&gone)),
        ),
        (0, s) => out.push(
            "task",
            service,
            ADDED,
            format!("{} started at {}", tasks(s), span(&started)),
        ),
        (g, s) => {
            let head = if g == s {
                format!("{} replaced", tasks(g))
            } else {
                "tasks replaced".to_owned()
            };
            out.push(
                "task",
                service,
                CHANGED,
                format!(
                    "{head}: {g} old gone (started {}), {s} new started at {}",
                    span(&gone),
                    span(&started)
                ),
            );
        }
    }
    let unhealthy = |ts: &[TaskState]| {
        ts.iter()
            .filter(|t| t.health_status.as_deref() == Some("UNHEALTHY"))
            .count()
    };
    let (uo, un) = (unhealthy(old), unhealthy(new));
    if uo != un && !(old.is_empty() || new.is_empty()) {
        out.push(
            "task",
            service,
            CHANGED,
            format!("unhealthy tasks {uo} → {un}"),
        );
    }
}

/// When a group of tasks started: one instant, or the first–last range.
fn span(tasks: &[&TaskState]) -> String {
    let times: Vec<Timestamp> = tasks.iter().filter_map(|t| t.started_at).collect();
    let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) else {
        return "at an unknown time".to_owned();
    };
    if first == last {
        short::time(first)
    } else {
        format!("{}–{}", short::time(first), short::time(last))
    }
}

// ---------------------------------------------------------------- credentials

fn credentials(before: &Snapshot, after: &Snapshot, out: &mut Changes) {
    // Joined by origin (where the parts are read from), not id: a rotation
    // may change the principal and so the id, and it is still one credential.
    let b: BTreeMap<&str, &CredentialState> = by(&before.credentials, |c| &c.origin);
    let a: BTreeMap<&str, &CredentialState> = by(&after.credentials, |c| &c.origin);
    for (origin, new) in &a {
        if !b.contains_key(origin) {
            out.push(
                "credential",
                &new.id,
                ADDED,
                format!(
                    "now consumed by {} (principal {}, probe {})",
                    list(&consumer_names(new)),
                    new.principal.as_deref().unwrap_or("unknown"),
                    probe_word(new.probe.result)
                ),
            );
        }
    }
    for (origin, old) in &b {
        let Some(new) = a.get(origin) else {
            out.push(
                "credential",
                &old.id,
                REMOVED,
                format!(
                    "no longer consumed (was consumed by {})",
                    list(&consumer_names(old))
                ),
            );
            continue;
        };
        let target = new.id.as_str();
        if old.id != new.id {
            out.push(
                "credential",
                target,
                CHANGED,
                format!("id {} → {}", old.id, new.id),
            );
        }
        if old.principal != new.principal {
            let p = |p: &Option<String>| p.clone().unwrap_or_else(|| "unknown".to_owned());
            out.push(
                "credential",
                target,
                CHANGED,
                format!("principal {} → {}", p(&old.principal), p(&new.principal)),
            );
        }
        if old.probe.result != new.probe.result {
            out.push(
                "credential",
                target,
                CHANGED,
                format!(
                    "probe {} → {}",
                    probe_word(old.probe.result),
                    probe_word(new.probe.result)
                ),
            );
        }
        let (oc, nc) = (consumer_names(old), consumer_names(new));
        let added = minus(&nc, &oc);
        if !added.is_empty() {
            out.push(
                "credential",
                target,
                CHANGED,
                format!("consumers added: {}", list(&added)),
            );
        }
        let removed = minus(&oc, &nc);
        if !removed.is_empty() {
            out.push(
                "credential",
                target,
                CHANGED,
                format!("consumers removed: {}", list(&removed)),
            );
        }
        if old.pinned != new.pinned {
            let what = if new.pinned {
                "now reads a pinned secret version"
            } else {
                "follows AWSCURRENT again (no longer pinned)"
            };
            out.push("credential", target, CHANGED, what);
        }
    }
}

fn consumer_names(c: &CredentialState) -> Vec<String> {
    let mut v: Vec<String> = c.consumers.iter().map(|k| k.service.to_string()).collect();
    v.sort();
    v
}

pub(crate) fn probe_word(p: ProbeResult) -> &'static str {
    match p {
        ProbeResult::Authenticated => "authenticated",
        ProbeResult::Rejected => "rejected",
        ProbeResult::Unresolved => "unresolved",
    }
}

fn by<'a, T, F>(items: &'a [T], key: F) -> BTreeMap<&'a str, &'a T>
where
    F: Fn(&'a T) -> &'a str,
{
    items.iter().map(|t| (key(t), t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::*;

    fn lines(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| format!("{} {} {}: {}", c.kind, c.target, c.change, c.detail))
            .collect()
    }

    #[test]
    fn identical_snapshots_have_no_changes() {
        let s = incident_before();
        assert_eq!(between(&s, &s), vec![]);
    }

    #[test]
    fn the_incident_reads_as_rotation_without_redeploy() {
        let before = incident_before();
        let after = incident_after();
        let got = lines(&between(&before, &after));
        assert_eq!(
            got,
            vec![
                "secret elasticsearch/catalogue_api/items/password changed: AWSCURRENT moved 1a1a1a1a → 2b2b2b2b (value changed)",
                "secret elasticsearch/catalogue_api/items/username changed: AWSCURRENT moved 3c3c3c3c → 4d4d4d4d (same value)",
                "secret elasticsearch/catalogue_api/search/password changed: AWSCURRENT moved 5e5e5e5e → 6f6f6f6f (value changed)",
                "secret elasticsearch/catalogue_api/search/username changed: AWSCURRENT moved 7a7a7a7a → 8b8b8b8b (same value)",
            ]
        );
    }

    #[test]
    fn a_password_changed_behind_the_secret_shows_as_a_rejected_probe() {
        let before = incident_before();
        let mut after = before.clone();
        credential_mut(&mut after, "search").probe.result = ProbeResult::Rejected;
        assert_eq!(
            lines(&between(&before, &after)),
            vec!["credential search changed: probe authenticated → rejected"]
        );
    }

    #[test]
    fn the_redeploy_afterwards_shows_tasks_replaced_and_the_stage_count() {
        let before = incident_before();
        let mut after = incident_after();
        let svc = service_mut(&mut after, "prod-search-api");
        svc.tasks = vec![
            task("new1", "2021-07-27T14:40:11Z"),
            task("new2", "2021-07-27T14:40:13Z"),
            task("new3", "2021-07-27T14:40:12Z"),
        ];
        svc.deployments = vec![DeploymentState {
            task_definition: svc.task_definition.clone(),
            ..deployment("ecs-svc/2", "IN_PROGRESS")
        }];
        let stage = service_mut(&mut after, "stage-search-api");
        stage.desired_count = 3;
        stage.running_count = 3;
        stage.tasks.push(task("stg2", "2021-07-27T14:41:00Z"));
        stage.tasks.push(task("stg3", "2021-07-27T14:41:01Z"));
        let got = lines(&between(&before, &after));
        let services: Vec<&String> = got
            .iter()
            .filter(|l| l.starts_with("service ") || l.starts_with("task "))
            .collect();
        assert_eq!(
            services,
            vec![
                "service catalogue-api-2021-04-26/prod-search-api changed: new deployment ecs-svc/2 (rollout IN_PROGRESS, task definition prod-search-api:1)",
                "service catalogue-api-2021-04-26/stage-search-api changed: desired count 1 → 3",
                "service catalogue-api-2021-04-26/stage-search-api changed: running count 1 → 3",
                "task catalogue-api-2021-04-26/prod-search-api changed: 3 tasks replaced: 3 old gone (started 2021-07-27T14:00:01Z–2021-07-27T14:00:03Z), 3 new started at 2021-07-27T14:40:11Z–2021-07-27T14:40:13Z",
                "task catalogue-api-2021-04-26/stage-search-api added: 2 tasks started at 2021-07-27T14:41:00Z–2021-07-27T14:41:01Z",
            ]
        );
    }

    #[test]
    fn a_new_version_with_the_same_value_is_said_to_be_the_same_value() {
        let before = incident_before();
        let mut after = before.clone();
        let s = secret_mut(&mut after, "elasticsearch/catalogue_api/search/password");
        s.current_version_id = Some("99999999-new".into());
        let got = lines(&between(&before, &after));
        assert_eq!(
            got,
            vec!["secret elasticsearch/catalogue_api/search/password changed: AWSCURRENT moved 5e5e5e5e → 99999999 (same value)"]
        );
    }

    #[test]
    fn different_fingerprint_keys_make_values_incomparable() {
        let before = incident_before();
        let mut after = incident_after();
        after.fingerprint_key_id = "k1:other".into();
        let got = lines(&between(&before, &after));
        assert!(got.contains(&"secret elasticsearch/catalogue_api/search/password changed: AWSCURRENT moved 5e5e5e5e → 6f6f6f6f (value comparison unavailable: different fingerprint keys)".to_owned()), "{got:#?}");
        // Even a changed fingerprint under the same version id is not compared.
        let mut after = before.clone();
        after.fingerprint_key_id = "k1:other".into();
        secret_mut(&mut after, "elasticsearch/catalogue_api/search/password").current_fingerprint =
            Some("hmac-sha256:ffffffffffffffffffffffffffffffff".into());
        assert_eq!(between(&before, &after), vec![]);
    }

    #[test]
    fn user_changes_are_named_field_by_field() {
        let before = incident_before();
        let mut after = before.clone();
        let users = &mut after.elasticsearch.users;
        users.retain(|u| u.username != "diff_tool");
        let search = users.iter_mut().find(|u| u.username == "search").unwrap();
        search.enabled = false;
        search.roles = vec!["catalogue_write".into()];
        search.full_name = Some("Search API".into());
        search
            .metadata
            .insert("team".into(), serde_json::json!("catalogue"));
        let items = users.iter_mut().find(|u| u.username == "items").unwrap();
        items.email = Some("items@example.org".into());
        users.push(user("new_tool", &["catalogue_read"]));
        let got = lines(&between(&before, &after));
        assert_eq!(
            got,
            vec![
                "user diff_tool removed: deleted (had roles: catalogue_read)",
                "user items changed: email none → \"items@example.org\"",
                "user new_tool added: created, enabled, roles: catalogue_read",
                "user search changed: disabled",
                "user search changed: roles removed: catalogue_read",
                "user search changed: roles added: catalogue_write",
                "user search changed: full_name none → \"Search API\"",
                "user search changed: metadata.team added: \"catalogue\"",
            ]
        );
    }

    #[test]
    fn metadata_values_are_shown_briefly() {
        let before = incident_before();
        let mut after = before.clone();
        let search = after
            .elasticsearch
            .users
            .iter_mut()
            .find(|u| u.username == "search")
            .unwrap();
        search
            .metadata
            .insert("note".into(), serde_json::json!("x".repeat(100)));
        let got = lines(&between(&before, &after));
        assert_eq!(got.len(), 1);
        assert!(got[0].ends_with("…"), "{}", got[0]);
        assert!(got[0].chars().count() < 100, "{}", got[0]);
    }

    #[test]
    fn secrets_created_deleted_and_scheduled_for_deletion() {
        let before = incident_before();
        let mut after = before.clone();
        after
            .secrets
            .retain(|s| s.name.as_str() != "elasticsearch/catalogue_api/items/username");
        secret_mut(&mut after, "elasticsearch/catalogue_api/items/password").exists = false;
        secret_mut(&mut after, "elasticsearch/catalogue_api/search/password").deleted_date =
            Some(at("2021-08-03T14:38:00Z"));
        let mut fresh = secret(
            "elasticsearch/catalogue_api/new/password",
            "0a0a0a0a-1",
            "11",
        );
        fresh.created_date = Some(at("2021-07-27T14:38:00Z"));
        after.secrets.push(fresh);
        let got = lines(&between(&before, &after));
        assert_eq!(
            got,
            vec![
                "secret elasticsearch/catalogue_api/items/password removed: deleted",
                "secret elasticsearch/catalogue_api/items/username removed: no longer referenced by any task definition",
                "secret elasticsearch/catalogue_api/new/password added: created (AWSCURRENT 0a0a0a0a)",
                "secret elasticsearch/catalogue_api/search/password changed: deletion scheduled (2021-08-03T14:38:00Z)",
            ]
        );
    }

    #[test]
    fn api_key_recreated_reads_as_invalidated_and_a_new_principal() {
        let mut before = incident_before();
        before.elasticsearch.api_keys = vec![api_key("old-key-id", None)];
        let c = credential_mut(&mut before, "search");
        c.principal = Some("old-key-id".into());
        let mut after = before.clone();
        after.elasticsearch.api_keys = vec![
            ApiKeyState {
                invalidated: true,
                ..api_key("old-key-id", None)
            },
            api_key("new-key-id", Some("2021-07-27T14:38:00Z")),
        ];
        credential_mut(&mut after, "search").principal = Some("new-key-id".into());
        let got = lines(&between(&before, &after));
        assert_eq!(
            got,
            vec![
                "api-key new-key-id added: created at 2021-07-27T14:38:00Z (name \"search-key\")",
                "api-key old-key-id changed: invalidated (name \"search-key\")",
                "credential search changed: principal old-key-id → new-key-id",
            ]
        );
    }

    #[test]
    fn credentials_join_by_origin_and_report_consumers() {
        let before = incident_before();
        let mut after = before.clone();
        let c = credential_mut(&mut after, "search");
        c.id = "search@elasticsearch/catalogue_api/search/password".into();
        c.consumers.pop();
        c.pinned = true;
        after.credentials.retain(|c| c.id != "items");
        let got = lines(&between(&before, &after));
        assert_eq!(
            got,
            vec![
                "credential items removed: no longer consumed (was consumed by catalogue-api-2021-04-26/prod-items-api, catalogue-api-2021-04-26/stage-items-api)",
                "credential search@elasticsearch/catalogue_api/search/password changed: id search → search@elasticsearch/catalogue_api/search/password",
                "credential search@elasticsearch/catalogue_api/search/password changed: consumers removed: catalogue-api-2021-04-26/stage-search-api",
                "credential search@elasticsearch/catalogue_api/search/password changed: now reads a pinned secret version",
            ]
        );
    }

    #[test]
    fn changes_are_sorted_by_kind_then_target() {
        let got = between(&incident_before(), &incident_after());
        let keys: Vec<(&str, &str)> = got
            .iter()
            .map(|c| (c.kind.as_str(), c.target.as_str()))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn changes_print_no_fingerprint_at_all() {
        let before = incident_before();
        let after = incident_after();
        let text = format!("{:?}", between(&before, &after));
        for s in before.secrets.iter().chain(&after.secrets) {
            let fp = s.current_fingerprint.as_deref().unwrap();
            assert!(!text.contains(short::fingerprint(fp)), "{text}");
        }
        assert!(!text.contains("hmac-sha256"));
    }
}
