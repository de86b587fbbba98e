//! `opsguard rules list | test [DIR]`: the rules in force, and their tests.
//!
//! Both load the same rules `run` and `check` would (the built-in pack, then
//! the config's `[rules] paths`) and check the config's waivers against them,
//! so a rule or waiver mistake shows up here, before it matters. Their
//! output is the command's product, so it goes to stdout; warnings go to
//! stderr.

use crate::config::Config;
use crate::error::Error;
use crate::exit;
use crate::rules::{RuleSet, TestRun};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// List the rules in force
    List,
    /// Run the rules' test cases
    Test {
        /// A directory of rule files to test (on top of the built-ins and the config's paths)
        dir: Option<PathBuf>,
    },
}

/// `rules test` exits 1 when a test fails.
pub const TESTS_FAILED: u8 = exit::TESTS_FAILED;

/// The errors of `rules`: a rule or waiver that does not load
/// ([`Error::Rules`]) or output that cannot be written ([`Error::Output`]);
/// both exit 2 ([`Error::exit_code`]).
pub type RulesCliError = Error;

/// Run the subcommand, writing to the process's stdout and stderr.
pub fn execute(config: Option<&Config>, args: RulesArgs) -> Result<u8, RulesCliError> {
    execute_to(
        config,
        args,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
}

/// Run the subcommand with injected output sinks (tests use buffers).
pub fn execute_to(
    config: Option<&Config>,
    args: RulesArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, RulesCliError> {
    let mut dirs: Vec<PathBuf> = config.map(|c| c.rules.paths.clone()).unwrap_or_default();
    let extra = match &args.command {
        RulesCommand::Test { dir } => dir.clone(),
        RulesCommand::List => None,
    };
    dirs.extend(extra);
    let rules = RuleSet::load(&dirs)?;
    if let Some(config) = config {
        rules.check_waivers(&config.waivers)?;
    }
    let (code, written) = match args.command {
        RulesCommand::List => (exit::OK, write_list(&rules, out)),
        RulesCommand::Test { .. } => {
            let run = rules.run_tests();
            let code = if run.failed() == 0 {
                exit::OK
            } else {
                TESTS_FAILED
            };
            (code, write_test_run(&rules, &run, out, err))
        }
    };
    match written {
        Ok(()) => Ok(code),
        // A closed pipe (`| head`) is the reader's choice, not our failure;
        // the exit code still says what the tests did.
        Err((_, e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(code),
        Err((what, source)) => Err(Error::Output {
            path: PathBuf::from(what),
            source,
        }),
    }
}

type WriteResult = Result<(), (&'static str, std::io::Error)>;

fn write_list(rules: &RuleSet, out: &mut dyn Write) -> WriteResult {
    let rows: Vec<[String; 5]> = rules
        .rules()
        .iter()
        .map(|r| {
            let source = if r.is_builtin() {
                "built-in".to_owned()
            } else if r.overrides.is_some() {
                format!("{} (overrides built-in)", r.source)
            } else {
                r.source.clone()
            };
            [
                r.id.clone(),
                r.severity.to_string(),
                r.each.to_string(),
                source,
                r.summary.clone(),
            ]
        })
        .collect();
    let header = ["ID", "SEVERITY", "EACH", "SOURCE", "SUMMARY"].map(String::from);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let stdout = |e| ("<stdout>", e);
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, w) in widths.iter().enumerate() {
            line.push_str(&format!("{:<w$}  ", row[i], w = *w));
        }
        line.push_str(&row[4]);
        writeln!(out, "{line}").map_err(stdout)?;
    }
    out.flush().map_err(stdout)
}

fn write_test_run(
    rules: &RuleSet,
    run: &TestRun,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> WriteResult {
    let stdout = |e| ("<stdout>", e);
    for id in &run.untested {
        let source = rules.get(id).map(|r| r.source.as_str()).unwrap_or("?");
        writeln!(
            err,
            "warning: rule `{id}` ({source}) has no [[test]] cases: it is untested"
        )
        .map_err(|e| ("<stderr>", e))?;
    }
    for r in &run.results {
        if r.passed() {
            writeln!(out, "ok      {}: {}", r.rule, r.test).map_err(stdout)?;
        } else {
            let got = match &r.got {
                Ok(g) => format!("got {g}"),
                Err(e) => format!("got an error: {e}"),
            };
            writeln!(
                out,
                "FAILED  {}: {} ({}): expected {}, {got}",
                r.rule, r.test, r.location, r.expected
            )
            .map_err(stdout)?;
        }
    }
    writeln!(out, "{} passed, {} failed", run.passed(), run.failed()).map_err(stdout)?;
    out.flush().map_err(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user rule (not in the built-in pack), one file shared by the unit
    /// tests of `rules` and tests/rules_cli.rs.
    const RULE: &str = include_str!("../../tests/fixtures/secret-scheduled-for-deletion.toml");

    struct Ran {
        code: Result<u8, Error>,
        out: String,
        err: String,
    }

    fn run(config: Option<&Config>, command: RulesCommand) -> Ran {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = execute_to(config, RulesArgs { command }, &mut out, &mut err);
        Ran {
            code,
            out: String::from_utf8(out).unwrap(),
            err: String::from_utf8(err).unwrap(),
        }
    }

    fn config(dir: &std::path::Path, extra: &str) -> Config {
        let text = format!(
            r#"
[elasticsearch]
url = "https://es.example:9243"
username = "elastic"
password_env = "OPSGUARD_ES_PASSWORD"

[ecs]
clusters = ["catalogue"]

[rules]
paths = ["my-rules"]
{extra}
"#
        );
        Config::parse(
            &dir.join("opsguard.toml"),
            &text,
            &|_| Some("pw".into()),
            time::macros::date!(2026 - 11 - 24),
        )
        .unwrap()
    }

    fn user_rules(rules: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("my-rules")).unwrap();
        for (name, text) in rules {
            std::fs::write(dir.path().join("my-rules").join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn list_shows_the_builtin_pack_as_a_table() {
        let ran = run(None, RulesCommand::List);
        assert_eq!(ran.code.unwrap(), exit::OK);
        let lines: Vec<&str> = ran.out.lines().collect();
        assert_eq!(lines.len(), 14, "{}", ran.out);
        assert!(
            lines[0].starts_with("ID ")
                && lines[0].contains("SEVERITY")
                && lines[0].ends_with("SUMMARY")
        );
        let row = lines
            .iter()
            .find(|l| l.starts_with("live-credential-broken "))
            .unwrap();
        let cells: Vec<&str> = row.split_whitespace().take(4).collect();
        assert_eq!(
            cells,
            ["live-credential-broken", "block", "credentials", "built-in"]
        );
        assert!(row.ends_with("A credential that running tasks use stopped authenticating"));
        // Columns line up: SEVERITY starts at the same place on every line.
        let col = lines[0].find("SEVERITY").unwrap();
        assert!(lines[1..]
            .iter()
            .all(|l| l[..col].ends_with("  ") && !l[col..].starts_with(' ')));
        assert!(ran.err.is_empty());
    }

    #[test]
    fn list_shows_user_rules_and_overrides() {
        let overriding = RULE.replace(
            "id = \"secret-scheduled-for-deletion\"",
            "id = \"desired-count-changed\"",
        );
        let dir = user_rules(&[("mine.toml", RULE), ("scale.toml", &overriding)]);
        let config = config(dir.path(), "");
        let ran = run(Some(&config), RulesCommand::List);
        assert_eq!(ran.code.unwrap(), exit::OK);
        let mine = dir.path().join("my-rules");
        let row = |id: &str| {
            ran.out
                .lines()
                .find(|l| l.starts_with(&format!("{id} ")))
                .unwrap_or_else(|| panic!("no {id} in\n{}", ran.out))
                .to_owned()
        };
        assert!(row("secret-scheduled-for-deletion")
            .contains(&format!("{}", mine.join("mine.toml").display())));
        assert!(row("desired-count-changed").contains(&format!(
            "{} (overrides built-in)",
            mine.join("scale.toml").display()
        )));
        assert_eq!(ran.out.lines().count(), 15);
    }

    #[test]
    fn test_runs_every_test_and_ends_with_the_count() {
        let ran = run(None, RulesCommand::Test { dir: None });
        assert_eq!(ran.code.unwrap(), exit::OK);
        let lines: Vec<&str> = ran.out.lines().collect();
        let n = lines.len() - 1;
        assert!(n >= 24);
        assert!(
            lines[..n].iter().all(|l| l.starts_with("ok      ")),
            "{}",
            ran.out
        );
        assert!(lines.contains(&"ok      live-credential-broken: the 2021 incident: password and secret both rotated, tasks not redeployed"));
        assert_eq!(lines[n], format!("{n} passed, 0 failed"));
        assert!(ran.err.is_empty(), "{}", ran.err);
    }

    #[test]
    fn test_dir_failures_exit_1_and_untested_rules_warn() {
        let failing = RULE.replace("expect = \"fire\"", "expect = \"pass\"");
        let untested = RULE
            .replace("secret-scheduled-for-deletion", "untested-rule")
            .split("[[test]]")
            .next()
            .unwrap()
            .to_owned();
        let dir = user_rules(&[("failing.toml", &failing), ("untested.toml", &untested)]);
        let ran = run(
            None,
            RulesCommand::Test {
                dir: Some(dir.path().join("my-rules")),
            },
        );
        assert_eq!(ran.code.unwrap(), TESTS_FAILED);
        let failing_path = dir.path().join("my-rules").join("failing.toml");
        assert!(
            ran.out.contains(&format!(
                "FAILED  secret-scheduled-for-deletion: scheduled ({}:10:1): expected pass, got fire\n",
                failing_path.display()
            )),
            "{}",
            ran.out
        );
        let last = ran.out.lines().last().unwrap();
        let passed = ran.out.lines().filter(|l| l.starts_with("ok ")).count();
        assert_eq!(last, format!("{passed} passed, 1 failed"));
        assert!(
            ran.err.contains("warning: rule `untested-rule`") && ran.err.contains("untested"),
            "{}",
            ran.err
        );
    }

    #[test]
    fn a_rule_that_does_not_load_is_a_usage_error() {
        let bad = RULE.replace("secret.live &&", "secret.alive &&");
        let dir = user_rules(&[("bad.toml", &bad)]);
        let config = config(dir.path(), "");
        for command in [RulesCommand::List, RulesCommand::Test { dir: None }] {
            let ran = run(Some(&config), command);
            let err = ran.code.unwrap_err();
            assert_eq!(err.exit_code(), exit::USAGE);
            let text = err.to_string();
            let path = dir.path().join("my-rules").join("bad.toml");
            assert!(
                text.starts_with(&format!("{}:5:16: ", path.display())),
                "{text}"
            );
            assert!(ran.out.is_empty());
        }
    }

    #[test]
    fn waivers_are_checked_against_the_rules_in_force() {
        let dir = user_rules(&[("mine.toml", RULE)]);
        let waiver = |rule: &str| {
            format!(
                "[[waivers]]\nrule = \"{rule}\"\ntarget = \"search\"\nreason = \"ticket 123\"\nexpires = \"2027-01-31\"\n"
            )
        };
        // A user rule can be waived.
        let ok = config(dir.path(), &waiver("secret-scheduled-for-deletion"));
        assert_eq!(run(Some(&ok), RulesCommand::List).code.unwrap(), exit::OK);
        let bad = config(dir.path(), &waiver("shared-credential"));
        let ran = run(Some(&bad), RulesCommand::Test { dir: None });
        let err = ran.code.unwrap_err();
        assert_eq!(err.exit_code(), exit::USAGE);
        assert!(
            err.to_string()
                .ends_with("waiver names rule `shared-credential`, which is not a rule in force"),
            "{err}"
        );
        assert!(err.to_string().contains("opsguard.toml:"), "{err}");
    }
}
