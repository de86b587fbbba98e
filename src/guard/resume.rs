//! `opsguard resume RUN_ID`: finish a remedy that was interrupted (opsguard
//! killed, the machine lost), from the run's journal, and verify it.
//!
//! The journal says which steps were done; the others are applied again (each
//! is idempotent). The values the credentials held before the command are
//! read back from the secret versions the before snapshot names — the
//! journal never held them — and probed, so a plan made now rests on the
//! same facts a plan made by `run` would have. A plan is made now, from the
//! before snapshot and a fresh one, when opsguard died before it had
//! planned (even before the after snapshot), and when the last attempt ran
//! to its end unverified: resuming it again must not just repeat "nothing
//! left to do".
//!
//! The journal is read as untrusted input: lines that are not events, and
//! events naming steps the plan does not have, are skipped and named in
//! the report.

use super::remediate::{take_with_retry, Session};
use super::*;
use crate::remedy::journal::{self, Progress};
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
    shown: &crate::progress::Progress,
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
    let read = match journal::read(&run_dir.join(journal::FILE)) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => journal::Read::default(),
        Err(e) => return Err(unusable(format!("cannot read its journal: {e}"))),
    };
    let (mut progress, step_problems) = Progress::checked(&read.events);
    // The journal's mode, else the saved report's, else the config's.
    let mode = match (progress.mode, saved.as_ref().map(|r| r.mode.as_str())) {
        (Some(m), _) => m,
        (None, Some(word)) => Mode::from_word(word).ok_or_else(|| ResumeError::NoRemedy {
            run_id: run_id.to_owned(),
            mode: crate::report::escape::line(word, 64),
        })?,
        (None, None) => config.rules.on_violation,
    };
    if !matches!(mode, Mode::Rollback | Mode::Redeploy) {
        return Err(ResumeError::NoRemedy {
            run_id: run_id.to_owned(),
            mode: mode.as_str().to_owned(),
        });
    }

    let mut report = saved.unwrap_or_else(|| new_report("run", run_id.to_owned(), mode.into()));
    report.notes.push(format!("resumed at {}", now_rfc3339()));
    for p in read.problems.iter().chain(&step_problems) {
        report.notes.push(format!("journal damaged: {p}"));
    }
    let connected = {
        let _step = shown.step("resume: connecting to AWS and Elasticsearch");
        Live::connect(config).await
    };
    let live = match connected {
        Ok(l) => l.with_progress(shown),
        Err(e) => {
            exit::settle(
                &mut report,
                crate::report::model::Outcome::RemediationFailed,
                None,
            );
            report.error = Some(format!("cannot reach the environment to resume: {e}"));
            super::remediate::save_report(run_dir, &report);
            return Ok(report);
        }
    };
    // Later snapshots read the version history of what moved since `before`.
    live.remember(&before);
    let mut session =
        Session::begin(run_dir, run_id, mode, progress.mode.is_some()).map_err(&unusable)?;

    // The before-values, read back from the versions the before snapshot names.
    let step = shown.step("resume: reading back the before-values");
    let (values, unreadable) =
        crate::remedy::apply::recover_values(&before, config, live.aws()).await;
    drop(step);
    for u in &unreadable {
        report
            .notes
            .push(format!("before-value not recovered: {u}"));
    }

    // The state now: what a plan is made from, and what the secrets hold
    // (an Elasticsearch password is set back to that if its secret cannot
    // follow).
    live.set_phase("resume: snapshot of the current state");
    let now = match take_with_retry(&live, config, key, 3).await {
        Ok(now) => now,
        Err(e) => {
            exit::settle(
                &mut report,
                crate::report::model::Outcome::RemediationFailed,
                None,
            );
            report.error = Some(format!(
                "cannot take a snapshot of the current state, so nothing was done: {e}"
            ));
            super::remediate::save_report(run_dir, &report);
            return Ok(report);
        }
    };
    let replan = progress.plan.is_none() || progress.ended_unverified();
    if replan {
        if progress.ended_unverified() {
            report.notes.push(format!(
                "the last attempt ended unverified{}: planned again from the current state",
                progress
                    .finished
                    .map(|c| format!(" (exit {c})"))
                    .unwrap_or_default()
            ));
        }
        // Plan from the before snapshot and the state now, with the
        // before-values probed: exactly the facts `run` plans from.
        let step = shown.step("resume: probing the before-values");
        let probes = probe_values(live.es(), &before, &values).await;
        drop(step);
        let probes = match probes {
            Ok(p) => p,
            Err(e) => {
                exit::settle(
                    &mut report,
                    crate::report::model::Outcome::RemediationFailed,
                    None,
                );
                report.error = Some(format!(
                    "cannot probe the values the credentials held before the command, so nothing was done: {e}"
                ));
                super::remediate::save_report(run_dir, &report);
                return Ok(report);
            }
        };
        let facts = policy.facts(&before, &now.snapshot, "run", Some(&probes));
        let findings = policy
            .evaluate(&facts)
            .map_err(|e| unusable(format!("rule evaluation failed: {e}")))?;
        record_findings(&mut report, &findings);
        let plan =
            crate::remedy::plan::plan(mode, &findings, &facts, &before, &now.snapshot, config);
        session.plan(&plan).map_err(&unusable)?;
        progress = Progress {
            mode: Some(mode),
            plan: Some(plan),
            ..Default::default()
        };
    }
    let Some(plan) = progress.plan.clone() else {
        return Err(unusable("its journal has no plan".into()));
    };
    live.set_phase("verification snapshot");
    let out = super::remediate::remediate(
        &super::remediate::Input {
            config,
            policy,
            key,
            live: &live,
            before: &before,
            values: &values,
            current: &now.auth,
            mode,
            stable_timeout,
            recovery: None,
            watch_interval: config.remedies.watch_interval,
            progress: shown.scoped("resume"),
        },
        &plan,
        &progress,
        &mut session,
    )
    .await;
    super::remediate::settle(&mut report, out);
    session.finish(report.exit_code);
    report.finished_at = now_rfc3339();
    super::remediate::save_report(run_dir, &report);
    Ok(report)
}
