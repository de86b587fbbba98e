//! The errors that reach the binary's edge. Each knows its exit code, so the
//! mapping from "what went wrong" to the contract in [`crate::exit`] is made
//! in one place.

use crate::config::ConfigError;
use crate::exit;
use crate::guard::command::SpawnError;
use crate::providers::ProviderError;
use crate::rules::RuleError;
use miette::Diagnostic;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum Error {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Rules(#[from] RuleError),

    #[error("cannot take a snapshot: {0}")]
    #[diagnostic(
        code(opsguard::snapshot),
        help("opsguard needs a complete picture and will not work from a partial one. Check the AWS credentials and region (`aws sts get-caller-identity`), [aws] endpoint_url, [elasticsearch] url, and the permissions README.md lists under \"IAM permissions\"; -v shows every call made")
    )]
    Snapshot(ProviderError),

    #[error("cannot use the fingerprint key in {}", dir.display())]
    #[diagnostic(
        code(opsguard::fingerprint_key),
        help("opsguard keeps .opsguard/fingerprint.key next to the config; make that folder writable or set OPSGUARD_FINGERPRINT_KEY")
    )]
    FingerprintKey {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    #[diagnostic(
        code(opsguard::spawn),
        help("check the command after `--`: is it on PATH and executable? Nothing was changed by opsguard.")
    )]
    Spawn(#[from] SpawnError),

    #[error(transparent)]
    #[diagnostic(
        code(opsguard::resume),
        help("runs live in .opsguard/runs/ beside the config (the one --config names); the run id is the folder name, and its report.json says what the run did")
    )]
    Resume(#[from] crate::guard::resume::ResumeError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Locked(#[from] crate::remedy::lock::LockError),

    #[error("{}: {message}", path.display())]
    #[diagnostic(
        code(opsguard::snapshot_file),
        help("pass files written by `opsguard snapshot -o FILE`")
    )]
    SnapshotFile { path: PathBuf, message: String },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Plan(#[from] crate::plan::PlanError),

    #[error("{0}")]
    #[diagnostic(
        code(opsguard::plan_source),
        help("say where the plan JSON comes from: `opsguard plan plan.json` (or `-` for stdin), or a [plan] section in opsguard.toml with `file = \"plan.json\"` or `command = [\"terraform\", \"show\", \"-json\", \"tfplan\"]`")
    )]
    PlanSource(String),

    #[error("cannot write {}", path.display())]
    #[diagnostic(
        code(opsguard::output),
        help("check that the folder exists and that you may write there, or name another file")
    )]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Init(#[from] crate::cli::init::InitError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Hook(#[from] crate::cli::hook::HookError),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_)
            | Error::Rules(_)
            | Error::Spawn(_)
            | Error::SnapshotFile { .. }
            | Error::Locked(_)
            | Error::Resume(_)
            | Error::Output { .. }
            | Error::Plan(_)
            | Error::PlanSource(_)
            | Error::Hook(_) => exit::USAGE,
            Error::Snapshot(_) | Error::FingerprintKey { .. } => exit::PREFLIGHT_FAILED,
            // An answer that cannot be written (or would overwrite) is a
            // usage error; AWS that cannot be read is a failed pre-flight.
            Error::Init(e) => match e {
                crate::cli::init::InitError::Exists { .. }
                | crate::cli::init::InitError::Write { .. } => exit::USAGE,
                crate::cli::init::InitError::Aws(_)
                | crate::cli::init::InitError::NoClusters { .. } => exit::PREFLIGHT_FAILED,
            },
        }
    }
}
