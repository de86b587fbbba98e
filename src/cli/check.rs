//! `opsguard check`: the steady-state rules on the live environment, for a
//! pre-push hook or a CI gate. Exit 0, 11 on a blocking violation, 13 when
//! the environment cannot be snapshotted.

use super::output::emit;
use super::state_dir;
use crate::config::Config;
use crate::error::Error;
use crate::exit;
use crate::guard::{self, Policy};
use crate::report::model::Outcome;
use crate::report::Format;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also write the report in this format: to stdout, or to --output FILE (human text always goes to stderr).
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,

    /// Write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write the --format report to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub async fn execute(config: &Config, args: CheckArgs) -> Result<u8, Error> {
    let policy = Policy::from_config(config)?;
    let dir = state_dir(config);
    let key = super::fingerprint_key(&dir)?;
    let mut report = guard::new_report("check", guard::new_run_id(), "check");
    match crate::snapshot::take_live(config, &key).await {
        Err(e) => {
            report.outcome = Outcome::PreflightFailed;
            report.exit_code = exit::PREFLIGHT_FAILED;
            report.preflight_error = Some(format!("cannot take a snapshot: {e}"));
        }
        Ok(taken) => {
            let findings = policy.evaluate(&policy.steady_facts(&taken.snapshot, "check"))?;
            guard::settle_steady(&mut report, &findings);
        }
    }
    report.finished_at = guard::now_rfc3339();
    report.artifact = Some(super::config_artifact(&config.path));
    emit(
        &report,
        None,
        args.format,
        args.report.as_deref(),
        args.output.as_deref(),
    )
}
