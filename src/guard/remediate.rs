//! Remedy and proof: plan (or take the journalled plan), apply, then take a
//! fresh snapshot and re-evaluate. Shared by `run` and `resume`.

use super::*;
use crate::remedy::apply::{self, Writers};
use crate::remedy::journal::{Event, Journal, Progress};
use crate::remedy::plan::Plan;
use crate::report::model::{Action, Remediation};
use crate::snapshot::fingerprint::FingerprintKey;
use crate::snapshot::Live;
use std::time::Duration;

pub struct Outcome {
    pub remediation: Remediation,
    /// `--watch`: when the tripped credentials authenticated again after the remedy.
    pub recovered: Option<(time::OffsetDateTime, std::time::Instant)>,
    /// Blocking findings that the fresh snapshot still shows.
    pub still_wrong: Vec<Finding>,
    /// What the plan said cannot be put right automatically.
    pub cannot: Vec<String>,
    pub error: Option<String>,
}

pub struct Input<'a> {
    pub config: &'a Config,
    pub policy: &'a Policy,
    pub key: &'a FingerprintKey,
    pub live: &'a Live,
    pub before: &'a Snapshot,
    /// Values held in memory since before the command (empty on resume).
    pub values: &'a BTreeMap<String, crate::providers::ProbeAuth>,
    pub mode: Mode,
    pub stable_timeout: Duration,
    /// `--watch`: credentials to probe right after the remedy, until they
    /// authenticate, to time the end of the outage.
    pub recovery: Option<Vec<(&'a String, &'a crate::providers::ProbeAuth)>>,
    pub watch_interval: Duration,
}

/// Apply what `progress` has left of `plan` (all of it on a first attempt),
/// then verify.
pub async fn remediate(
    input: &Input<'_>,
    plan: &Plan,
    progress: &Progress,
    journal: &mut Journal,
) -> Outcome {
    let pending = progress.pending();
    let actions = if plan.steps.is_empty() {
        Vec::new()
    } else {
        apply::apply(
            plan,
            &pending,
            journal,
            &Writers {
                secrets: input.live.aws(),
                es: input.live.es(),
                ecs: input.live.aws(),
            },
            &apply::Options {
                values: input.values,
                stable_timeout: input.stable_timeout,
                progress: crate::cli::colour(),
            },
        )
        .await
    };
    // Steps done before a crash count as done.
    let mut all: Vec<Action> = progress
        .done
        .iter()
        .map(|&i| Action {
            kind: plan.steps[i].kind().to_owned(),
            target: plan.steps[i].target(),
            ok: true,
            detail: Some(format!(
                "{} (before the interruption)",
                plan.steps[i].describe()
            )),
        })
        .collect();
    all.extend(actions);

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
    let (still_wrong, error) = verify(input).await;
    let verified = error.is_none() && still_wrong.is_empty() && all.iter().all(|a| a.ok);
    let _ = journal.append(Event::Verified { ok: verified });
    Outcome {
        remediation: Remediation {
            mode: mode_name(input.mode).to_owned(),
            actions: all,
            verified,
            exit_to_verified_ms: None,
        },
        recovered,
        still_wrong,
        cannot: plan.cannot.clone(),
        error,
    }
}

/// A fresh snapshot, judged against the before snapshot as the run was.
async fn verify(input: &Input<'_>) -> (Vec<Finding>, Option<String>) {
    let mut last = None;
    for attempt in 1..=3u64 {
        match input.live.take(input.config, input.key).await {
            Ok(now) => {
                let probes = if input.values.is_empty() {
                    None
                } else {
                    match probe_values(input.live.es(), input.before, input.values).await {
                        Ok(p) => Some(p),
                        Err(e) => {
                            return (Vec::new(), Some(format!("verification probes failed: {e}")))
                        }
                    }
                };
                let facts = input
                    .policy
                    .facts(input.before, &now.snapshot, "run", probes.as_ref());
                return match input.policy.evaluate(&facts) {
                    Ok(f) => (f.into_iter().filter(is_blocking).collect(), None),
                    Err(e) => (Vec::new(), Some(format!("rule evaluation failed: {e}"))),
                };
            }
            Err(e) => {
                last = Some(e.to_string());
                tokio::time::sleep(Duration::from_secs(attempt)).await;
            }
        }
    }
    (
        Vec::new(),
        Some(format!(
            "the fresh snapshot after the remedy failed ({}); the remedy is unverified",
            last.unwrap_or_default()
        )),
    )
}

/// Put a remedy's outcome into the report: exit 10 when verified, else 12
/// with what is still wrong and what a person should do.
pub fn settle(report: &mut Report, out: Outcome) {
    let verified = out.remediation.verified;
    for a in out.remediation.actions.iter().filter(|a| !a.ok) {
        report.notes.push(format!(
            "remedy step failed: {} {}: {}",
            a.kind,
            a.target,
            a.detail.as_deref().unwrap_or("")
        ));
    }
    for c in &out.cannot {
        report
            .notes
            .push(format!("cannot be put right automatically: {c}"));
    }
    for f in &out.still_wrong {
        report.notes.push(format!(
            "still wrong after the remedy: {} on {}: {}",
            f.rule, f.target, f.message
        ));
    }
    if let Some(e) = out.error {
        report.error = Some(e);
    }
    report.remediation = Some(out.remediation);
    if verified {
        report.outcome = crate::report::model::Outcome::Remediated;
        report.exit_code = exit::REMEDIATED;
    } else {
        report.outcome = crate::report::model::Outcome::RemediationFailed;
        report.exit_code = exit::REMEDY_FAILED;
        report
            .notes
            .push("a human is needed: the report lists what is still wrong; `opsguard resume RUN_ID` retries the remedy".into());
    }
}
