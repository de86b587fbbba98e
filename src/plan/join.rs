//! Joining a plan's resource changes to the live credential graph: which
//! credential, secret or service each change touches, who consumes it, and
//! whether the same plan redeploys them. Pure: a parsed plan and a snapshot
//! (or none, `--offline`) in, one [`ChangeFact`] per change out.
//!
//! Attribute names are those of the providers' schemas:
//! `elasticstack_elasticsearch_security_api_key` (`id` = `CLUSTER_UUID/KEY_ID`,
//! `key_id`, `name`, sensitive `api_key`/`encoded`),
//! `elasticstack_elasticsearch_security_user` (`username`, sensitive
//! `password`/`password_hash`, write-only `password_wo` with
//! `password_wo_version`), `aws_secretsmanager_secret` (`name`, `arn`, `id` =
//! ARN), `aws_secretsmanager_secret_version` (`secret_id` = ARN or name,
//! sensitive `secret_string`/`secret_binary`, write-only `secret_string_wo`
//! with `secret_string_wo_version`), `aws_ecs_service` (`name`, `cluster`,
//! `desired_count`, `task_definition`, `force_new_deployment`, `triggers`).
//! Identities are read from `before` and `after` alike, so a plan whose
//! sensitive values are hidden or unknown is still judged.

use super::parse::{Plan, ResourceChange};
use super::redact::Redactor;
use crate::config::CredentialKind;
use crate::facts::change::ChangeFact;
use crate::snapshot::model::{CredentialState, SecretState, Snapshot};
use serde_json::Value;
use std::collections::BTreeSet;

const API_KEY: &str = "elasticstack_elasticsearch_security_api_key";
const USER: &str = "elasticstack_elasticsearch_security_user";
const SECRET: &str = "aws_secretsmanager_secret";
const SECRET_VERSION: &str = "aws_secretsmanager_secret_version";
const ECS_SERVICE: &str = "aws_ecs_service";

/// One fact per resource change (no-op and read changes included: rules
/// decide), values redacted.
pub fn facts(plan: &Plan, live: Option<&Snapshot>, redactor: &Redactor) -> Vec<ChangeFact> {
    let redeploys = redeployed_services(plan, live);
    plan.changes
        .iter()
        .map(|c| {
            let mut f = base(c, plan);
            match live {
                None => {
                    f.offline = true;
                    f.matched_by = "--offline: judged by resource type".into();
                    f.credential = offline_identity(c);
                    f.secret = ident(c, &["secret_id", "name"]).unwrap_or_default();
                    f.holders = "unknown consumers (--offline)".into();
                    f.redeploys_in_plan = redeploys.addresses.clone();
                }
                Some(snap) => {
                    join(&mut f, c, snap, &redeploys);
                    // A new secret value: the old one is held by the tasks
                    // this plan does not redeploy.
                    let holders = if c.resource_type == SECRET_VERSION {
                        &f.stale_consumers
                    } else {
                        &f.live_consumers
                    };
                    f.holders = if holders.is_empty() {
                        "no running task".into()
                    } else {
                        holders.join(", ")
                    };
                }
            }
            typed(&mut f, c);
            redactor.fact(&mut f);
            f
        })
        .collect()
}

/// What the plan itself says the resource is, for offline messages.
fn offline_identity(c: &ResourceChange) -> String {
    let named = |what: &str, keys: &[&str]| match ident(c, keys) {
        Some(v) => format!("{what} {v}"),
        None => format!("{what} {}", c.address),
    };
    match c.resource_type.as_str() {
        API_KEY => named("API key", &["name", "key_id"]),
        USER => named("user", &["username"]),
        SECRET => named("secret", &["name", "arn"]),
        SECRET_VERSION => named("secret", &["secret_id"]),
        _ => c.address.clone(),
    }
}

fn base(c: &ResourceChange, plan: &Plan) -> ChangeFact {
    let has = |a: &str| c.actions.iter().any(|x| x == a);
    let (creates, deletes) = (has("create"), has("delete"));
    let action = match (creates, deletes) {
        (true, true) => "replace",
        (true, false) => "create",
        (false, true) => "delete",
        _ => c.actions.first().map(String::as_str).unwrap_or("no-op"),
    };
    let replace_order = match c.actions.as_slice() {
        [a, b] if a == "delete" && b == "create" => "delete-before-create",
        [a, b] if a == "create" && b == "delete" => "create-before-destroy",
        _ => "",
    };
    let kind = match c.resource_type.as_str() {
        API_KEY => "es-api-key",
        USER => "es-user",
        SECRET => "secret",
        SECRET_VERSION => "secret-version",
        ECS_SERVICE => "ecs-service",
        _ => "other",
    };
    let provisioners = if c.mode == "managed" {
        plan.provisioners
            .get(&c.config_address())
            .map(|ps| {
                ps.iter()
                    .filter(|p| p.kind == "local-exec" || p.kind == "remote-exec")
                    .map(|p| format!("{}: {}", p.kind, p.command))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    ChangeFact {
        id: c.address.clone(),
        resource_type: c.resource_type.clone(),
        kind: kind.into(),
        actions: c.actions.clone(),
        action: action.into(),
        action_detail: if replace_order.is_empty() {
            action.to_owned()
        } else {
            format!("{action}, {replace_order}")
        },
        replace_order: replace_order.into(),
        creates,
        deletes,
        updates: has("update"),
        provisioners,
        ..ChangeFact::default()
    }
}

/// Facts that come from the change alone: password and value changes,
/// desired counts.
fn typed(f: &mut ChangeFact, c: &ResourceChange) {
    match c.resource_type.as_str() {
        USER => {
            f.password_changed = [
                "password",
                "password_hash",
                "password_wo",
                "password_wo_version",
            ]
            .iter()
            .any(|k| attr_changes(c, k));
        }
        SECRET_VERSION => {
            f.value_changed = f.creates
                || [
                    "secret_string",
                    "secret_binary",
                    "secret_string_wo",
                    "secret_string_wo_version",
                ]
                .iter()
                .any(|k| attr_changes(c, k));
        }
        ECS_SERVICE => {
            let before = c.before.get("desired_count").and_then(Value::as_i64);
            let after = c.after.get("desired_count").and_then(Value::as_i64);
            f.desired_before = before.unwrap_or(0);
            f.desired_after = after.unwrap_or(0);
            f.desired_known = before.is_some() && after.is_some() && !unknown(c, "desired_count");
            if f.service.is_empty() {
                f.service = ident(c, &["name"]).unwrap_or_default();
            }
        }
        _ => {}
    }
}

/// Whether an attribute differs between before and after, or becomes
/// unknown. Values are compared, never kept.
fn attr_changes(c: &ResourceChange, key: &str) -> bool {
    if c.before.is_null() || c.after.is_null() {
        return false;
    }
    unknown(c, key) || c.before.get(key) != c.after.get(key)
}

fn unknown(c: &ResourceChange, key: &str) -> bool {
    match &c.after_unknown {
        Value::Bool(b) => *b,
        v => v.get(key).is_some_and(|u| u != &Value::Bool(false)),
    }
}

/// The first string found under any of `keys`, in `before` then `after`.
fn ident(c: &ResourceChange, keys: &[&str]) -> Option<String> {
    idents(c, keys).into_iter().next()
}

/// Every string under `keys`, in `before` then `after`, distinct.
fn idents(c: &ResourceChange, keys: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for side in [&c.before, &c.after] {
        for k in keys {
            if let Some(s) = side.get(*k).and_then(Value::as_str) {
                if !s.is_empty() && !out.iter().any(|o| o == s) {
                    out.push(s.to_owned());
                }
            }
        }
    }
    out
}

/// The services this plan redeploys: live refs (when joined) and addresses.
#[derive(Default)]
struct Redeploys {
    services: BTreeSet<String>,
    addresses: Vec<String>,
}

fn redeployed_services(plan: &Plan, live: Option<&Snapshot>) -> Redeploys {
    let mut r = Redeploys::default();
    for c in plan
        .changes
        .iter()
        .filter(|c| c.resource_type == ECS_SERVICE)
    {
        if !redeploys(c) {
            continue;
        }
        r.addresses.push(c.address.clone());
        if let Some(snap) = live {
            if let Some(s) = live_service(c, snap) {
                r.services.insert(s);
            }
        }
    }
    r
}

/// Does applying this `aws_ecs_service` change start new tasks?
fn redeploys(c: &ResourceChange) -> bool {
    let has = |a: &str| c.actions.iter().any(|x| x == a);
    if has("create") {
        return true; // created or replaced: every task is new
    }
    if !has("update") {
        return false;
    }
    if attr_changes(c, "task_definition") {
        return true;
    }
    let forced = c.after.get("force_new_deployment").and_then(Value::as_bool) == Some(true);
    forced && attr_changes(c, "triggers")
}

/// `cluster/service` of the live service an `aws_ecs_service` change names.
fn live_service(c: &ResourceChange, snap: &Snapshot) -> Option<String> {
    let name = ident(c, &["name"])?;
    let clusters: Vec<String> = idents(c, &["cluster"])
        .iter()
        .map(|s| last_segment(s).to_owned())
        .collect();
    snap.services
        .iter()
        .find(|s| {
            s.service.service == name
                && (clusters.is_empty()
                    || clusters
                        .iter()
                        .any(|cl| last_segment(&s.service.cluster) == cl))
        })
        .map(|s| s.service.to_string())
}

/// `arn:aws:ecs:r:a:cluster/NAME` → `NAME`; `TARGET:NAME` → `NAME`.
fn last_segment(s: &str) -> &str {
    let s = s.rsplit('/').next().unwrap_or(s);
    s.rsplit(':').next().unwrap_or(s)
}

fn join(f: &mut ChangeFact, c: &ResourceChange, snap: &Snapshot, redeploys: &Redeploys) {
    match c.resource_type.as_str() {
        API_KEY => {
            let mut ids = idents(c, &["key_id"]);
            ids.extend(
                idents(c, &["id"])
                    .iter()
                    .map(|i| last_segment(i).to_owned()),
            );
            let names = idents(c, &["name"]);
            let hit = snap.credentials.iter().find_map(|cred| {
                if cred.kind != CredentialKind::ElasticsearchApiKey {
                    return None;
                }
                let key = cred.principal.as_deref()?;
                if ids.iter().any(|i| i == key) {
                    return Some((cred, format!("API key id {key}")));
                }
                let name = snap
                    .elasticsearch
                    .api_keys
                    .iter()
                    .find(|k| k.id == key)
                    .and_then(|k| k.name.clone())?;
                names
                    .contains(&name)
                    .then(|| (cred, format!("API key name {name}")))
            });
            if let Some((cred, how)) = hit {
                credential(f, cred, snap, how);
            }
        }
        USER => {
            let users = idents(c, &["username"]);
            let hit = snap.credentials.iter().find(|cred| {
                cred.kind == CredentialKind::ElasticsearchBasic
                    && cred
                        .principal
                        .as_deref()
                        .is_some_and(|p| users.iter().any(|u| u == p))
            });
            if let Some(cred) = hit {
                let how = format!("username {}", cred.principal.as_deref().unwrap_or(""));
                credential(f, cred, snap, how);
            }
        }
        SECRET | SECRET_VERSION => {
            let refs = if c.resource_type == SECRET {
                idents(c, &["arn", "id", "name"])
            } else {
                idents(c, &["secret_id"])
            };
            if let Some((s, how)) = refs.iter().find_map(|r| find_secret(snap, r)) {
                secret(f, s, snap, how);
                if c.resource_type == SECRET_VERSION {
                    for consumer in &f.live_consumers {
                        if redeploys.services.contains(consumer) {
                            f.redeployed_consumers.push(consumer.clone());
                        } else {
                            f.stale_consumers.push(consumer.clone());
                        }
                    }
                }
            }
        }
        ECS_SERVICE => {
            if let Some(s) = live_service(c, snap) {
                f.matched_by = format!("service {s}");
                f.service = s;
            }
        }
        _ => {}
    }
}

fn running(snap: &Snapshot, service: &str) -> bool {
    snap.services
        .iter()
        .any(|s| s.service.to_string() == service && (s.running_count > 0 || !s.tasks.is_empty()))
}

fn credential(f: &mut ChangeFact, cred: &CredentialState, snap: &Snapshot, how: String) {
    f.matched_by = how;
    f.credential = cred.id.clone();
    f.principal = cred.principal.clone().unwrap_or_default();
    f.secret = cred
        .secrets
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    f.consumers = cred
        .consumers
        .iter()
        .map(|c| c.service.to_string())
        .collect();
    f.live_consumers = cred
        .consumers
        .iter()
        .filter(|c| c.running_tasks > 0 || running(snap, &c.service.to_string()))
        .map(|c| c.service.to_string())
        .collect();
    f.live = !f.live_consumers.is_empty();
}

fn secret(f: &mut ChangeFact, s: &SecretState, snap: &Snapshot, how: String) {
    f.matched_by = how;
    f.secret = s.name.to_string();
    // The credentials built from this secret, for the message.
    let creds: Vec<&str> = snap
        .credentials
        .iter()
        .filter(|c| c.secrets.iter().any(|n| n == &s.name))
        .map(|c| c.id.as_str())
        .collect();
    f.credential = if creds.is_empty() {
        s.name.to_string()
    } else {
        creds.join(", ")
    };
    f.consumers = s.consumers.iter().map(|c| c.to_string()).collect();
    f.live_consumers = f
        .consumers
        .iter()
        .filter(|c| running(snap, c))
        .cloned()
        .collect();
    f.live = !f.live_consumers.is_empty();
}

/// A secret by ARN (exact, or the partial ARN without AWS's 6-character
/// suffix) or by name.
fn find_secret<'a>(snap: &'a Snapshot, r: &str) -> Option<(&'a SecretState, String)> {
    if r.starts_with("arn:") {
        if let Some(s) = snap
            .secrets
            .iter()
            .find(|s| s.arn.as_ref().is_some_and(|a| a.as_str() == r))
        {
            return Some((s, format!("secret ARN {r}")));
        }
        let name = r.split_once(":secret:").map(|(_, n)| n)?;
        return snap
            .secrets
            .iter()
            .find(|s| {
                s.name.as_str() == name
                    || name
                        .strip_prefix(s.name.as_str())
                        .is_some_and(|rest| rest.len() == 7 && rest.starts_with('-'))
            })
            .map(|s| (s, format!("secret ARN {r}")));
    }
    snap.secrets
        .iter()
        .find(|s| s.name.as_str() == r)
        .map(|s| (s, format!("secret name {r}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(changes: &str) -> Plan {
        super::super::parse::parse(
            &format!(r#"{{"format_version": "1.2", "resource_changes": [{changes}]}}"#),
            "p.json",
        )
        .unwrap()
    }

    fn ecs(actions: &str, before: &str, after: &str) -> String {
        format!(
            r#"{{"address": "aws_ecs_service.s", "type": "aws_ecs_service", "name": "s",
               "change": {{"actions": {actions}, "before": {before}, "after": {after}, "after_unknown": {{}}}}}}"#
        )
    }

    #[test]
    fn what_redeploys_an_ecs_service() {
        let cases = [
            (r#"["create"]"#, "null", r#"{"name": "a"}"#, true),
            (
                r#"["delete", "create"]"#,
                r#"{"name": "a"}"#,
                r#"{"name": "a"}"#,
                true,
            ),
            (
                r#"["update"]"#,
                r#"{"task_definition": "td:1"}"#,
                r#"{"task_definition": "td:2"}"#,
                true,
            ),
            (
                r#"["update"]"#,
                r#"{"force_new_deployment": true, "triggers": {"v": "1"}}"#,
                r#"{"force_new_deployment": true, "triggers": {"v": "2"}}"#,
                true,
            ),
            (
                r#"["update"]"#,
                r#"{"force_new_deployment": false, "triggers": {"v": "1"}}"#,
                r#"{"force_new_deployment": false, "triggers": {"v": "2"}}"#,
                false,
            ),
            (
                r#"["update"]"#,
                r#"{"desired_count": 1}"#,
                r#"{"desired_count": 3}"#,
                false,
            ),
            (
                r#"["no-op"]"#,
                r#"{"name": "a"}"#,
                r#"{"name": "a"}"#,
                false,
            ),
        ];
        for (actions, before, after, want) in cases {
            let p = plan(&ecs(actions, before, after));
            assert_eq!(
                redeploys(&p.changes[0]),
                want,
                "{actions} {before} → {after}"
            );
        }
    }

    #[test]
    fn offline_facts_name_the_resource_from_the_plan() {
        let p = plan(
            r#"{"address": "elasticstack_elasticsearch_security_api_key.k", "type": "elasticstack_elasticsearch_security_api_key",
                "name": "k", "change": {"actions": ["create", "delete"], "before": {"name": "search-key", "encoded": "c2VjcmV0LXZhbHVlLTEyMw=="},
                "after": {"name": "search-key"}, "after_unknown": {"encoded": true}, "before_sensitive": {"encoded": true}}}"#,
        );
        let facts = facts(&p, None, &Redactor::from_plan(&p));
        let f = &facts[0];
        assert!(f.offline && f.deletes && f.creates);
        assert_eq!(f.kind, "es-api-key");
        assert_eq!(f.action_detail, "replace, create-before-destroy");
        assert_eq!(f.credential, "API key search-key");
        assert_eq!(f.holders, "unknown consumers (--offline)");
    }

    #[test]
    fn cluster_names_are_compared_without_their_arn() {
        assert_eq!(
            last_segment("arn:aws:ecs:eu-west-1:000000000000:cluster/catalogue"),
            "catalogue"
        );
        assert_eq!(last_segment("catalogue:catalogue-api"), "catalogue-api");
        assert_eq!(last_segment("catalogue-api"), "catalogue-api");
    }
}
