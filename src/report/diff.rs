//! A readable unified diff of two snapshots, for people.
//!
//! Diffing the snapshot JSON would show every reordered array and timestamp;
//! instead each snapshot is rendered canonically, one line per fact a person
//! cares about (a user with its roles, a secret with its AWSCURRENT version
//! and a short value fingerprint, a service with its counts, each task with
//! when it started, each credential with its probe), sorted, and those lines
//! are diffed with `similar`. A line that changed shows as `-` old and `+`
//! new, with a little context, under an `@@ section @@` header.
//!
//! Fingerprints are cut to eight hex digits, and left out altogether when the
//! two snapshots were made under different fingerprint keys (they would all
//! differ, and say nothing).

use super::changes::probe_word;
use super::short;
use crate::snapshot::model::{Snapshot, TaskState};
use similar::{ChangeTag, TextDiff};
use std::fmt::Write as _;

/// Lines of unchanged context around each change.
const CONTEXT: usize = 2;

/// The unified diff from `before` to `after`; empty when nothing a person
/// would see differs.
pub fn text(before: &Snapshot, after: &Snapshot) -> String {
    let fingerprints = before.fingerprint_key_id == after.fingerprint_key_id;
    let old = canonical(before, fingerprints);
    let new = canonical(after, fingerprints);
    let mut body = String::new();
    for ((section, old), (_, new)) in old.iter().zip(&new) {
        let (old, new) = (old.concat(), new.concat());
        let diff = TextDiff::from_lines(&old, &new);
        for group in diff.grouped_ops(CONTEXT) {
            let _ = writeln!(body, "@@ {section} @@");
            let mut run = Run::default();
            for op in &group {
                for change in diff.iter_changes(op) {
                    let line = change.to_string_lossy().trim_end_matches('\n').to_owned();
                    match change.tag() {
                        ChangeTag::Delete => run.old.push(line),
                        ChangeTag::Insert => run.new.push(line),
                        ChangeTag::Equal => {
                            run.flush(&mut body);
                            let _ = writeln!(body, " {line}");
                        }
                    }
                }
            }
            run.flush(&mut body);
        }
    }
    if body.is_empty() {
        return body;
    }
    let mut out = format!(
        "--- before {}\n+++ after  {}\n",
        short::time(&before.taken_at),
        short::time(&after.taken_at)
    );
    if !fingerprints {
        out.push_str("# value fingerprints left out: the snapshots were made with different fingerprint keys\n");
    }
    out.push_str(&body);
    out
}

/// A run of removed and added lines between two context lines. When as
/// many lines were added as removed, each was replaced in place (the lines
/// are sorted by what they describe), so each `-` line is shown right above
/// its `+` line: `secret X AWSCURRENT=1a… ` over `secret X AWSCURRENT=2b…`
/// reads as one change, where a block of four `-` then four `+` does not.
#[derive(Default)]
struct Run {
    old: Vec<String>,
    new: Vec<String>,
}

impl Run {
    fn flush(&mut self, out: &mut String) {
        let (old, new) = (std::mem::take(&mut self.old), std::mem::take(&mut self.new));
        if old.len() == new.len() {
            for (o, n) in old.iter().zip(&new) {
                let _ = writeln!(out, "-{o}\n+{n}");
            }
        } else {
            for o in &old {
                let _ = writeln!(out, "-{o}");
            }
            for n in &new {
                let _ = writeln!(out, "+{n}");
            }
        }
    }
}

type Section = (&'static str, Vec<String>);

/// One snapshot as sections of sorted lines, each line ending in `\n`.
fn canonical(s: &Snapshot, fingerprints: bool) -> [Section; 6] {
    let es = &s.elasticsearch;
    let cluster = vec![format!(
        "cluster {} health={} nodes={} data_nodes={}\n",
        es.cluster_name,
        es.health.status,
        es.health.number_of_nodes,
        es.health.number_of_data_nodes
    )];

    let mut users: Vec<String> = es
        .users
        .iter()
        .map(|u| {
            let mut roles = u.roles.clone();
            roles.sort();
            let mut l = format!(
                "user {} {} roles=[{}]",
                u.username,
                if u.enabled { "enabled" } else { "disabled" },
                roles.join(",")
            );
            if u.reserved {
                l.push_str(" reserved");
            }
            if let Some(n) = &u.full_name {
                let _ = write!(l, " full_name={n:?}");
            }
            if let Some(e) = &u.email {
                let _ = write!(l, " email={e:?}");
            }
            if !u.metadata.is_empty() {
                let m = serde_json::Value::Object(u.metadata.clone());
                let _ = write!(l, " metadata={}", short::json(&m, 80));
            }
            l.push('\n');
            l
        })
        .collect();
    users.sort();

    let mut api_keys: Vec<String> = es
        .api_keys
        .iter()
        .map(|k| {
            let mut l = format!("api-key {}", k.id);
            if !k.found {
                l.push_str(" not-found");
            }
            if let Some(n) = &k.name {
                let _ = write!(l, " name={n:?}");
            }
            if let Some(u) = &k.username {
                let _ = write!(l, " owner={u}");
            }
            if let Some(t) = &k.creation {
                let _ = write!(l, " created={}", short::time(t));
            }
            if let Some(t) = &k.expiration {
                let _ = write!(l, " expires={}", short::time(t));
            }
            if k.invalidated {
                l.push_str(" invalidated");
            }
            l.push('\n');
            l
        })
        .collect();
    api_keys.sort();

    let mut secrets: Vec<String> = s
        .secrets
        .iter()
        .map(|x| {
            let mut l = format!("secret {}", x.name);
            if !x.exists {
                l.push_str(" absent\n");
                return l;
            }
            let _ = write!(
                l,
                " AWSCURRENT={}",
                x.current_version_id.as_deref().map_or("none", short::id)
            );
            if fingerprints {
                let _ = write!(
                    l,
                    " value={}",
                    x.current_fingerprint
                        .as_deref()
                        .map_or("unread", short::fingerprint)
                );
            }
            let _ = write!(l, " versions={}", x.versions.len());
            if let Some(t) = &x.deleted_date {
                let _ = write!(l, " deletion-scheduled={}", short::time(t));
            }
            l.push('\n');
            l
        })
        .collect();
    secrets.sort();

    let mut services: Vec<(String, Vec<String>)> = s
        .services
        .iter()
        .map(|svc| {
            let primary = svc
                .deployments
                .iter()
                .find(|d| d.status == "PRIMARY")
                .or_else(|| svc.deployments.first());
            let head = format!(
                "service {} {} desired={} running={} pending={} taskdef={} rollout={} deployments={}\n",
                svc.service,
                svc.status,
                svc.desired_count,
                svc.running_count,
                svc.pending_count,
                short::task_definition(&svc.task_definition),
                primary
                    .and_then(|d| d.rollout_state.as_deref())
                    .unwrap_or("unknown"),
                svc.deployments.len()
            );
            let mut tasks: Vec<&TaskState> = svc.tasks.iter().collect();
            tasks.sort_by(|a, b| (a.started_at, &a.arn).cmp(&(b.started_at, &b.arn)));
            let mut lines = vec![head];
            lines.extend(tasks.into_iter().map(|t| {
                let mut l = format!(
                    "  task {} {} started={} taskdef={}",
                    short::task(&t.arn),
                    t.last_status,
                    t.started_at.as_ref().map_or("-".to_owned(), short::time),
                    short::task_definition(&t.task_definition_arn)
                );
                match t.health_status.as_deref() {
                    None | Some("UNKNOWN") => {}
                    Some(h) => {
                        let _ = write!(l, " health={h}");
                    }
                }
                l.push('\n');
                l
            }));
            (svc.service.to_string(), lines)
        })
        .collect();
    services.sort();
    let services = services.into_iter().flat_map(|(_, l)| l).collect();

    let mut credentials: Vec<String> = s
        .credentials
        .iter()
        .map(|c| {
            let mut consumers: Vec<String> =
                c.consumers.iter().map(|k| k.service.to_string()).collect();
            consumers.sort();
            let kind = serde_json::to_value(c.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let mut l = format!(
                "credential {} {kind} principal={} probe={} consumers=[{}]",
                c.id,
                c.principal.as_deref().unwrap_or("unknown"),
                probe_word(c.probe.result),
                consumers.join(",")
            );
            if c.pinned {
                l.push_str(" pinned");
            }
            l.push('\n');
            l
        })
        .collect();
    credentials.sort();

    [
        ("elasticsearch", cluster),
        ("users", users),
        ("api keys", api_keys),
        ("secrets", secrets),
        ("services", services),
        ("credentials", credentials),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::*;

    #[test]
    fn identical_snapshots_give_an_empty_diff() {
        let s = incident_before();
        assert_eq!(text(&s, &s), "");
    }

    #[test]
    fn the_incident_diff_shows_versions_and_short_values() {
        let d = text(&incident_before(), &incident_after());
        assert_eq!(
            d,
            "\
--- before 2021-07-27T14:30:00Z
+++ after  2021-07-27T14:38:00Z
@@ secrets @@
-secret elasticsearch/catalogue_api/items/password AWSCURRENT=1a1a1a1a value=d4d4d4d4 versions=1
+secret elasticsearch/catalogue_api/items/password AWSCURRENT=2b2b2b2b value=f6f6f6f6 versions=2
-secret elasticsearch/catalogue_api/items/username AWSCURRENT=3c3c3c3c value=c3c3c3c3 versions=1
+secret elasticsearch/catalogue_api/items/username AWSCURRENT=4d4d4d4d value=c3c3c3c3 versions=2
-secret elasticsearch/catalogue_api/search/password AWSCURRENT=5e5e5e5e value=b2b2b2b2 versions=1
+secret elasticsearch/catalogue_api/search/password AWSCURRENT=6f6f6f6f value=e5e5e5e5 versions=2
-secret elasticsearch/catalogue_api/search/username AWSCURRENT=7a7a7a7a value=a1a1a1a1 versions=1
+secret elasticsearch/catalogue_api/search/username AWSCURRENT=8b8b8b8b value=a1a1a1a1 versions=2
"
        );
    }

    #[test]
    fn tasks_replaced_and_counts_changed_show_under_their_service() {
        let before = incident_before();
        let mut after = before.clone();
        let stage = service_mut(&mut after, "stage-search-api");
        stage.desired_count = 3;
        let td = stage.tasks[0].task_definition_arn.clone();
        stage.tasks.push(TaskState {
            task_definition_arn: td,
            ..task("stgsrch2", "2021-07-27T14:41:00Z")
        });
        let d = text(&before, &after);
        assert_eq!(
            d,
            "\
--- before 2021-07-27T14:30:00Z
+++ after  2021-07-27T14:30:00Z
@@ services @@
 service catalogue-api-2021-04-26/stage-items-api ACTIVE desired=1 running=1 pending=0 taskdef=stage-items-api:1 rollout=COMPLETED deployments=1
   task stgitem1 RUNNING started=2021-07-27T14:00:04Z taskdef=stage-items-api:1
-service catalogue-api-2021-04-26/stage-search-api ACTIVE desired=1 running=1 pending=0 taskdef=stage-search-api:1 rollout=COMPLETED deployments=1
+service catalogue-api-2021-04-26/stage-search-api ACTIVE desired=3 running=1 pending=0 taskdef=stage-search-api:1 rollout=COMPLETED deployments=1
   task stgsrch1 RUNNING started=2021-07-27T14:00:05Z taskdef=stage-search-api:1
+  task stgsrch2 RUNNING started=2021-07-27T14:41:00Z taskdef=stage-search-api:1
"
        );
    }

    #[test]
    fn different_fingerprint_keys_leave_values_out() {
        let before = incident_before();
        let mut after = incident_after();
        after.fingerprint_key_id = "k1:other".into();
        let d = text(&before, &after);
        assert!(d.contains("different fingerprint keys"), "{d}");
        assert!(!d.contains("value="), "{d}");
        assert!(d.contains("AWSCURRENT=6f6f6f6f"), "{d}");
    }

    #[test]
    fn no_fingerprint_is_printed_beyond_eight_hex_digits() {
        let before = incident_before();
        let after = incident_after();
        let d = text(&before, &after);
        for s in before.secrets.iter().chain(&after.secrets) {
            let hex = s.current_fingerprint.as_deref().unwrap();
            let hex = hex.trim_start_matches("hmac-sha256:");
            assert!(!d.contains(&hex[..9]), "{d}");
        }
    }
}
