//! `opsguard check`: the steady-state rules on the live environment, for a
//! pre-push hook or a CI gate. Exit 0, 11 on a blocking violation, 13 when
//! the environment cannot be snapshotted.

use super::state_dir;
use crate::config::Config;
use crate::error::Error;
use crate::exit;
use crate::guard::{self, Policy};
use crate::report::model::Outcome;
use clap::Args;

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub out: super::output::ReportArgs,
}

pub async fn execute(config: &Config, args: CheckArgs) -> Result<u8, Error> {
    let policy = Policy::from_config(config)?;
    let dir = state_dir(config);
    let key = super::fingerprint_key(&dir)?;
    let mut report = guard::new_report("check", guard::new_run_id(), "check");
    match crate::snapshot::take_live(config, &key, &super::ui::progress().scoped("snapshot")).await
    {
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
    args.out.emit(&report, None)
}
