//! The command line: arguments → config → subcommand → exit code.
//!
//! Each subcommand is its own module with its own clap struct. Human output
//! goes to stderr (colour only on a terminal, never with `NO_COLOR`);
//! machine output goes to stdout or a file.

mod check;
mod completions;
mod diff;
pub mod hook;
pub mod init;
mod output;
mod plan;
mod rehearse;
mod resume;
mod rules;
mod run;
mod snapshot;
pub mod ui;
mod validate;

use crate::config::Config;
use crate::error::Error;
use crate::exit;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0   no blocking violation (run: the command exited 0)
  N   no blocking violation, the command exited N (passed through; a command's
      own 2 or 10-13 becomes 1, so those codes are always opsguard's verdict)
  1   rules test: a rule's test case failed
  2   usage or configuration error; nothing was run
  10  blocking violation; remedy applied and verified by a fresh snapshot
  11  blocking violation; no remedy applied
  12  blocking violation; remedy failed or unverified: a human is needed
  13  pre-flight failed: no complete snapshot, or the environment already violates a blocking rule

`opsguard COMMAND --help` lists the codes each command can return.";

/// Each subcommand's `--help` ends with the exit codes it can return.
const RUN_EXIT_CODES: &str = "\
Exit codes:
  0   no blocking violation, the command exited 0
  N   no blocking violation, the command exited N (passed through; 128+signal
      if a signal killed it); also mode warn, whatever was found. A command
      exiting 2, 10, 11, 12 or 13 gives 1 instead, so those codes are always
      opsguard's verdict (the report's command_exit keeps the real code)
  2   usage or configuration error, a rule or waiver that does not load, or
      another run holds the lock; nothing was run
  10  blocking violation; remedy applied and verified by a fresh snapshot
  11  blocking violation; no remedy applied (mode block); with --rehearse,
      also a blocking violation predicted: the command was NOT run for real
  12  blocking violation; remedy failed or unverified, or the after snapshot
      could not be taken: a human is needed
  13  pre-flight failed: no complete snapshot, or the environment already
      violates a blocking rule; the command was NOT run

Under GitHub Actions (GITHUB_ACTIONS=true) each finding is also an annotation
on stderr, and the Markdown report is appended to $GITHUB_STEP_SUMMARY.";

const CHECK_EXIT_CODES: &str = "\
Exit codes:
  0   no blocking violation (warnings are reported, and do not fail); with
      --fix redeploy: nothing needed fixing
  2   usage or configuration error, a rule or waiver that does not load, or
      (--fix) another run holds the lock
  10  --fix redeploy: the stale services were redeployed, and a fresh
      snapshot shows every blocking violation gone
  11  blocking violation on the live environment; with --fix redeploy, one a
      redeploy cannot fix (named in the report): nothing was redeployed
  12  --fix redeploy: the redeploy failed or could not be verified (finish it
      with `opsguard resume RUN_ID`)
  13  the environment could not be snapshotted (-v shows the calls made)

Under GitHub Actions (GITHUB_ACTIONS=true) each finding is also an annotation
on stderr, and the Markdown report is appended to $GITHUB_STEP_SUMMARY.";

const SNAPSHOT_EXIT_CODES: &str = "\
Exit codes:
  0   the snapshot was written
  2   usage or configuration error, or the output cannot be written
  13  the environment could not be snapshotted (-v shows the calls made)";

const DIFF_EXIT_CODES: &str = "\
Exit codes:
  0   no blocking violation between the two snapshots
  2   usage or configuration error, or a file that is not an opsguard snapshot
  11  blocking violation

Under GitHub Actions (GITHUB_ACTIONS=true) each finding is also an annotation
on stderr, and the Markdown report is appended to $GITHUB_STEP_SUMMARY.";

const RULES_LIST_EXIT_CODES: &str = "\
Exit codes:
  0   every rule and waiver loads
  2   a rule, the config or a waiver does not load (an expired waiver, one
      naming an unknown rule)";

const RULES_SHOW_EXIT_CODES: &str = "\
Exit codes:
  0   the rule is in force, and every rule and waiver loads
  2   no rule of that id is in force (the nearest are named), or a rule, the
      config or a waiver does not load";

const RULES_TEST_EXIT_CODES: &str = "\
Exit codes:
  0   every test case passed
  1   a test case failed
  2   a rule, the config or a waiver does not load";

const RESUME_EXIT_CODES: &str = "\
Exit codes:
  10  the remedy is complete and verified by a fresh snapshot
  12  the remedy failed or could not be verified: a human is needed
  2   no such run, a run without a remedy, another run holds the lock, or a
      configuration error
  13  the environment could not be read";

const OUTPUT_EXIT_CODES: &str = "\
Exit codes:
  0   written to standard output
  2   usage error";

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

    /// More detail: -v the full diff and the API calls made, -vv and -vvv
    /// more of the log (never secret values).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print only the verdict line of the human report, and no progress.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// When to colour the human output: auto (a terminal, and NO_COLOR
    /// unset), always or never.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: ui::ColorChoice,

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
    /// Run a command against a shadow of the live environment and report
    /// what it would break; live is only read.
    Rehearse(rehearse::RehearseArgs),
    /// Write a redacted JSON snapshot of the environment.
    Snapshot(snapshot::SnapshotArgs),
    /// Evaluate the rules on two snapshot files, offline.
    Diff(diff::DiffArgs),
    /// List the rules in force, show one in full, or run their test cases.
    Rules(rules::RulesArgs),
    /// Finish an interrupted remedy from its journal, and verify it.
    Resume(resume::ResumeArgs),
    /// Judge a Terraform plan (`terraform show -json`) against the live
    /// credential graph before it is applied.
    Plan(plan::PlanArgs),
    /// Load the config, the credentials it names, the rules and the waivers
    /// as a run would, without the network; list every problem.
    Validate(validate::ValidateArgs),
    /// Install the git pre-push hook that runs opsguard's checks before a push.
    Hook(hook::HookArgs),
    /// Write a first opsguard.toml from the ECS clusters, services and
    /// secrets AWS shows.
    Init(init::InitArgs),
    /// Print shell completions (bash, zsh, fish, powershell, elvish).
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff): `opsguard man > opsguard.1`.
    Man(completions::ManArgs),
}

/// The clap command, with each subcommand's exit codes after its help. The
/// parser, the completions and the man page all use this one.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command()
        .mut_subcommand("run", |c| c.after_help(RUN_EXIT_CODES))
        .mut_subcommand("check", |c| c.after_help(CHECK_EXIT_CODES))
        .mut_subcommand("rehearse", |c| c.after_help(rehearse::EXIT_CODES))
        .mut_subcommand("snapshot", |c| c.after_help(SNAPSHOT_EXIT_CODES))
        .mut_subcommand("diff", |c| c.after_help(DIFF_EXIT_CODES))
        .mut_subcommand("rules", |c| {
            c.after_help(format!(
                "list: {}\n\nshow: {}\n\ntest: {}",
                RULES_LIST_EXIT_CODES, RULES_SHOW_EXIT_CODES, RULES_TEST_EXIT_CODES
            ))
            .mut_subcommand("list", |c| c.after_help(RULES_LIST_EXIT_CODES))
            .mut_subcommand("show", |c| c.after_help(RULES_SHOW_EXIT_CODES))
            .mut_subcommand("test", |c| c.after_help(RULES_TEST_EXIT_CODES))
        })
        .mut_subcommand("resume", |c| c.after_help(RESUME_EXIT_CODES))
        .mut_subcommand("plan", |c| c.after_help(plan::EXIT_CODES))
        .mut_subcommand("validate", |c| c.after_help(validate::EXIT_CODES))
        .mut_subcommand("hook", |c| c.after_help(hook::EXIT_CODES))
        .mut_subcommand("init", |c| c.after_help(init::EXIT_CODES))
        .mut_subcommand("completions", |c| c.after_help(completions::EXIT_CODES))
        .mut_subcommand("man", |c| c.after_help(OUTPUT_EXIT_CODES));
    // --config and -v are global, but mean nothing to the two commands that
    // only describe the CLI. A hidden arg of the same id on a subcommand
    // stops clap propagating the global one there, which keeps them out of
    // those commands' help, man pages and completions.
    let hidden: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| a.clone().global(false).hide(true))
        .collect();
    for sub in ["completions", "man"] {
        cmd = cmd.mut_subcommand(sub, |c| c.args(hidden.clone()));
    }
    cmd
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let parsed = command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
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
    let ui = ui::Ui::decide(cli.color, cli.quiet, cli.verbose);
    ui::set(ui);
    setup_output(ui);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e.exit_code();
            let text = format!("{:?}", miette::Report::new(e));
            eprintln!("{}", crate::report::escape::lines(&text, 4096));
            ExitCode::from(code)
        }
    }
}

fn setup_output(ui: ui::Ui) {
    let colour = ui.colour;
    colored::control::set_override(colour);
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(Uncoded(
            miette::MietteHandlerOpts::new()
                .color(colour)
                .unicode(colour)
                .wrap_lines(false)
                .build(),
        ))
    }));
    // -v: every API call with its duration and answer; -vv: every attempt
    // (retries, request ids) and the rest of opsguard's detail; -vvv: the
    // libraries' debug log too. Without -v only opsguard's own warnings
    // pass, written as messages, not as log records.
    let filter = match ui.verbose {
        0 => "off,opsguard=warn",
        1 => "warn,opsguard=debug",
        2 => "warn,opsguard=trace",
        _ => "debug,opsguard=trace",
    };
    let from_env = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").ok();
    let human = ui.verbose == 0 && from_env.is_none();
    let filter = from_env.unwrap_or_else(|| tracing_subscriber::EnvFilter::new(filter));
    let writer = EscapedStderr { colour, human };
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(colour)
        .with_target(false);
    let _ = if human {
        log.without_time().with_level(false).try_init()
    } else {
        log.try_init()
    };
}

/// Renders errors as miette does, without their internal code
/// (`opsguard::config::invalid`): a person reads what went wrong and the
/// help, not the name of the type it came from.
struct Uncoded(miette::MietteHandler);

impl miette::ReportHandler for Uncoded {
    fn debug(
        &self,
        error: &dyn miette::Diagnostic,
        f: &mut std::fmt::Formatter<'_>,
    ) -> std::fmt::Result {
        self.0.debug(&WithoutCode(error), f)
    }
}

/// A diagnostic as it is, minus its code.
struct WithoutCode<'a>(&'a dyn miette::Diagnostic);

impl std::fmt::Debug for WithoutCode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.0, f)
    }
}

impl std::fmt::Display for WithoutCode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.0, f)
    }
}

impl std::error::Error for WithoutCode<'_> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl miette::Diagnostic for WithoutCode<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        self.0.severity()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.0.help()
    }
    fn url<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.0.url()
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.0.source_code()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.0.labels()
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        self.0.related()
    }
    fn diagnostic_source(&self) -> Option<&dyn miette::Diagnostic> {
        self.0.diagnostic_source()
    }
}

/// Log records carry names from outside (a secret's, a user's, an error
/// body): a newline in one must not start a line of its own (under GitHub
/// Actions, `::error::` at the start of a line is a workflow command). The
/// formatter hands over each record in one write; it is escaped whole.
struct EscapedStderr {
    colour: bool,
    /// Without `-v`: each record is a message, `opsguard: …`, with no time
    /// or level.
    human: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for EscapedStderr {
    type Writer = EscapedRecord;
    fn make_writer(&'a self) -> EscapedRecord {
        EscapedRecord {
            colour: self.colour,
            human: self.human,
        }
    }
}

struct EscapedRecord {
    colour: bool,
    human: bool,
}

impl std::io::Write for EscapedRecord {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut text =
            crate::report::escape::log_record(&String::from_utf8_lossy(buf), self.colour);
        if self.human {
            text.insert_str(0, "opsguard: ");
        }
        // Lift the progress lines so the record is not torn by one.
        ui::progress().suspend(|| std::io::stderr().lock().write_all(text.as_bytes()))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
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
        Command::Plan(args) if args.offline => {
            let config = offline_config(&cli.config)?;
            runtime()?.block_on(plan::execute(config.as_ref(), args))
        }
        Command::Plan(args) => {
            let config = Config::load(&cli.config, &env)?;
            runtime()?.block_on(plan::execute(Some(&config), args))
        }
        Command::Run(args) => {
            let config = Config::load(&cli.config, &env)?;
            runtime()?.block_on(run::execute(&config, args))
        }
        Command::Rehearse(args) => {
            let config = Config::load(&cli.config, &env)?;
            runtime()?.block_on(rehearse::execute(&config, args))
        }
        // The config is what is checked: its errors are listed, not returned.
        Command::Validate(args) => Ok(validate::execute(&cli.config, args)),
        // No config: `init` writes one, the others describe the CLI or git.
        Command::Hook(args) => Ok(hook::execute(args)?),
        Command::Init(args) => Ok(runtime()?.block_on(init::execute(&cli.config, args))?),
        Command::Completions(args) => Ok(completions::completions(args)),
        Command::Man(args) => Ok(completions::man(args)),
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

/// Whether human output on stderr may use colour (`--color`, `NO_COLOR`).
pub fn colour() -> bool {
    ui::get().colour
}

/// The fingerprint key of this config's state folder (created on first use).
pub fn fingerprint_key(dir: &Path) -> Result<crate::snapshot::fingerprint::FingerprintKey, Error> {
    crate::snapshot::fingerprint::FingerprintKey::load_or_create(dir, &|k| std::env::var(k).ok())
        .map_err(|source| Error::FingerprintKey {
            dir: dir.to_owned(),
            source,
        })
}

/// `.opsguard/` beside the config file: run state and the fingerprint key
/// (the layout is [`crate::state`]'s).
pub fn state_dir(config: &Config) -> PathBuf {
    crate::state::beside(&config.path)
}

/// The file live findings point at in SARIF: the config, relative to the
/// working directory where it can be (code scanning wants repository paths).
pub fn config_artifact(path: &Path) -> crate::report::model::Artifact {
    crate::report::model::Artifact {
        uri: relative_to_cwd(path),
        lines: Default::default(),
    }
}

/// `path` relative to the working directory when it lies below it.
pub fn relative_to_cwd(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let abs = if path.is_absolute() {
        path.to_owned()
    } else {
        return path.display().to_string();
    };
    cwd.and_then(|c| abs.strip_prefix(&c).ok().map(|p| p.display().to_string()))
        .unwrap_or_else(|| abs.display().to_string())
}

/// Write to a file atomically: a reader never sees half a snapshot.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomically_with(path, |w| std::io::Write::write_all(w, bytes))
}

/// `path` replaced at once by what `write` produces, streamed through a
/// temporary file beside it (nothing needs to be in memory whole).
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), Error> {
    use std::io::Write as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        write(&mut w)?;
        w.flush()
    });
    if let Err(source) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Output {
            path: path.to_owned(),
            source,
        });
    }
    Ok(())
}
