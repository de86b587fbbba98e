//! `opsguard rehearse -- CMD [ARGS...]`: run the command against a shadow of
//! the live environment and report what it would break (see `crate::rehearse`).

use super::state_dir;
use crate::config::Config;
use crate::error::Error;
use crate::guard::{self, Policy};
use clap::Args;
use std::ffi::OsString;

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
    #[command(flatten)]
    pub out: super::output::ReportArgs,

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
        crate::report::model::ReportMode::None,
        &super::ui::progress(),
    )
    .await?;
    args.out.emit(&r.report, r.diff.as_deref())
}
