//! Remedy and proof: plan (or take the journalled plan), apply, then take a
//! fresh snapshot and re-evaluate. Shared by `run` and `resume`.
//!
//! One attempt is one [`Session`] (begin, plan, apply, verified, finish):
//! it owns the journal, so a line that cannot be written is handled in one
//! place (no step acts without its line). The fresh snapshots of `run` and
//! of the verification go through one [`take_with_retry`], and every
//! report a remedy touches is written by one [`save_report`].

use super::*;
use crate::remedy::apply::{self, Writers};
use crate::remedy::journal::Progress;
use crate::remedy::plan::Plan;
pub use crate::remedy::session::Session;
use crate::report::model::{Action, Remediation};
use crate::snapshot::fingerprint::FingerprintKey;
use crate::snapshot::{Live, Taken};
use std::path::Path;
use std::time::Duration;

pub struct Outcome {
    pub remediation: Remediation,
    /// `--watch`: when the tripped credentials authenticated again after the remedy.
    pub recovered: Option<(time::OffsetDateTime, std::time::Instant)>,
    /// Blocking findings that the fresh snapshot still shows.
    pub still_wrong: Vec<Finding>,
    /// What the plan said cannot be put right automatically.
    pub cannot: Vec<String>,
    /// Credentials a failed step left half-restored, in words.
    pub inconsistent: Vec<String>,
    pub error: Option<String>,
}

pub struct Input<'a> {
    pub config: &'a Config,
    pub policy: &'a Policy,
    pub key: &'a FingerprintKey,
    pub live: &'a Live,
    pub before: &'a Snapshot,
    /// The before-values: held in memory since before the command, or (on
    /// resume) read back from the secret versions the before snapshot names.
    pub values: &'a BTreeMap<String, crate::providers::ProbeAuth>,
    /// The values the secrets held when the remedy began (for an undo).
    pub current: &'a BTreeMap<String, crate::providers::ProbeAuth>,
    pub mode: Mode,
    pub stable_timeout: Duration,
    /// `--watch`: credentials to probe right after the remedy, until they
    /// authenticate, to time the end of the outage.
    pub recovery: Option<Vec<(&'a String, &'a crate::providers::ProbeAuth)>>,
    pub watch_interval: Duration,
    /// Where to say what the remedy and its verification wait for.
    pub progress: crate::progress::Progress,
}

/// Take a snapshot, retrying a failed one: the command (or a remedy) may
/// have left the world busy (a throttled API, a restarting node), and the
/// verdict is worth a short wait. Says, on failure, how many tries it took.
pub async fn take_with_retry(
    live: &Live,
    config: &Config,
    key: &FingerprintKey,
    attempts: u32,
) -> Result<Taken, String> {
    let mut last = String::new();
    for attempt in 1..=attempts.max(1) {
        match live.take(config, key).await {
            Ok(t) => return Ok(t),
            Err(e) => {
                tracing::warn!(attempt, error = %e, "snapshot failed");
                last = e.to_string();
                // A server that did not answer within its whole budget is
                // hung, not busy: another full wait would only double the
                // silence (the phase's deadline is the call's budget).
                if last.contains("timed out after") {
                    return Err(format!("{last} (not retried: the server does not answer)"));
                }
                if attempt < attempts {
                    tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                }
            }
        }
    }
    Err(format!(
        "{last} ({} tr{})",
        attempts.max(1),
        if attempts > 1 { "ies" } else { "y" }
    ))
}

/// Write `report.json` of a run. A report that cannot be written is said
/// on stderr (the report itself still goes to the chosen outputs).
pub fn save_report(run_dir: &Path, report: &Report) {
    save_json(run_dir, "report.json", report);
}

/// Write one JSON file of a run's state.
pub fn save_json(run_dir: &Path, name: &str, value: &impl serde::Serialize) {
    let written = std::fs::create_dir_all(run_dir).and_then(|_| {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        std::fs::write(run_dir.join(name), bytes)
    });
    if let Err(e) = written {
        tracing::warn!(file = name, error = %e, "could not save run state");
    }
}

/// Apply what `progress` has left of `plan` (all of it on a first attempt),
/// then verify.
pub async fn remediate(
    input: &Input<'_>,
    plan: &Plan,
    progress: &Progress,
    session: &mut Session,
) -> Outcome {
    let pending = progress.pending();
    let applied = if plan.steps.is_empty() {
        apply::Applied::default()
    } else {
        apply::apply(
            plan,
            &pending,
            session,
            &Writers {
                secrets: input.live.aws(),
                es: input.live.es(),
                ecs: input.live.aws(),
            },
            &apply::Options {
                values: input.values,
                current: input.current,
                stable_timeout: input.stable_timeout,
                progress: input.progress.scoped("remedy"),
            },
        )
        .await
    };
    // Steps done before a crash count as done.
    let mut all: Vec<Action> = progress
        .done
        .iter()
        .filter_map(|&i| plan.steps.get(i))
        .map(|step| Action {
            kind: step.kind().to_owned(),
            target: step.target(),
            ok: true,
            detail: Some(format!("{} (before the interruption)", step.describe())),
        })
        .collect();
    all.extend(applied.actions);

    let recovered = match &input.recovery {
        Some(creds) => {
            super::watch::recovery(
                input.live.es(),
                creds,
                input.watch_interval,
                Duration::from_secs(30),
            )
            .await
        }
        None => None,
    };
    let (still_wrong, mut error) = verify(input).await;
    if let Some(broken) = session.broken() {
        error.get_or_insert_with(|| {
            format!("{broken}; the journal no longer says what was done, so a crash now could not be resumed")
        });
    }
    let verified = error.is_none() && still_wrong.is_empty() && all.iter().all(|a| a.ok);
    session.verified(verified);
    Outcome {
        remediation: Remediation {
            mode: input.mode.into(),
            actions: all,
            verified,
            exit_to_verified_ms: None,
        },
        recovered,
        still_wrong,
        cannot: plan.cannot.clone(),
        inconsistent: applied.inconsistent,
        error,
    }
}

/// A fresh snapshot, judged against the before snapshot as the run was.
async fn verify(input: &Input<'_>) -> (Vec<Finding>, Option<String>) {
    let now = match take_with_retry(input.live, input.config, input.key, 3).await {
        Ok(now) => now,
        Err(e) => {
            return (
                Vec::new(),
                Some(format!(
                    "the fresh snapshot after the remedy failed ({e}); the remedy is unverified"
                )),
            )
        }
    };
    let probes = if input.values.is_empty() {
        None
    } else {
        match probe_values(input.live.es(), input.before, input.values).await {
            Ok(p) => Some(p),
            Err(e) => return (Vec::new(), Some(format!("verification probes failed: {e}"))),
        }
    };
    let facts = input
        .policy
        .facts(input.before, &now.snapshot, "run", probes.as_ref());
    match input.policy.evaluate_each(&facts) {
        Ok((f, broken)) => (
            f.into_iter().filter(is_blocking).collect(),
            broken
                .first()
                .map(|e| format!("rule evaluation failed, so the remedy is unverified: {e}")),
        ),
        Err(e) => (Vec::new(), Some(format!("rule evaluation failed: {e}"))),
    }
}

/// Put a remedy's outcome into the report: exit 10 when verified, else 12
/// with what is still wrong and what a person should do.
pub fn settle(report: &mut Report, out: Outcome) {
    let verified = out.remediation.verified;
    for a in out.remediation.actions.iter().filter(|a| !a.ok) {
        report.notes.push(
            format!(
                "remedy step failed: {} {}: {}",
                a.kind,
                a.target,
                a.detail.as_deref().unwrap_or("")
            )
            .replace("RUN_ID", &report.run_id),
        );
    }
    for c in &out.inconsistent {
        report.notes.push(c.replace("RUN_ID", &report.run_id));
    }
    for c in &out.cannot {
        report
            .notes
            .push(format!("{}{c}", crate::report::verdict::CANNOT_NOTE));
    }
    for f in &out.still_wrong {
        report.notes.push(format!(
            "{}{} on {}: {}",
            crate::report::verdict::STILL_WRONG_NOTE,
            f.rule,
            f.target,
            f.message
        ));
    }
    if let Some(e) = out.error {
        report.error = Some(e);
    }
    report.remediation = Some(out.remediation);
    if verified {
        exit::settle(report, crate::report::model::Outcome::Remediated, None);
    } else {
        exit::settle(
            report,
            crate::report::model::Outcome::RemediationFailed,
            None,
        );
        report.notes.push(format!(
            "a human is needed: the report lists what is still wrong; `opsguard resume {}` plans again from the current state and retries the remedy",
            report.run_id
        ));
    }
}
