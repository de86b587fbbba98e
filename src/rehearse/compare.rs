//! The two comparisons a rehearsal rests on (pure):
//!
//! * **fidelity**: the shadow's credential graph must equal the live one —
//!   the same credentials, resolving to the same principals through the same
//!   secrets, consumed by the same services, authenticating (or not) the
//!   same way. A prediction made on a shadow that differs is worthless, so a
//!   difference refuses the rehearsal (exit 13) instead of guessing.
//! * **containment**: the live environment after the rehearsal must equal
//!   the live environment before it. Any difference means the command
//!   reached past the shadow (or someone else changed live meanwhile): a
//!   human must look.

use crate::report::model::Change;
use crate::snapshot::model::{CredentialState, ProbeResult, Snapshot};
use std::collections::BTreeMap;

/// What the rules see of one credential, minus what legitimately differs in
/// a shadow (task definition ARNs and revisions, secret ARN suffixes).
#[derive(Debug, PartialEq, Eq)]
struct GraphView {
    kind: crate::config::CredentialKind,
    principal: Option<String>,
    secrets: Vec<String>,
    /// `cluster/service` and whether it runs tasks holding the credential.
    consumers: Vec<(String, bool)>,
    pinned: bool,
    probe: ProbeResult,
}

fn view(c: &CredentialState) -> GraphView {
    let mut secrets: Vec<String> = c.secrets.iter().map(|s| s.to_string()).collect();
    secrets.sort();
    let mut consumers: Vec<(String, bool)> = c
        .consumers
        .iter()
        .map(|k| (k.service.to_string(), k.running_tasks > 0))
        .collect();
    consumers.sort();
    GraphView {
        kind: c.kind,
        principal: c.principal.clone(),
        secrets,
        consumers,
        pinned: c.pinned,
        probe: c.probe.result,
    }
}

/// How the shadow's credential graph differs from the live one, one line a
/// difference (names only); empty when they are equal.
pub fn graph_differences(live: &Snapshot, shadow: &Snapshot) -> Vec<String> {
    let l: BTreeMap<&str, GraphView> = live
        .credentials
        .iter()
        .map(|c| (c.id.as_str(), view(c)))
        .collect();
    let s: BTreeMap<&str, GraphView> = shadow
        .credentials
        .iter()
        .map(|c| (c.id.as_str(), view(c)))
        .collect();
    let mut out = Vec::new();
    for (id, lv) in &l {
        match s.get(id) {
            None => out.push(format!("credential {id} is missing from the shadow")),
            Some(sv) if sv != lv => {
                let mut what = Vec::new();
                if sv.principal != lv.principal {
                    what.push("principal");
                }
                if sv.secrets != lv.secrets {
                    what.push("secrets");
                }
                if sv.consumers != lv.consumers {
                    what.push("consumers");
                }
                if sv.pinned != lv.pinned || sv.kind != lv.kind {
                    what.push("form");
                }
                if sv.probe != lv.probe {
                    what.push("probe result");
                }
                out.push(format!(
                    "credential {id} differs in the shadow ({})",
                    what.join(", ")
                ));
            }
            Some(_) => {}
        }
    }
    for id in s.keys().filter(|id| !l.contains_key(*id)) {
        out.push(format!("credential {id} exists only in the shadow"));
    }
    let services = |snap: &Snapshot| -> BTreeMap<String, i32> {
        snap.services
            .iter()
            .map(|s| (s.service.to_string(), s.desired_count))
            .collect()
    };
    let (ls, ss) = (services(live), services(shadow));
    for (name, desired) in &ls {
        match ss.get(name) {
            None => out.push(format!("service {name} is missing from the shadow")),
            Some(d) if d != desired => out.push(format!(
                "service {name} wants {d} tasks in the shadow, {desired} live"
            )),
            Some(_) => {}
        }
    }
    out
}

/// What changed in the live environment between two snapshots: users,
/// roles, enabled flags, API keys, secret versions and stages, services,
/// task ARNs, desired counts and credential probes. Cluster health is left
/// out: it moves on its own and no command of ours caused it.
pub fn live_changes(before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    crate::report::changes::between(before, after)
        .into_iter()
        .filter(|c| c.kind != "cluster")
        .collect()
}
