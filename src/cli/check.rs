//! `opsguard check`: the steady-state rules on the live environment, for a
//! pre-push hook or a CI gate. Exit 0, 11 on a blocking violation, 13 when
//! the environment cannot be snapshotted.
//!
//! `check --fix redeploy` also finds the services whose running tasks hold
//! a credential value older than their secret's, and redeploys exactly
//! those with `run`'s remedy ([`crate::guard::fix`]): exit 10 when fixed and
//! verified, 12 when the redeploy failed or could not be verified, 11 when a
//! blocking finding is one a redeploy cannot fix, 0 when nothing was needed.

use super::state_dir;
use crate::config::Config;
use crate::error::Error;
use crate::guard::{self, Policy};
use clap::{Args, ValueEnum};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Put right what a fix can: `redeploy` forces new deployments of the
    /// services whose running tasks hold a stale credential value, waits
    /// until they are stable and verifies with a fresh snapshot.
    #[arg(long, value_enum, value_name = "FIX")]
    pub fix: Option<Fix>,

    /// With --fix redeploy: how long the redeploys may take to become
    /// stable (default: [remedies] stable_timeout_seconds, 600).
    #[arg(long, value_name = "SECS", requires = "fix")]
    pub stable_timeout: Option<u64>,

    #[command(flatten)]
    pub out: super::output::ReportArgs,
}

/// What `check --fix` may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Fix {
    /// Force new deployments of the services holding stale values.
    Redeploy,
}

pub async fn execute(config: &Config, args: CheckArgs) -> Result<u8, Error> {
    let policy = Policy::from_config(config)?;
    let dir = state_dir(config);
    let key = super::fingerprint_key(&dir)?;
    let run_id = guard::new_run_id();
    let mut report = match args.fix {
        Some(Fix::Redeploy) => {
            // One remedy at a time, journalled in its run folder: an
            // interrupted fix is finished by `opsguard resume RUN_ID`.
            let _lock =
                crate::remedy::lock::acquire(&dir, &format!("check --fix redeploy {run_id}"))?;
            let run_dir = crate::state::run_dir(&dir, &run_id);
            guard::fix::check_fix_redeploy(
                config,
                &policy,
                &key,
                guard::fix::FixOptions {
                    run_dir: &run_dir,
                    run_id: &run_id,
                    progress: super::ui::progress().scoped("fix"),
                    stable_timeout: args
                        .stable_timeout
                        .map(std::time::Duration::from_secs)
                        .unwrap_or(config.remedies.stable_timeout),
                },
            )
            .await
        }
        None => {
            guard::steady::check(
                config,
                &policy,
                &key,
                &super::ui::progress().scoped("snapshot"),
            )
            .await?
        }
    };
    report.finished_at = guard::now_rfc3339();
    report.artifact = Some(super::config_artifact(&config.path));
    args.out.emit(&report, None)
}
