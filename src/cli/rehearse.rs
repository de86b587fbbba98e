//! `opsguard rehearse -- CMD [ARGS...]`: run the command against a shadow of
//! the live environment and report what it would break (see `crate::rehearse`).

use super::output::emit;
use super::state_dir;
use crate::config::Config;
use crate::error::Error;
use crate::guard::{self, Policy};
use crate::report::Format;
use clap::Args;
use std::ffi::OsString;
use std::path::PathBuf;

pub const EXIT_CODES: &str = "\
Exit codes:
  0   no blocking violation predicted, the command exited 0 in the shadow
  N   no blocking violation predicted, the command exited N in the shadow
      (passed through; 128+signal if a signal killed it)
  2   usage or configuration error, or a rule or waiver that does not load
  11  blocking violations predicted (the live environment was not touched)
  12  the live environment changed while the command ran in the shadow
      (outcome escaped): a human must look
  13  the live snapshot or the shadow could not be built (e.g. no AWS
      emulator: install ministack or set [rehearse] aws_emulator); the
      command was NOT run";

#[derive(Debug, Args)]
pub struct RehearseArgs {
    /// Also write the report to stdout in this format (human text always goes to stderr).
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,

    /// Write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write the --format report to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The command to rehearse, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

pub async fn execute(config: &Config, args: RehearseArgs) -> Result<u8, Error> {
    let policy = Policy::from_config(config)?;
    let key = super::fingerprint_key(&state_dir(config))?;
    let r = crate::rehearse::rehearse(
        config,
        &policy,
        &key,
        &args.command,
        guard::new_run_id(),
        "rehearse",
        "",
    )
    .await?;
    emit(
        &r.report,
        r.diff.as_deref(),
        args.format,
        args.report.as_deref(),
        args.output.as_deref(),
    )
}
