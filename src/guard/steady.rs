//! `check` and `diff`: the rules judged on one live snapshot (steady state),
//! or on two snapshot files. Both only read and return their report; the CLI
//! decides where it goes.

use super::{new_report, new_run_id, settle_steady, Policy};
use crate::exit;
use crate::report::model::{Outcome, Report, ReportMode};
use crate::rules::RuleError;
use crate::snapshot::fingerprint::FingerprintKey;
use crate::snapshot::model::Snapshot;

/// `check`: snapshot the live environment and judge it. A snapshot that
/// cannot be taken is a failed pre-flight in the report, not an error.
pub async fn check(
    config: &crate::config::Config,
    policy: &Policy,
    key: &FingerprintKey,
    progress: &crate::progress::Progress,
) -> Result<Report, RuleError> {
    let mut report = new_report("check", new_run_id(), ReportMode::Check);
    match crate::snapshot::take_live(config, key, progress).await {
        Err(e) => {
            exit::settle(&mut report, Outcome::PreflightFailed, None);
            report.preflight_error = Some(format!("cannot take a snapshot: {e}"));
        }
        Ok(taken) => {
            let findings = policy.evaluate(&policy.steady_facts(&taken.snapshot, "check"))?;
            settle_steady(&mut report, &findings);
        }
    }
    report.finished_at = super::now_rfc3339();
    Ok(report)
}

/// `diff`: judge the change between two snapshots, offline. Returns the
/// report and the text diff of the two.
pub fn diff(
    policy: &Policy,
    before: &Snapshot,
    after: &Snapshot,
) -> Result<(Report, String), RuleError> {
    let mut report = new_report("diff", new_run_id(), ReportMode::Diff);
    if before.fingerprint_key_id != after.fingerprint_key_id {
        report.notes.push(
            "the snapshots were made with different fingerprint keys: value changes are judged by secret versions only"
                .into(),
        );
    }
    let findings = policy.evaluate(&policy.facts(before, after, "diff", None))?;
    settle_steady(&mut report, &findings);
    report.changes = crate::report::changes::between(before, after);
    let text = crate::report::diff::text(before, after);
    report.finished_at = super::now_rfc3339();
    Ok((report, text))
}
