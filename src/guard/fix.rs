//! `opsguard check --fix redeploy`: find the ECS services whose running
//! tasks hold a credential value older than the one their secret holds now,
//! force new deployments of exactly those, and prove it with a fresh
//! snapshot. The redeploy is `run`'s remedy — planned by
//! [`crate::remedy::plan`], journalled and applied by
//! [`super::remediate`] under the state folder's lock — so an interrupted
//! fix is finished by `opsguard resume RUN_ID` like an interrupted run.
//!
//! One snapshot cannot show a change, so `check` alone never sees a stale
//! task (its rules see before = after). The fix therefore reconstructs the
//! "before" a run would have had: **what the running tasks hold**. For each
//! credential whose consumers run a task that started before the current
//! version of one of its secrets was created, the held snapshot names the
//! version that was current when the oldest such task started (read from
//! the secret's version history), and has no tasks of its own, so that a
//! task counts as stale exactly when it started before the value it should
//! hold was created. The facts of (held, now) — with the held values read
//! back from their versions and probed, as `resume` does — are then judged
//! by the ordinary rules: `secret-rotated-without-redeploy` and
//! `live-credential-broken` fire as they would have at the end of the
//! run that rotated the secret. A held value is taken to have authenticated
//! when its tasks started (it was the current value then).

use super::remediate::{save_json, save_report, Session};
use super::*;
use crate::providers::SecretsReader;
use crate::remedy::journal::Progress;
use crate::snapshot::fingerprint::FingerprintKey;
use crate::snapshot::model::{CredentialState, Probe, ProbeResult, Snapshot, Timestamp};
use crate::snapshot::Live;
use std::path::Path;
use std::time::Duration;

/// What the fix may do.
pub struct FixOptions<'a> {
    pub run_dir: &'a Path,
    pub run_id: &'a str,
    pub stable_timeout: Duration,
    /// Where the waits are shown (hidden off a terminal).
    pub progress: crate::progress::Progress,
}

/// The snapshot of what the running tasks hold, derived from `now` and the
/// version histories of the secrets whose AWSCURRENT is newer than a
/// consumer's oldest running task. `None` when every task holds the current
/// values (nothing is stale).
pub async fn held_snapshot<S: SecretsReader>(
    now: &Snapshot,
    secrets: &S,
) -> Result<Option<Snapshot>, crate::providers::ProviderError> {
    let mut held = now.clone();
    let mut any = false;
    let mut histories: BTreeMap<String, Vec<crate::snapshot::model::SecretVersionState>> =
        BTreeMap::new();
    for (ci, c) in now.credentials.iter().enumerate() {
        if c.pinned {
            continue;
        }
        let Some(oldest) = oldest_task(now, c) else {
            continue;
        };
        for (si, src) in c.sources.iter().enumerate() {
            let (Some(name), Some(read)) = (&src.secret, &src.version_read) else {
                continue;
            };
            let Some(secret) = now.secrets.iter().find(|s| &s.name == name) else {
                continue;
            };
            let created = secret
                .versions
                .iter()
                .find(|v| &v.version_id == read)
                .and_then(|v| v.created_date);
            // Same second counts as fresh, as `facts` judges it.
            let Some(created) = created else { continue };
            if oldest.unix_timestamp() >= created.unix_timestamp() {
                continue;
            }
            if !histories.contains_key(name.as_str()) {
                histories.insert(name.to_string(), secrets.versions(name).await?);
            }
            let history = &histories[name.as_str()];
            // The version current when the oldest task started: the newest
            // one created by then.
            let Some(version) = history
                .iter()
                .filter(|v| {
                    v.created_date
                        .is_some_and(|d| d.unix_timestamp() <= oldest.unix_timestamp())
                })
                .max_by_key(|v| v.created_date)
            else {
                continue;
            };
            any = true;
            let hs = &mut held.credentials[ci].sources[si];
            hs.version_read = Some(version.version_id.clone());
            hs.fingerprint = None;
            if let Some(s) = held.secrets.iter_mut().find(|s| &s.name == name) {
                s.current_version_id = Some(version.version_id.clone());
                s.current_fingerprint = None;
                s.versions = history.clone();
            }
        }
    }
    if !any {
        return Ok(None);
    }
    // Values are compared by the version read, not by fingerprint (the held
    // ones were not fingerprinted), and every task is judged by its start.
    held.fingerprint_key_id = format!("{}+held", now.fingerprint_key_id);
    for s in &mut held.services {
        s.tasks.clear();
    }
    for c in &mut held.credentials {
        c.probe = Probe {
            result: ProbeResult::Authenticated,
            authenticated_as: c.principal.clone(),
            detail: Some(
                "held by running tasks; taken to have authenticated when they started".into(),
            ),
        };
    }
    Ok(Some(held))
}

/// Why the blocking findings' credentials cannot work for any task, new or
/// old: their Elasticsearch user is gone or disabled.
fn principal_problems(now: &Snapshot, findings: &[Finding]) -> Vec<String> {
    let mut out = Vec::new();
    for f in findings.iter().filter(|f| f.blocks()) {
        let Some(c) = now.credentials.iter().find(|c| c.id == f.target) else {
            continue;
        };
        if c.kind != crate::config::CredentialKind::ElasticsearchBasic {
            continue;
        }
        let Some(user) = c.principal.as_deref() else {
            continue;
        };
        let why = match now.elasticsearch.users.iter().find(|u| u.username == user) {
            None => format!(
                "credential {}: Elasticsearch has no user `{user}` (deleted?), so new tasks cannot authenticate either; recreate the user by hand",
                c.id
            ),
            Some(u) if !u.enabled => format!(
                "credential {}: the Elasticsearch user `{user}` is disabled, so new tasks cannot authenticate either; re-enable it by hand",
                c.id
            ),
            Some(_) => continue,
        };
        if !out.contains(&why) {
            out.push(why);
        }
    }
    out
}

/// The start of the oldest running task of the credential's consumers.
fn oldest_task(now: &Snapshot, c: &CredentialState) -> Option<Timestamp> {
    c.consumers
        .iter()
        .filter_map(|k| {
            let svc = now.services.iter().find(|s| s.service == k.service)?;
            svc.tasks
                .iter()
                .filter(|t| {
                    t.last_status == "RUNNING"
                        && k.task_definitions.contains(&t.task_definition_arn)
                })
                .filter_map(|t| t.started_at)
                .min()
        })
        .min()
}

/// Judge the live environment as a fix would, and redeploy what is stale.
pub async fn check_fix_redeploy(
    config: &Config,
    policy: &Policy,
    key: &FingerprintKey,
    opts: FixOptions<'_>,
) -> Report {
    let mut report = new_report(
        "check",
        opts.run_id.to_owned(),
        crate::report::model::ReportMode::Check,
    );
    let preflight = |mut report: Report, why: String| {
        exit::settle(&mut report, Outcome::PreflightFailed, None);
        report.preflight_error = Some(why);
        report.finished_at = now_rfc3339();
        report
    };
    let live = match Live::connect(config)
        .await
        .map(|l| l.with_progress(&opts.progress))
    {
        Ok(l) => l,
        Err(e) => return preflight(report, format!("cannot take a snapshot: {e}")),
    };
    let now = match live.take(config, key).await {
        Ok(t) => t,
        Err(e) => return preflight(report, format!("cannot take a snapshot: {e}")),
    };
    let held = match held_snapshot(&now.snapshot, live.aws()).await {
        Ok(h) => h,
        Err(e) => {
            return preflight(
                report,
                format!("cannot read the version history of a secret: {e}"),
            )
        }
    };

    // The facts a run would have judged, had it made the rotation.
    let (before, values) = match &held {
        None => (now.snapshot.clone(), BTreeMap::new()),
        Some(h) => {
            let (values, unreadable) =
                crate::remedy::apply::recover_values(h, config, live.aws()).await;
            for u in &unreadable {
                report
                    .notes
                    .push(format!("value held by running tasks not read: {u}"));
            }
            (h.clone(), values)
        }
    };
    let probes = if values.is_empty() {
        None
    } else {
        match probe_values(live.es(), &before, &values).await {
            Ok(p) => Some(p),
            Err(e) => {
                return preflight(
                    report,
                    format!("cannot probe the values the running tasks hold: {e}"),
                )
            }
        }
    };
    let facts = policy.facts(&before, &now.snapshot, "run", probes.as_ref());
    let findings = match policy.evaluate(&facts) {
        Ok(f) => f,
        Err(e) => return preflight(report, format!("rule evaluation failed: {e}")),
    };
    record_findings(&mut report, &findings);
    if !findings.iter().any(is_blocking) {
        exit::settle(&mut report, Outcome::Ok, None);
        report
            .notes
            .push("--fix redeploy: nothing blocking, so nothing was redeployed".into());
        report.finished_at = now_rfc3339();
        return report;
    }

    let plan = crate::remedy::plan::plan(
        Mode::Redeploy,
        &findings,
        &facts,
        &before,
        &now.snapshot,
        config,
    );
    // A redeploy that cannot put everything right is not attempted: a
    // person must look at what it cannot fix first.
    if !plan.cannot.is_empty() || plan.steps.is_empty() {
        exit::settle(&mut report, Outcome::Violated, None);
        for c in &plan.cannot {
            // `check` has no --on-violation: say what the rule's remedy means here.
            let c = c.replace(
                "(try --on-violation rollback)",
                "(its remedy is a rollback, which needs the state before the change: put it right by hand)",
            );
            report
                .notes
                .push(format!("a redeploy cannot fix this: {c}"));
        }
        for why in principal_problems(&now.snapshot, &findings) {
            report
                .notes
                .push(format!("a redeploy cannot fix this: {why}"));
        }
        if plan.cannot.is_empty() {
            report.notes.push(
                "a redeploy cannot fix the blocking findings: no stale service to redeploy".into(),
            );
        }
        if !plan.steps.is_empty() {
            report.notes.push(format!(
                "nothing was redeployed (it would have been: {})",
                plan.steps
                    .iter()
                    .map(|s| s.target())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        report.finished_at = now_rfc3339();
        return report;
    }

    save_json(opts.run_dir, "before.json", &before);
    save_json(opts.run_dir, "after.json", &now.snapshot);
    save_json(opts.run_dir, "facts.json", &facts);
    live.remember(&before);
    let session = Session::begin(opts.run_dir, opts.run_id, Mode::Redeploy, false)
        .and_then(|mut s| s.plan(&plan).map(|()| s));
    let mut session = match session {
        Ok(s) => s,
        Err(e) => {
            exit::settle(&mut report, Outcome::RemediationFailed, None);
            report.error = Some(format!("{e}, so nothing was redeployed"));
            report.finished_at = now_rfc3339();
            save_report(opts.run_dir, &report);
            return report;
        }
    };
    save_report(opts.run_dir, &report);
    let progress = Progress {
        plan: Some(plan.clone()),
        ..Default::default()
    };
    let out = super::remediate::remediate(
        &super::remediate::Input {
            config,
            policy,
            key,
            live: &live,
            before: &before,
            values: &values,
            current: &now.auth,
            mode: Mode::Redeploy,
            stable_timeout: opts.stable_timeout,
            recovery: None,
            watch_interval: config.remedies.watch_interval,
            progress: opts.progress.clone(),
        },
        &plan,
        &progress,
        &mut session,
    )
    .await;
    super::remediate::settle(&mut report, out);
    session.finish(report.exit_code);
    report.finished_at = now_rfc3339();
    save_report(opts.run_dir, &report);
    report
}
