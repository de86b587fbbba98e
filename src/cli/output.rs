//! Where a report goes: the human text to stderr, the `--format` rendering
//! to stdout (or to `--output FILE`, so it never mixes with a wrapped
//! command's own stdout), and JSON to `--report FILE`. Under GitHub Actions
//! (`GITHUB_ACTIONS=true`) also one annotation per finding on stderr and the
//! Markdown report appended to `$GITHUB_STEP_SUMMARY` (see
//! [`crate::report::github`]).

use super::write_atomically;
use crate::error::Error;
use crate::report::model::Report;
use crate::report::{github, Format, RenderOptions};
use std::io::Write;
use std::path::Path;

/// Where the `--format` rendering goes and what every output passes through.
#[derive(Clone, Copy, Default)]
pub struct Sink<'a> {
    /// `--output FILE`: the `--format` report goes there instead of stdout.
    pub output: Option<&'a Path>,
    /// Applied to every rendered text before it is written (`plan` removes
    /// sensitive plan values with it).
    pub filter: Option<&'a dyn Fn(&str) -> String>,
}

/// The three flags of every subcommand that writes a report: the same
/// words, defaults and help everywhere.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Also write the report in this format: to stdout, or to --output FILE (human text always goes to stderr).
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,

    /// Write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,

    /// Write the --format report to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

impl ReportArgs {
    /// Write `report` where these flags say; the exit code is the report's.
    pub fn emit(&self, report: &Report, diff: Option<&str>) -> Result<u8, Error> {
        emit(
            report,
            diff,
            self.format,
            self.report.as_deref(),
            self.output.as_deref(),
        )
    }
}

pub fn emit(
    report: &Report,
    diff: Option<&str>,
    format: Format,
    report_file: Option<&Path>,
    output: Option<&Path>,
) -> Result<u8, Error> {
    emit_to(
        report,
        diff,
        format,
        report_file,
        Sink {
            output,
            filter: None,
        },
    )
}

pub fn emit_to(
    report: &Report,
    diff: Option<&str>,
    format: Format,
    report_file: Option<&Path>,
    sink: Sink<'_>,
) -> Result<u8, Error> {
    // Names and messages come from the environment and from files: no
    // newline or control character in them may start a line of its own
    // (a workflow command under GitHub Actions), and none is echoed
    // megabytes long.
    let mut safe = crate::report::escape::sanitize(report);
    // Not part of the JSON, so not carried through the sanitising round trip.
    safe.artifact = report.artifact.clone();
    let report = &safe;
    let safe_diff =
        diff.map(|d| crate::report::escape::lines(d, crate::report::escape::MAX_DOC_VALUE));
    let diff = safe_diff.as_deref();
    let filter = |s: String| match sink.filter {
        Some(f) => f(&s),
        None => s,
    };
    let ui = super::ui::get();
    // What the person at the terminal asked for; a file gets no colour and
    // the whole report, whatever --quiet says.
    let terminal = RenderOptions {
        colour: ui.colour,
        verbose: ui.verbose,
        quiet: ui.quiet,
    };
    let file = RenderOptions {
        verbose: ui.verbose,
        ..RenderOptions::PLAIN
    };
    let human = filter(crate::report::render(
        Format::Human,
        report,
        diff,
        &terminal,
    ));
    eprint!("{human}");
    if !human.ends_with('\n') {
        eprintln!();
    }
    let env = |k: &str| std::env::var(k).ok();
    if github::detected(&env) {
        github_actions(report, diff, &env, &filter);
    }
    if let Some(path) = sink.output {
        let text = filter(crate::report::render(format, report, diff, &file));
        write_atomically(path, text.as_bytes())?;
    } else if format != Format::Human {
        let text = filter(crate::report::render(format, report, diff, &file));
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(Error::Output {
                    path: "<stdout>".into(),
                    source: e,
                });
            }
        }
    }
    if let Some(path) = report_file {
        let json = filter(crate::report::render(Format::Json, report, diff, &file));
        write_atomically(path, json.as_bytes())?;
    }
    Ok(report.exit_code)
}

/// Annotations on stderr (stdout may be `--format json`; the runner reads
/// commands from both), then the step summary. A summary that cannot be
/// written is said, as a warning annotation, and does not change the exit
/// code: the verdict is the contract, the summary a convenience.
fn github_actions(
    report: &Report,
    diff: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    filter: &dyn Fn(String) -> String,
) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(filter(github::annotations(report)).as_bytes());
    let Some(path) = env("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return;
    };
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(filter(github::step_summary(report, diff)).as_bytes()));
    if let Err(e) = appended {
        let _ = writeln!(
            err,
            "::warning title=opsguard::{}",
            github::escape_data(&format!(
                "cannot append the report to $GITHUB_STEP_SUMMARY ({path}): {e}; the verdict and exit code stand, and --report FILE still writes the JSON report"
            ))
        );
    }
}
