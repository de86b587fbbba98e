//! `opsguard run -- CMD [ARGS...]`

use super::state_dir;
use crate::config::{Config, Mode};
use crate::error::Error;
use crate::guard::{self, run::RunOptions, Policy};
use clap::Args;
use std::ffi::OsString;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// What to do on a blocking violation (default: [rules] on_violation).
    #[arg(long, value_enum, value_name = "MODE")]
    pub on_violation: Option<Mode>,

    #[command(flatten)]
    pub out: super::output::ReportArgs,

    /// How long a redeploy may take to become stable, in seconds
    /// (default: [remedies] stable_timeout_seconds, 600).
    #[arg(long, value_name = "SECS")]
    pub stable_timeout: Option<u64>,

    /// Probe every live credential while the command runs; on the first one
    /// that stops authenticating, stop the command and apply the remedy at once.
    #[arg(long)]
    pub watch: bool,

    /// Run even if the environment already violates a blocking rule (for
    /// repair scripts); the report records it.
    #[arg(long)]
    pub skip_preflight: bool,

    /// Rehearse first, against a shadow of the live environment: when it
    /// predicts a blocking violation, exit 11 without running the command
    /// for real (see `opsguard rehearse`).
    #[arg(long)]
    pub rehearse: bool,

    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

pub async fn execute(config: &Config, args: RunArgs) -> Result<u8, Error> {
    let policy = Policy::from_config(config)?;
    let dir = state_dir(config);
    let key = super::fingerprint_key(&dir)?;
    let run_id = guard::new_run_id();
    let _lock = crate::remedy::lock::acquire(&dir, &format!("run {run_id}"))?;
    let mode: Mode = args.on_violation.unwrap_or(config.rules.on_violation);
    let mut rehearsal = None;
    if args.rehearse {
        let r = crate::rehearse::rehearse(
            config,
            &policy,
            &key,
            &args.command,
            run_id.clone(),
            "run",
            mode.into(),
            &super::ui::progress().scoped("rehearse"),
        )
        .await?;
        if !r.clear() {
            // Not run for real: the predicted verdict is the report.
            let mut report = r.report;
            report.command_exit = None;
            report.command_signal = None;
            report.notes.push(
                "--rehearse: the rehearsal did not clear the command, so it was NOT run for real"
                    .into(),
            );
            return args.out.emit(&report, r.diff.as_deref());
        }
        rehearsal = r.report.rehearsal;
    }
    let opts = RunOptions {
        mode,
        stable_timeout: args
            .stable_timeout
            .map(std::time::Duration::from_secs)
            .unwrap_or(config.remedies.stable_timeout),
        watch: args.watch,
        skip_preflight: args.skip_preflight,
        progress: super::ui::progress(),
        command: args.command,
        run_dir: crate::state::run_dir(&dir, &run_id),
        run_id,
    };
    let mut result = guard::run::run(config, &policy, &key, opts).await?;
    if let Some(r) = rehearsal {
        result.report.notes.push(
            "rehearsed first: nothing blocking was predicted and live stayed unchanged".into(),
        );
        result.report.rehearsal = Some(r);
    }
    result.report.artifact = Some(super::config_artifact(&config.path));
    args.out.emit(&result.report, result.diff.as_deref())
}
