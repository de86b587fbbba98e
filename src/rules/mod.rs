//! The rules stage: data files in `rules/`, conditions in CEL, evaluated
//! over facts.
//!
//! A rule is a TOML file (`rules/live-credential-broken.toml` is the model):
//! an id, a severity, the kind of item it looks at (`each`), a CEL condition
//! (`when`) over that item's facts, a message template, the remedies that
//! fix it, and test cases. The built-in pack is embedded in the binary; a
//! user's directories add rules, and a user rule with a built-in's id
//! replaces it.
//!
//! Rules are data, so they are checked like code when they load
//! ([`load`](RuleSet::load)): a typo in a fact name, a comparison that can
//! never hold, or a condition that cannot be evaluated stops opsguard with
//! `file:line:col`, because the alternative — a rule that silently never
//! fires — is a safety check that quietly is not there. For the same reason,
//! a condition that fails on real facts is an error from
//! [`evaluate`](RuleSet::evaluate), not a "no".
//!
//! Evaluation cost: each condition is compiled once, at load; each item is
//! converted to a CEL value once and every rule of its kind runs against
//! that one value.

mod check;
mod error;
mod load;
mod schema;
mod template;
#[cfg(test)]
mod tests;
mod value;

pub use error::{InvalidKind, InvalidRule, RuleError};

use crate::config::Waiver;
use crate::facts::change::ChangeFact;
use crate::facts::model::{CredentialFact, Facts, SecretFact, ServiceFact};
use schema::FactItem;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// How bad a finding is. `block` stops `run` (and fails `check`). Also the
/// report's `severity` (the same lowercase words).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A finding that states no severity fails closed.
    #[default]
    Block,
    Warn,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Block => "block",
            Severity::Warn => "warn",
            Severity::Info => "info",
        }
    }

    /// Sort key: block first.
    fn rank(self) -> u8 {
        match self {
            Severity::Block => 0,
            Severity::Warn => 1,
            Severity::Info => 2,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of item a rule iterates over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Each {
    Credentials,
    Services,
    Secrets,
    /// Resource changes of a Terraform plan (`opsguard plan`).
    Changes,
}

impl Each {
    pub fn as_str(self) -> &'static str {
        match self {
            Each::Credentials => "credentials",
            Each::Services => "services",
            Each::Secrets => "secrets",
            Each::Changes => "changes",
        }
    }

    /// The name one item is bound to in `when`: `credential`, `service`, `secret`.
    pub fn var(self) -> &'static str {
        match self {
            Each::Credentials => "credential",
            Each::Services => "service",
            Each::Secrets => "secret",
            Each::Changes => "change",
        }
    }
}

impl fmt::Display for Each {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What puts a violation right (see docs/model.md, "Remedies").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Remedy {
    Rollback,
    Redeploy,
}

impl Remedy {
    pub fn as_str(self) -> &'static str {
        match self {
            Remedy::Rollback => "rollback",
            Remedy::Redeploy => "redeploy",
        }
    }
}

impl fmt::Display for Remedy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule's test case expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Fire,
    Pass,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expect::Fire => "fire",
            Expect::Pass => "pass",
        })
    }
}

/// The facts of one test case: one item of the rule's kind.
#[derive(Clone, Debug, PartialEq)]
pub enum TestFacts {
    Credential(Box<CredentialFact>),
    Service(Box<ServiceFact>),
    Secret(Box<SecretFact>),
    Change(Box<ChangeFact>),
}

/// One `[[test]]` of a rule.
#[derive(Clone, Debug)]
pub struct RuleTest {
    pub name: String,
    pub expect: Expect,
    pub facts: TestFacts,
    /// `file:line:col` of the `[[test]]`.
    pub location: String,
}

/// One loaded, checked and compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    pub summary: String,
    pub severity: Severity,
    pub each: Each,
    /// The CEL condition, as written.
    pub when: String,
    /// The message template, as written.
    pub message: String,
    pub why: String,
    pub remedies: Vec<Remedy>,
    pub tests: Vec<RuleTest>,
    /// `built-in:rules/<file>.toml`, or the path of a user's rule file.
    pub source: String,
    /// For a user rule that replaces a built-in one: the built-in's source.
    pub overrides: Option<String>,
    compiled: Arc<Compiled>,
}

#[derive(Debug)]
struct Compiled {
    program: cel::Program,
    template: template::Template,
    /// `file:line:col` of `when`, for evaluation errors.
    when_location: String,
}

impl Rule {
    /// `file:line:col` of the rule's `when`.
    pub fn when_location(&self) -> &str {
        &self.compiled.when_location
    }

    pub fn is_builtin(&self) -> bool {
        self.source.starts_with("built-in:")
    }

    /// Run the condition against the item bound in `ctx`.
    fn eval(&self, ctx: &cel::Context<'_, '_>) -> Result<bool, String> {
        match self.compiled.program.execute(ctx) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!(
                "`when` evaluated to a {}, not a bool",
                other.type_of()
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// One rule firing on one item.
#[derive(Clone, Debug)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub each: Each,
    /// The item's id: credential id, `cluster/service`, or secret name.
    pub target: String,
    pub message: String,
    /// Who is affected: a credential's or secret's consumers; a service itself.
    pub consumers: Vec<String>,
    pub remedies: Vec<Remedy>,
    pub summary: String,
    pub why: String,
    /// The config waiver covering this finding, if any (see [`apply_waivers`]).
    pub waiver: Option<Waiver>,
}

impl Finding {
    /// A blocking finding no waiver covers.
    pub fn blocks(&self) -> bool {
        self.severity == Severity::Block && self.waiver.is_none()
    }
}

/// The rules in force, ordered by id.
#[derive(Clone, Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// The built-in pack only.
    pub fn builtin() -> Result<RuleSet, RuleError> {
        Self::load(&[])
    }

    /// The built-in pack, then each directory's `*.toml` files. A user rule
    /// with a built-in's id replaces it (and says so in
    /// [`Rule::overrides`]); the same id twice among the user's rules is an
    /// error. A directory named twice is read once.
    pub fn load(extra_dirs: &[PathBuf]) -> Result<RuleSet, RuleError> {
        let mut by_id: BTreeMap<String, Rule> = load::builtin_rules()?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut user: BTreeMap<String, String> = BTreeMap::new();
        let mut dirs_read: Vec<PathBuf> = Vec::new();
        for dir in extra_dirs {
            let key = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            if dirs_read.contains(&key) {
                continue;
            }
            dirs_read.push(key);
            for (mut rule, text) in load::dir_rules(dir)? {
                if let Some(first) = user.get(&rule.id) {
                    return Err(load::duplicate(
                        &rule,
                        &text,
                        first,
                        "another rules directory; only a built-in rule can be overridden",
                    ));
                }
                user.insert(rule.id.clone(), rule.source.clone());
                if let Some(builtin) = by_id.get(&rule.id) {
                    rule.overrides = Some(builtin.source.clone());
                }
                by_id.insert(rule.id.clone(), rule);
            }
        }
        Ok(RuleSet {
            rules: by_id.into_values().collect(),
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules
            .binary_search_by(|r| r.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.rules[i])
    }

    /// The ids in force nearest to `id` (for "did you mean"), at most
    /// three, nearest first: ids within a few edits of it or containing it;
    /// failing those, ids sharing one of its words.
    pub fn nearest(&self, id: &str) -> Vec<&str> {
        let limit = (id.chars().count() / 4).clamp(1, 4);
        let mut close: Vec<(bool, usize, &str)> = self
            .rules
            .iter()
            .map(|r| {
                let d = schema::edit_distance(&r.id, id);
                (!r.id.contains(id), d, r.id.as_str())
            })
            .filter(|(far, d, _)| !*far || *d <= limit)
            .collect();
        if close.is_empty() {
            let words: Vec<&str> = id.split('-').filter(|w| w.len() > 3).collect();
            close = self
                .rules
                .iter()
                .filter(|r| words.iter().any(|w| r.id.contains(w)))
                .map(|r| (true, schema::edit_distance(&r.id, id), r.id.as_str()))
                .collect();
        }
        close.sort();
        close.into_iter().take(3).map(|(_, _, rid)| rid).collect()
    }

    /// These rules without the one named: to go on judging with the others
    /// when one cannot be evaluated.
    pub fn without(&self, id: &str) -> RuleSet {
        RuleSet {
            rules: self.rules.iter().filter(|r| r.id != id).cloned().collect(),
        }
    }

    /// Every rule against every item of its kind. Findings come sorted:
    /// block, warn, info; then rule id; then target. An item a condition
    /// cannot be evaluated on is an error, never a silent pass.
    pub fn evaluate(&self, facts: &Facts) -> Result<Vec<Finding>, RuleError> {
        let mut findings = Vec::new();
        self.evaluate_items(&facts.credentials, &mut findings)?;
        self.evaluate_items(&facts.services, &mut findings)?;
        self.evaluate_items(&facts.secrets, &mut findings)?;
        findings.sort_by(|a, b| {
            (a.severity.rank(), &a.rule, &a.target).cmp(&(b.severity.rank(), &b.rule, &b.target))
        });
        Ok(findings)
    }

    /// The `each = "changes"` rules over a plan's resource changes, sorted
    /// as [`evaluate`](Self::evaluate) sorts.
    pub fn evaluate_changes(&self, changes: &[ChangeFact]) -> Result<Vec<Finding>, RuleError> {
        let mut findings = Vec::new();
        self.evaluate_items(changes, &mut findings)?;
        findings.sort_by(|a, b| {
            (a.severity.rank(), &a.rule, &a.target).cmp(&(b.severity.rank(), &b.rule, &b.target))
        });
        Ok(findings)
    }

    fn evaluate_items<F: FactItem>(
        &self,
        items: &[F],
        findings: &mut Vec<Finding>,
    ) -> Result<(), RuleError> {
        let rules: Vec<&Rule> = self.rules.iter().filter(|r| r.each == F::EACH).collect();
        if rules.is_empty() || items.is_empty() {
            return Ok(());
        }
        let mut ctx = cel::Context::with_env(load::env());
        for item in items {
            let error = |rule: &Rule, message: String| RuleError::Evaluation {
                location: rule.compiled.when_location.clone(),
                rule: rule.id.clone(),
                each: F::EACH.var(),
                target: item.id().to_owned(),
                message,
            };
            // Once per item, whatever the number of rules.
            let value = value::FactVal::new(item).map_err(|e| error(rules[0], e))?;
            ctx.add_variable_as_val(F::EACH.var(), Box::new(value));
            // The serde form, for messages: only built if something fires.
            let mut json: Option<serde_json::Value> = None;
            for rule in &rules {
                if !rule.eval(&ctx).map_err(|m| error(rule, m))? {
                    continue;
                }
                let json = json
                    .get_or_insert_with(|| serde_json::to_value(item).expect("a fact serialises"));
                findings.push(Finding {
                    rule: rule.id.clone(),
                    severity: rule.severity,
                    each: rule.each,
                    target: item.id().to_owned(),
                    message: rule.compiled.template.render(json, item.id()),
                    consumers: item.consumers(),
                    remedies: rule.remedies.clone(),
                    summary: rule.summary.clone(),
                    why: rule.why.clone(),
                    waiver: None,
                });
            }
        }
        Ok(())
    }

    /// Run every `[[test]]` of every rule.
    pub fn run_tests(&self) -> TestRun {
        let mut run = TestRun::default();
        for rule in &self.rules {
            if rule.tests.is_empty() {
                run.untested.push(rule.id.clone());
            }
            for test in &rule.tests {
                let got = match &test.facts {
                    TestFacts::Credential(f) => rule.test_eval(f.as_ref()),
                    TestFacts::Service(f) => rule.test_eval(f.as_ref()),
                    TestFacts::Secret(f) => rule.test_eval(f.as_ref()),
                    TestFacts::Change(f) => rule.test_eval(f.as_ref()),
                }
                .map(|fired| if fired { Expect::Fire } else { Expect::Pass });
                run.results.push(TestResult {
                    rule: rule.id.clone(),
                    test: test.name.clone(),
                    location: test.location.clone(),
                    expected: test.expect,
                    got,
                });
            }
        }
        run
    }

    /// Every waiver must name a rule in force: a waiver for a misspelt or
    /// removed rule would otherwise look like protection and be none.
    pub fn check_waivers(&self, waivers: &[Waiver]) -> Result<(), RuleError> {
        for w in waivers {
            if self.get(&w.rule).is_some() {
                continue;
            }
            let near = self
                .rules
                .iter()
                .map(|r| (r.id.as_str(), schema::edit_distance(&r.id, &w.rule)))
                .filter(|(_, d)| *d <= 3)
                .min_by_key(|(_, d)| *d)
                .map(|(id, _)| id);
            let ids: Vec<&str> = self.rules.iter().map(|r| r.id.as_str()).collect();
            let help = match near {
                Some(id) => format!(
                    "did you mean `{id}`? The rules in force: {}",
                    ids.join(", ")
                ),
                None => format!("the rules in force: {}", ids.join(", ")),
            };
            return Err(RuleError::UnknownWaiverRule {
                location: w.location.clone(),
                rule: w.rule.clone(),
                help,
            });
        }
        Ok(())
    }
}

/// Mark each finding a waiver covers (same rule, same target). The finding
/// stays in the list: a waived violation is still reported, it just no
/// longer blocks.
pub fn apply_waivers(findings: Vec<Finding>, waivers: &[Waiver]) -> Vec<Finding> {
    findings
        .into_iter()
        .map(|mut f| {
            if let Some(w) = waivers
                .iter()
                .find(|w| w.rule == f.rule && w.target == f.target)
            {
                f.waiver = Some(w.clone());
            }
            f
        })
        .collect()
}

/// The outcome of one test case.
#[derive(Clone, Debug)]
pub struct TestResult {
    pub rule: String,
    pub test: String,
    /// `file:line:col` of the `[[test]]`.
    pub location: String,
    pub expected: Expect,
    /// What the rule did, or why it could not be evaluated.
    pub got: Result<Expect, String>,
}

impl TestResult {
    pub fn passed(&self) -> bool {
        self.got.as_ref().is_ok_and(|g| *g == self.expected)
    }
}

/// The outcome of [`RuleSet::run_tests`].
#[derive(Clone, Debug, Default)]
pub struct TestRun {
    pub results: Vec<TestResult>,
    /// Rules without a single `[[test]]`: allowed, and worth a warning.
    pub untested: Vec<String>,
}

impl TestRun {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }
}
