//! `opsguard resume RUN_ID`: finish an interrupted remedy and verify it.

use super::state_dir;
use crate::config::Config;
use crate::error::Error;
use crate::guard::{self, Policy};
use clap::Args;

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run to resume (a folder name under .opsguard/runs/).
    pub run_id: String,

    /// How long a redeploy may take to become stable, in seconds.
    #[arg(long, value_name = "SECS")]
    pub stable_timeout: Option<u64>,

    #[command(flatten)]
    pub out: super::output::ReportArgs,
}

pub async fn execute(config: &Config, args: ResumeArgs) -> Result<u8, Error> {
    let policy = Policy::from_config(config)?;
    let dir = state_dir(config);
    let key = super::fingerprint_key(&dir)?;
    if args.run_id.is_empty() || args.run_id.contains(['/', '\\']) || args.run_id.starts_with('.') {
        return Err(Error::Resume(guard::resume::ResumeError::NoRun {
            run_id: args.run_id,
            dir: dir.join(crate::state::RUNS).display().to_string(),
        }));
    }
    let _lock = crate::remedy::lock::acquire(&dir, &format!("resume {}", args.run_id))?;
    let report = guard::resume::resume(
        config,
        &policy,
        &key,
        &crate::state::run_dir(&dir, &args.run_id),
        &args.run_id,
        args.stable_timeout
            .map(std::time::Duration::from_secs)
            .unwrap_or(config.remedies.stable_timeout),
        &super::ui::progress(),
    )
    .await?;
    let mut report = report;
    report.artifact = Some(super::config_artifact(&config.path));
    args.out.emit(&report, None)
}
