//! `opsguard diff BEFORE.json AFTER.json`: the rules on two snapshot files,
//! offline. No secret values exist in snapshots, so a before-value cannot be
//! re-probed: where a value changed, `before_value_after` is `unknown`.

use crate::config::Config;
use crate::error::Error;
use crate::guard::{self, Policy};
use crate::snapshot::model::{Snapshot, SCHEMA};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The snapshot before the change.
    pub before: PathBuf,
    /// The snapshot after the change.
    pub after: PathBuf,

    #[command(flatten)]
    pub out: super::output::ReportArgs,
}

fn read(path: &Path) -> Result<Snapshot, Error> {
    let err = |message: String| Error::SnapshotFile {
        path: path.to_owned(),
        message,
    };
    let safe = |s: String| crate::report::escape::line(&s, 512);
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| err(format!("not JSON: {e}")))?;
    if value["schema"] != SCHEMA {
        return Err(err(format!(
            "not an {SCHEMA} document (schema is {})",
            safe(value["schema"].to_string())
        )));
    }
    // Where in the document the schema breaks, as a JSON path.
    let snapshot: Snapshot = serde_path_to_error::deserialize(&value).map_err(|e| {
        err(format!(
            "malformed snapshot at {}: {}",
            safe(e.path().to_string()),
            safe(e.inner().to_string())
        ))
    })?;
    // Names from a file are data: escaped and capped before anything
    // renders them (the same way in both snapshots, so they still join).
    Ok(crate::report::escape::sanitize(&snapshot))
}

pub fn execute(config: Option<&Config>, args: DiffArgs) -> Result<u8, Error> {
    let policy = match config {
        Some(c) => Policy::from_config(c)?,
        None => Policy::builtin()?,
    };
    let before = read(&args.before)?;
    let after = read(&args.after)?;
    let (mut report, diff) = guard::steady::diff(&policy, &before, &after)?;
    // Live findings point at the config; without one, at the after snapshot.
    report.artifact = Some(super::config_artifact(
        config.map(|c| c.path.as_path()).unwrap_or(&args.after),
    ));
    args.out.emit(&report, Some(&diff))
}
