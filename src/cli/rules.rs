//! `opsguard rules list | show ID | test [DIR]`: the rules in force, one
//! rule in full, and their tests.
//!
//! All three load the same rules `run` and `check` would (the built-in pack,
//! then the config's `[rules] paths`) and check the config's waivers against
//! them, so a rule or waiver mistake shows up here, before it matters. Their
//! output is the command's product, so it goes to stdout; warnings go to
//! stderr. `list` and `show` also write JSON (`--format json`): the
//! `opsguard.rules/v1` document of docs/cli.md, one shape for both.

use crate::config::{Config, Waiver};
use crate::error::Error;
use crate::exit;
use crate::rules::{Rule, RuleSet, TestRun};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
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
    List {
        /// human: a table; json: the opsguard.rules/v1 document.
        #[arg(long, value_enum, default_value = "human")]
        format: RulesFormat,
    },
    /// Everything about one rule: why, remedies, condition, tests, waivers
    Show {
        /// The rule id, as `rules list` shows it.
        id: String,
        /// human: text; json: the opsguard.rules/v1 document with this one rule.
        #[arg(long, value_enum, default_value = "human")]
        format: RulesFormat,
    },
    /// Run the rules' test cases
    Test {
        /// A directory of rule files to test (on top of the built-ins and the config's paths)
        dir: Option<PathBuf>,
    },
}

/// How `rules list` and `rules show` write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    Human,
    Json,
}

/// `rules test` exits 1 when a test fails.
pub const TESTS_FAILED: u8 = exit::TESTS_FAILED;

/// The `schema` of the JSON `rules list` and `rules show` write.
pub const SCHEMA: &str = "opsguard.rules/v1";

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
        RulesCommand::List { .. } | RulesCommand::Show { .. } => None,
    };
    dirs.extend(extra);
    let rules = RuleSet::load(&dirs)?;
    let waivers: &[Waiver] = config.map(|c| c.waivers.as_slice()).unwrap_or_default();
    rules.check_waivers(waivers)?;
    let (code, written) = match args.command {
        RulesCommand::List {
            format: RulesFormat::Human,
        } => (exit::OK, write_list(&rules, out)),
        RulesCommand::List {
            format: RulesFormat::Json,
        } => (
            exit::OK,
            write_json(&document(rules.rules().iter(), waivers), out),
        ),
        RulesCommand::Show { id, format } => match rules.get(&id) {
            None => {
                let e = UnknownRule::new(&rules, &id);
                let text = format!("{:?}", miette::Report::new(e));
                let text = crate::report::escape::lines(&text, 4096);
                (
                    exit::USAGE,
                    writeln!(err, "{text}").map_err(|e| ("<stderr>", e)),
                )
            }
            Some(rule) => {
                let written = match format {
                    RulesFormat::Human => write_show(rule, waivers, out),
                    RulesFormat::Json => write_json(&document([rule].into_iter(), waivers), out),
                };
                (exit::OK, written)
            }
        },
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

/// `rules show` of an id not in force: exit 2, with the nearest ids.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("no rule `{id}` is in force")]
#[diagnostic(code(opsguard::rules::unknown_rule), help("{help}"))]
pub struct UnknownRule {
    id: String,
    help: String,
}

impl UnknownRule {
    fn new(rules: &RuleSet, id: &str) -> UnknownRule {
        let near = rules.nearest(id);
        let help = if near.is_empty() {
            "`opsguard rules list` shows the rules in force".to_owned()
        } else {
            format!(
                "did you mean {}? `opsguard rules list` shows the rules in force",
                near.iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        };
        UnknownRule {
            id: crate::report::escape::line(id, 128),
            help,
        }
    }
}

type WriteResult = Result<(), (&'static str, std::io::Error)>;

/// `opsguard.rules/v1`: the rules (all in force, or the one shown), and the
/// config's waivers of those rules.
#[derive(Debug, Serialize)]
pub struct RulesDoc {
    pub schema: &'static str,
    pub rules: Vec<RuleDoc>,
    pub waivers: Vec<WaiverDoc>,
}

#[derive(Debug, Serialize)]
pub struct RuleDoc {
    pub id: String,
    pub severity: String,
    pub each: String,
    /// `built-in`, or the path of the user's rule file.
    pub source: String,
    /// `rules/NAME.toml` inside the binary for a built-in; the path otherwise.
    pub file: String,
    /// For a user rule with a built-in's id: the built-in file it replaces.
    pub overrides: Option<String>,
    pub summary: String,
    pub why: String,
    pub message: String,
    /// The CEL condition, as written.
    pub when: String,
    /// `file:line:col` of `when`.
    pub when_location: String,
    pub remedies: Vec<String>,
    pub tests: Vec<TestDoc>,
    /// The config's waivers of this rule.
    pub waivers: Vec<WaiverDoc>,
}

#[derive(Debug, Serialize)]
pub struct TestDoc {
    pub name: String,
    pub expect: String,
    pub location: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct WaiverDoc {
    pub rule: String,
    pub target: String,
    pub reason: String,
    pub expires: String,
    /// `file:line:col` of the `[[waivers]]` entry.
    pub location: String,
}

fn builtin_file(source: &str) -> Option<&str> {
    source.strip_prefix("built-in:")
}

fn waiver_doc(w: &Waiver) -> WaiverDoc {
    WaiverDoc {
        rule: w.rule.clone(),
        target: w.target.clone(),
        reason: w.reason.clone(),
        expires: w.expires.to_string(),
        location: w.location.clone(),
    }
}

fn rule_doc(r: &Rule, waivers: &[Waiver]) -> RuleDoc {
    RuleDoc {
        id: r.id.clone(),
        severity: r.severity.to_string(),
        each: r.each.to_string(),
        source: if r.is_builtin() {
            "built-in".to_owned()
        } else {
            r.source.clone()
        },
        file: builtin_file(&r.source).unwrap_or(&r.source).to_owned(),
        overrides: r
            .overrides
            .as_deref()
            .map(|o| builtin_file(o).unwrap_or(o).to_owned()),
        summary: r.summary.clone(),
        why: r.why.trim().to_owned(),
        message: r.message.clone(),
        when: r.when.trim().to_owned(),
        when_location: r.when_location().to_owned(),
        remedies: r.remedies.iter().map(|m| m.to_string()).collect(),
        tests: r
            .tests
            .iter()
            .map(|t| TestDoc {
                name: t.name.clone(),
                expect: t.expect.to_string(),
                location: t.location.clone(),
            })
            .collect(),
        waivers: waivers
            .iter()
            .filter(|w| w.rule == r.id)
            .map(waiver_doc)
            .collect(),
    }
}

/// The JSON document of these rules.
pub fn document<'a>(rules: impl Iterator<Item = &'a Rule>, waivers: &[Waiver]) -> RulesDoc {
    let rules: Vec<RuleDoc> = rules.map(|r| rule_doc(r, waivers)).collect();
    RulesDoc {
        schema: SCHEMA,
        waivers: waivers
            .iter()
            .filter(|w| rules.iter().any(|r| r.id == w.rule))
            .map(waiver_doc)
            .collect(),
        rules,
    }
}

fn write_json(doc: &RulesDoc, out: &mut dyn Write) -> WriteResult {
    let stdout = |e| ("<stdout>", e);
    let text = serde_json::to_string_pretty(doc).map_err(|e| stdout(std::io::Error::other(e)))?;
    writeln!(out, "{text}").map_err(stdout)?;
    out.flush().map_err(stdout)
}

/// One rule in full, for a person.
fn write_show(rule: &Rule, waivers: &[Waiver], out: &mut dyn Write) -> WriteResult {
    let d = rule_doc(rule, waivers);
    let indent = |text: &str| {
        text.lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut t = String::new();
    t.push_str(&format!("{}\n  {}\n\n", d.id, d.summary));
    t.push_str(&format!("severity   {}\n", d.severity));
    t.push_str(&format!("each       {}\n", d.each));
    t.push_str(&format!(
        "source     {}\n",
        if rule.is_builtin() {
            format!("built-in ({})", d.file)
        } else {
            d.file.clone()
        }
    ));
    t.push_str(&format!(
        "overrides  {}\n",
        match &d.overrides {
            Some(b) => format!("yes: this file replaces the built-in {b}"),
            None if rule.is_builtin() => "no: the built-in rule is in force".to_owned(),
            None => "no: not a built-in id".to_owned(),
        }
    ));
    t.push_str(&format!(
        "remedies   {}\n",
        if d.remedies.is_empty() {
            "none: fix it by hand".to_owned()
        } else {
            d.remedies.join(", ")
        }
    ));
    // `why` is written wrapped with `\` continuations, which TOML joins.
    t.push_str(&format!("\nWhy it matters\n{}\n", indent(&d.why)));
    t.push_str(&format!(
        "\nCondition (CEL, {})\n{}\n",
        d.when_location,
        indent(&d.when)
    ));
    t.push_str(&format!("\nMessage\n{}\n", indent(&d.message)));
    t.push_str(&format!("\nTests ({})\n", d.tests.len()));
    if d.tests.is_empty() {
        t.push_str("  none: the rule is untested\n");
    }
    for test in &d.tests {
        t.push_str(&format!("  {:<5} {}\n", test.expect, test.name));
    }
    t.push_str(&format!("\nWaivers ({})\n", d.waivers.len()));
    if d.waivers.is_empty() {
        t.push_str("  none: every finding of this rule counts\n");
    }
    for w in &d.waivers {
        t.push_str(&format!(
            "  {}  expires {}  {} ({})\n",
            w.target, w.expires, w.reason, w.location
        ));
    }
    let stdout = |e| ("<stdout>", e);
    // Rule files and waivers are the user's text: escaped like any outside text.
    out.write_all(crate::report::escape::lines(&t, 64 * 1024).as_bytes())
        .map_err(stdout)?;
    out.flush().map_err(stdout)
}

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
        let ran = run(
            None,
            RulesCommand::List {
                format: RulesFormat::Human,
            },
        );
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
        let ran = run(
            Some(&config),
            RulesCommand::List {
                format: RulesFormat::Human,
            },
        );
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
        for command in [
            RulesCommand::List {
                format: RulesFormat::Human,
            },
            RulesCommand::Test { dir: None },
        ] {
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
        assert_eq!(
            run(
                Some(&ok),
                RulesCommand::List {
                    format: RulesFormat::Human
                }
            )
            .code
            .unwrap(),
            exit::OK
        );
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
    #[test]
    fn show_of_an_unknown_id_exits_2_naming_the_nearest_ids() {
        let ran = run(
            None,
            RulesCommand::Show {
                id: "secret-out-of-snyc".into(),
                format: RulesFormat::Human,
            },
        );
        assert_eq!(ran.code.unwrap(), exit::USAGE);
        assert!(ran.out.is_empty(), "{}", ran.out);
        assert!(
            ran.err.contains("no rule `secret-out-of-snyc` is in force"),
            "{}",
            ran.err
        );
        assert!(
            ran.err.contains("did you mean `secret-out-of-sync`?"),
            "{}",
            ran.err
        );
        // An id from outside is escaped before it is echoed.
        let ran = run(
            None,
            RulesCommand::Show {
                id: "x\n::error::y".into(),
                format: RulesFormat::Human,
            },
        );
        assert_eq!(ran.code.unwrap(), exit::USAGE);
        assert!(!ran.err.contains("\n::error::"), "{}", ran.err);
    }

    #[test]
    fn show_json_of_a_user_rule_names_its_file_and_the_built_in_it_replaces() {
        let overriding = RULE.replace(
            "id = \"secret-scheduled-for-deletion\"",
            "id = \"desired-count-changed\"",
        );
        let dir = user_rules(&[("scale.toml", &overriding)]);
        let config = config(
            dir.path(),
            "[[waivers]]\nrule = \"desired-count-changed\"\ntarget = \"c/s\"\nreason = \"r\"\nexpires = \"2099-01-31\"\n",
        );
        let ran = run(
            Some(&config),
            RulesCommand::Show {
                id: "desired-count-changed".into(),
                format: RulesFormat::Json,
            },
        );
        assert_eq!(ran.code.unwrap(), exit::OK);
        let doc: serde_json::Value = serde_json::from_str(&ran.out).unwrap();
        assert_eq!(doc["schema"], SCHEMA);
        let rule = &doc["rules"][0];
        let file = dir.path().join("my-rules").join("scale.toml");
        assert_eq!(rule["source"], file.display().to_string());
        assert_eq!(rule["file"], file.display().to_string());
        assert_eq!(rule["overrides"], "rules/desired-count-changed.toml");
        assert_eq!(rule["each"], "secrets");
        assert_eq!(rule["waivers"][0]["target"], "c/s");
        assert_eq!(rule["waivers"][0]["expires"], "2099-01-31");
        assert_eq!(doc["waivers"], rule["waivers"]);
    }
}
