//! The conductor of `run`, `check` and `diff`: it takes the snapshots, builds
//! the facts, evaluates the rules and decides the outcome and exit code. It
//! owns no stage's logic; it only calls them in order.
//!
//! ```text
//! run:   before ─ pre-flight (rules on before=before) ─ command ─ after ─ probes of
//!        the before-values ─ facts(before, after) ─ rules ─ outcome
//! check: now ─ facts(now, now) ─ rules
//! diff:  two files ─ facts(before, after) ─ rules
//! ```

pub mod command;
pub mod fix;
pub mod remediate;
pub mod resume;
pub mod run;
pub mod steady;
pub mod watch;

use crate::config::{Config, Mode, Waiver};
use crate::exit;
use crate::facts::build::{self as facts, BeforeValueProbes, Context};
use crate::facts::model::Facts;
use crate::providers::ProbeOutcome;
use crate::report::model::{Outcome, Report, Violation, WaiverNote};
use crate::rules::{apply_waivers, Finding, RuleError, RuleSet, Severity};
use crate::snapshot::model::Snapshot;
use std::collections::BTreeMap;
use time::OffsetDateTime;

pub use crate::model::now_rfc3339;

/// `20261124T101500Z-3f2a`: sortable, unique enough for one machine.
pub fn new_run_id() -> String {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let ts = OffsetDateTime::now_utc().format(&fmt).unwrap_or_default();
    format!("{ts}-{:04x}", rand::random::<u16>())
}

/// What the verdict is judged by: the rules in force, the waivers, and how
/// environments are told apart. Built from a config, or from the defaults
/// when `diff` runs without one.
pub struct Policy {
    pub rules: RuleSet,
    pub waivers: Vec<Waiver>,
    pub environment_prefixes: Vec<String>,
}

impl Policy {
    /// The config's rules (built-ins plus `[rules] paths`) and waivers, checked.
    pub fn from_config(config: &Config) -> Result<Policy, RuleError> {
        let rules = RuleSet::load(&config.rules.paths)?;
        rules.check_waivers(&config.waivers)?;
        Ok(Policy {
            rules,
            waivers: config.waivers.clone(),
            environment_prefixes: config.environment_prefixes.clone(),
        })
    }

    /// Built-in rules, no waivers, default environment prefixes.
    pub fn builtin() -> Result<Policy, RuleError> {
        Ok(Policy {
            rules: RuleSet::builtin()?,
            waivers: Vec::new(),
            environment_prefixes: crate::config::DEFAULT_ENVIRONMENT_PREFIXES
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
        })
    }

    /// Facts of one snapshot against itself: what steady-state rules see.
    pub fn steady_facts(&self, snap: &Snapshot, mode: &str) -> Facts {
        self.facts(snap, snap, mode, None)
    }

    pub fn facts(
        &self,
        before: &Snapshot,
        after: &Snapshot,
        mode: &str,
        probes: Option<&BeforeValueProbes>,
    ) -> Facts {
        facts::build(
            before,
            after,
            &Context {
                mode,
                environment_prefixes: &self.environment_prefixes,
                before_value_probes: probes,
            },
        )
    }

    /// Evaluate and apply waivers; findings come back blocking-first.
    pub fn evaluate(&self, facts: &Facts) -> Result<Vec<Finding>, RuleError> {
        Ok(apply_waivers(self.rules.evaluate(facts)?, &self.waivers))
    }
}

impl Policy {
    /// [`Policy::evaluate`], going on without a rule that cannot be
    /// evaluated (a custom rule that fails at run time): the other rules'
    /// findings, and each broken rule's error. A broken rule must fail
    /// closed (its items are unjudged); the caller decides how.
    pub fn evaluate_each(
        &self,
        facts: &Facts,
    ) -> Result<(Vec<Finding>, Vec<RuleError>), RuleError> {
        let mut rules = self.rules.clone();
        let mut broken = Vec::new();
        for _ in 0..=self.rules.rules().len() {
            match rules.evaluate(facts) {
                Ok(f) => return Ok((apply_waivers(f, &self.waivers), broken)),
                Err(e @ RuleError::Evaluation { .. }) => {
                    let RuleError::Evaluation { rule, .. } = &e else {
                        unreachable!()
                    };
                    rules = rules.without(rule);
                    broken.push(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(broken.pop().expect("at least one rule was dropped"))
    }
}

pub fn is_blocking(f: &Finding) -> bool {
    f.severity == Severity::Block && f.waiver.is_none()
}

fn violation(f: &Finding) -> Violation {
    Violation {
        rule: f.rule.clone(),
        severity: f.severity,
        target: f.target.clone(),
        message: f.message.clone(),
        consumers: f.consumers.clone(),
        remedies: f.remedies.clone(),
        summary: f.summary.clone(),
        why: f.why.clone(),
        waiver: f.waiver.as_ref().map(|w| WaiverNote {
            reason: w.reason.clone(),
            expires: w.expires.to_string(),
        }),
    }
}

/// Put findings into a report: active ones in `violations`, waived ones apart.
pub fn record_findings(report: &mut Report, findings: &[Finding]) {
    report.violations = findings
        .iter()
        .filter(|f| f.waiver.is_none())
        .map(violation)
        .collect();
    report.waived = findings
        .iter()
        .filter(|f| f.waiver.is_some())
        .map(violation)
        .collect();
}

/// A report with the fields every subcommand sets.
pub fn new_report(
    subcommand: &str,
    run_id: String,
    mode: crate::report::model::ReportMode,
) -> Report {
    Report {
        schema: crate::report::model::SCHEMA.to_owned(),
        run_id,
        subcommand: subcommand.to_owned(),
        mode,
        started_at: now_rfc3339(),
        ..Default::default()
    }
}

/// Outcome and exit code of `check` and `diff`: 11 on a blocking finding.
pub fn settle_steady(report: &mut Report, findings: &[Finding]) {
    record_findings(report, findings);
    let outcome = if findings.iter().any(is_blocking) {
        Outcome::Violated
    } else {
        Outcome::Ok
    };
    exit::settle(report, outcome, None);
}

/// Probe, after the command, every value the consumers held before it: what
/// running tasks — which read their credentials at start-up — now experience.
pub async fn probe_values<X: crate::providers::EsReader>(
    es: &X,
    before: &Snapshot,
    auth: &BTreeMap<String, crate::providers::ProbeAuth>,
) -> Result<BeforeValueProbes, crate::providers::ProviderError> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let by_id: BTreeMap<&str, &str> = before
        .credentials
        .iter()
        .map(|c| (c.id.as_str(), c.origin.as_str()))
        .collect();
    let results: Vec<(String, String)> = stream::iter(auth.iter())
        .map(|(id, auth)| {
            let origin = by_id
                .get(id.as_str())
                .map(|o| (*o).to_owned())
                .unwrap_or_default();
            async move {
                let word = match es.authenticate(auth).await? {
                    ProbeOutcome::Authenticated { .. } => "authenticated",
                    ProbeOutcome::Rejected { .. } => "rejected",
                };
                Ok::<_, crate::providers::ProviderError>((origin, word.to_owned()))
            }
        })
        .buffer_unordered(8)
        .try_collect()
        .await?;
    let mut probes: BeforeValueProbes = results.into_iter().collect();
    // Credentials with no value before could not be probed: say so.
    for c in &before.credentials {
        probes
            .entry(c.origin.clone())
            .or_insert_with(|| "unresolved".to_owned());
    }
    Ok(probes)
}
