//! `opsguard resume RUN_ID`: finish a remedy that was interrupted (opsguard
//! killed, the machine lost), from the run's journal, and verify it.
//!
//! The journal says which steps were done; the others are applied again (each
//! is idempotent). Passwords are read back from the secret versions the plan
//! names — the journal never held them. If opsguard died before it had
//! planned, the plan is made now from the run's saved snapshots (or, when even
//! the after snapshot is missing, from a fresh one).

use super::*;
use crate::remedy::journal::{self, Event, Journal, Progress};
use crate::snapshot::fingerprint::FingerprintKey;
use crate::snapshot::Live;
use std::path::Path;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ResumeError {
    #[error("no run {run_id} in {dir}")]
    NoRun { run_id: String, dir: String },
    #[error("run {run_id}: {what}")]
    Unusable { run_id: String, what: String },
    #[error("run {run_id} has no remedy to resume (its mode was {mode}); run it again with --on-violation rollback or redeploy")]
    NoRemedy { run_id: String, mode: String },
}

fn load<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Option<T> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    serde_json::from_str(&text).ok()
}

pub async fn resume(
    config: &Config,
    policy: &Policy,
    key: &FingerprintKey,
    run_dir: &Path,
    run_id: &str,
    stable_timeout: Duration,
) -> Result<Report, ResumeError> {
    if !run_dir.is_dir() {
        return Err(ResumeError::NoRun {
            run_id: run_id.to_owned(),
            dir: run_dir
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        });
    }
    let unusable = |what: String| ResumeError::Unusable {
        run_id: run_id.to_owned(),
        what,
    };
    let before: Snapshot = load(run_dir, "before.json").ok_or_else(|| {
        unusable("its before snapshot is missing or unreadable; nothing can be restored".into())
    })?;
    let saved: Option<Report> = load(run_dir, "report.json");
    let events = journal::read(&run_dir.join(journal::FILE)).unwrap_or_default();
    let mut progress = Progress::of(&events);
    let mode_word = progress
        .mode
        .clone()
        .or_else(|| saved.as_ref().map(|r| r.mode.clone()))
        .unwrap_or_else(|| mode_name(config.rules.on_violation).to_owned());
    let mode = match mode_word.as_str() {
        "rollback" => Mode::Rollback,
        "redeploy" => Mode::Redeploy,
        other => {
            return Err(ResumeError::NoRemedy {
                run_id: run_id.to_owned(),
                mode: other.to_owned(),
            })
        }
    };

    let mut report = saved.unwrap_or_else(|| new_report("run", run_id.to_owned(), &mode_word));
    report.notes.push(format!("resumed at {}", now_rfc3339()));
    let live = match Live::connect(config).await {
        Ok(l) => l,
        Err(e) => {
            report.outcome = crate::report::model::Outcome::RemediationFailed;
            report.exit_code = exit::REMEDY_FAILED;
            report.error = Some(format!("cannot reach the environment to resume: {e}"));
            return Ok(report);
        }
    };
    // Later snapshots read the version history of what moved since `before`.
    live.remember(&before);
    let mut journal =
        Journal::open(run_dir).map_err(|e| unusable(format!("cannot open its journal: {e}")))?;

    if progress.plan.is_none() {
        // Died before planning: plan now, from the saved after snapshot or a fresh one.
        let after: Snapshot = match load(run_dir, "after.json") {
            Some(a) => a,
            None => {
                live.take(config, key)
                    .await
                    .map_err(|e| unusable(format!("cannot take a snapshot to plan from: {e}")))?
                    .snapshot
            }
        };
        let facts: Facts = load(run_dir, "facts.json")
            .unwrap_or_else(|| policy.facts(&before, &after, "run", None));
        let findings = policy
            .evaluate(&facts)
            .map_err(|e| unusable(format!("rule evaluation failed: {e}")))?;
        record_findings(&mut report, &findings);
        let plan = crate::remedy::plan::plan(mode, &findings, &facts, &before, &after, config);
        if progress.mode.is_none() {
            let _ = journal.append(Event::Begin {
                run_id: run_id.to_owned(),
                mode: mode_word.clone(),
            });
        }
        let _ = journal.append(Event::Plan { plan: plan.clone() });
        progress.plan = Some(plan);
    }
    let plan = progress.plan.clone().expect("planned above");
    let no_values = BTreeMap::new();
    let out = super::remediate::remediate(
        &super::remediate::Input {
            config,
            policy,
            key,
            live: &live,
            before: &before,
            values: &no_values,
            mode,
            stable_timeout,
            recovery: None,
            watch_interval: config.remedies.watch_interval,
        },
        &plan,
        &progress,
        &mut journal,
    )
    .await;
    super::remediate::settle(&mut report, out);
    let _ = journal.append(Event::Finished {
        exit_code: report.exit_code,
    });
    report.finished_at = now_rfc3339();
    if let Ok(mut bytes) = serde_json::to_vec_pretty(&report) {
        bytes.push(b'\n');
        let _ = std::fs::write(run_dir.join("report.json"), bytes);
    }
    Ok(report)
}
