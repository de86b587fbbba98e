//! The report stage: telling a person (human text on stderr) and a machine
//! (JSON, Markdown, JUnit) what was found and done.
//!
//! * [`model`] — the `opsguard.report/v1` document every format renders;
//! * [`changes`] — what changed between two snapshots, in words;
//! * [`diff`] — a unified diff of two snapshots, one line per fact;
//! * [`human`], [`json`], [`markdown`], [`junit`] — one module a format,
//!   each a pure `render` from the report to a `String`, so the caller owns
//!   the output stream (stderr, stdout, a file, a test's buffer);
//! * [`github`] — GitHub Actions annotations (workflow commands) and the
//!   step summary, added to the others when `GITHUB_ACTIONS=true`;
//! * [`verdict`] — the one-line verdict the human and Markdown forms lead with.
//!
//! Renderers never see a snapshot, a fact or a secret value: only the report
//! (and a diff text already made safe by [`diff`]).

mod causes;
pub mod changes;
pub mod diff;
pub mod escape;
pub mod github;
pub mod human;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod sarif;
pub mod verdict;

mod short;

#[cfg(test)]
pub(crate) mod fixture;

use model::{Remedy, Report, Violation};

/// The `--format` of a report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Text for a person (what stderr always gets).
    #[default]
    Human,
    /// `opsguard.report/v1`, as `--report FILE` writes it.
    Json,
    /// For a pull-request comment or `$GITHUB_STEP_SUMMARY`.
    Markdown,
    /// JUnit XML, one test case per rule × target, for CI test reporters.
    Junit,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF consumers.
    Sarif,
}

/// How the human form is rendered: what the person at the terminal asked
/// for (`--color`, `-v`, `--quiet`), decided once by the caller. The machine
/// forms ignore it: they are the same whoever reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// ANSI colour.
    pub colour: bool,
    /// `-v` count: from 1, the full before/after diff is shown too.
    pub verbose: u8,
    /// `--quiet`: the verdict line alone.
    pub quiet: bool,
}

impl RenderOptions {
    /// No colour, no `-v`, not quiet: what a file or a test gets.
    pub const PLAIN: RenderOptions = RenderOptions {
        colour: false,
        verbose: 0,
        quiet: false,
    };
}

/// Render `report` in `format`. `diff` ([`diff::text`]) is shown by the
/// Markdown form, and by the human form under `-v`; `options` apply to the
/// human form only.
pub fn render(
    format: Format,
    report: &Report,
    diff: Option<&str>,
    options: &RenderOptions,
) -> String {
    match format {
        Format::Human => human::render(report, diff, options),
        Format::Json => json::render(report),
        Format::Markdown => markdown::render(report, diff),
        Format::Junit => junit::render(report),
        Format::Sarif => sarif::render(report),
    }
}

/// What to do about a violation, one hint per remedy the rule names.
pub(crate) fn remedy_hints(v: &Violation) -> Vec<String> {
    v.remedies
        .iter()
        .map(|r| match r {
            Remedy::Rollback => "roll back: restore the before state of what this names".to_owned(),
            Remedy::Redeploy if v.consumers.is_empty() => {
                "force a new deployment of the consuming services".to_owned()
            }
            Remedy::Redeploy => format!("force a new deployment of: {}", v.consumers.join(", ")),
        })
        .collect()
}

/// The wrapped command as a person would type it (single-quoting words
/// that the shell would split or expand).
pub(crate) fn command_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn format_names_are_the_contract_ones() {
        let names: Vec<String> = Format::value_variants()
            .iter()
            .map(|f| f.to_possible_value().unwrap().get_name().to_owned())
            .collect();
        assert_eq!(names, ["human", "json", "markdown", "junit", "sarif"]);
    }

    #[test]
    fn command_lines_quote_what_a_shell_would_split() {
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            command_line(&argv(&["python3", "create_users.py", "--env=prod"])),
            "python3 create_users.py --env=prod"
        );
        assert_eq!(
            command_line(&argv(&["sh", "-c", "echo it's $HOME", ""])),
            r"sh -c 'echo it'\''s $HOME' ''"
        );
    }

    #[test]
    fn remedies_become_instructions() {
        let v = Violation {
            remedies: vec![Remedy::Rollback, Remedy::Redeploy],
            consumers: vec!["c/prod-search-api".into(), "c/stage-search-api".into()],
            ..Violation::default()
        };
        assert_eq!(
            remedy_hints(&v),
            [
                "roll back: restore the before state of what this names",
                "force a new deployment of: c/prod-search-api, c/stage-search-api"
            ]
        );
    }
}
