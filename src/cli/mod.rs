//! The command line: arguments → config → subcommand → exit code.
//!
//! Each subcommand is its own module with its own clap struct. Human output
//! goes to stderr (colour only on a terminal, never with `NO_COLOR`);
//! machine output goes to stdout or a file.

mod check;
mod diff;
mod output;
mod resume;
mod rules;
mod run;
mod snapshot;

use crate::config::Config;
use crate::error::Error;
use crate::exit;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0   no blocking violation (run: the command exited 0)
  N   no blocking violation, the command exited N (passed through)
  2   usage or configuration error; nothing was run
  10  blocking violation; remedy applied and verified by a fresh snapshot
  11  blocking violation; no remedy applied
  12  blocking violation; remedy failed or unverified: a human is needed
  13  pre-flight failed: no complete snapshot, or the environment already violates a blocking rule";

/// Makes operations scripts safe to run: snapshots Elasticsearch users,
/// Secrets Manager secrets and ECS services, and tells what a change broke.
#[derive(Debug, Parser)]
#[command(name = "opsguard", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// The config file.
    #[arg(
        long,
        global = true,
        env = "OPSGUARD_CONFIG",
        default_value = "opsguard.toml"
    )]
    pub config: PathBuf,

    /// Show the API calls made (never secret values). Repeat for more.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command with opsguard watching: snapshot before and after,
    /// and judge the change.
    Run(run::RunArgs),
    /// Evaluate the steady-state rules on the live environment.
    Check(check::CheckArgs),
    /// Write a redacted JSON snapshot of the environment.
    Snapshot(snapshot::SnapshotArgs),
    /// Evaluate the rules on two snapshot files, offline.
    Diff(diff::DiffArgs),
    /// List the rules in force, or run their test cases.
    Rules(rules::RulesArgs),
    /// Finish an interrupted remedy from its journal, and verify it.
    Resume(resume::ResumeArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    setup_output(cli.verbose);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e.exit_code();
            eprintln!("{:?}", miette::Report::new(e));
            ExitCode::from(code)
        }
    }
}

fn setup_output(verbose: u8) {
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    colored::control::set_override(colour);
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(colour)
                .unicode(colour)
                .wrap_lines(false)
                .build(),
        )
    }));
    let filter = match verbose {
        0 => "warn",
        1 => "warn,opsguard=debug",
        _ => "warn,opsguard=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .try_init();
}

/// Run a parsed command line and return the exit code.
pub fn run(cli: Cli) -> Result<u8, Error> {
    let env = |k: &str| std::env::var(k).ok();
    match cli.command {
        // Offline commands: the config is optional and no secret is read.
        Command::Rules(args) => {
            let config = offline_config(&cli.config)?;
            rules::execute(config.as_ref(), args)
        }
        Command::Diff(args) => {
            let config = offline_config(&cli.config)?;
            diff::execute(config.as_ref(), args)
        }
        Command::Snapshot(args) => {
            let config = Config::load(&cli.config, &env)?;
            runtime()?.block_on(snapshot::execute(&config, args))
        }
        Command::Check(args) => {
            let config = Config::load(&cli.config, &env)?;
            runtime()?.block_on(check::execute(&config, args))
        }
        Command::Resume(args) => {
            let config = Config::load(&cli.config, &env)?;
            runtime()?.block_on(resume::execute(&config, args))
        }
        Command::Run(args) => {
            let config = Config::load(&cli.config, &env)?;
            runtime()?.block_on(run::execute(&config, args))
        }
    }
}

/// The config for a command that needs none: used when present (its rule
/// paths, waivers, environments), skipped when the default file is absent.
fn offline_config(path: &Path) -> Result<Option<Config>, Error> {
    let explicit =
        std::env::var_os("OPSGUARD_CONFIG").is_some() || path != Path::new("opsguard.toml");
    if !explicit && !path.exists() {
        return Ok(None);
    }
    Ok(Some(Config::load_offline(path)?))
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| Error::Output {
            path: PathBuf::from("<tokio runtime>"),
            source,
        })
}

/// Whether human output on stderr may use colour.
pub fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `.opsguard/` beside the config file: run state and the fingerprint key.
pub fn state_dir(config: &Config) -> PathBuf {
    let dir = config
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(".opsguard")
}

/// Write to a file atomically: a reader never sees half a snapshot.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let err = |source| Error::Output {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}
