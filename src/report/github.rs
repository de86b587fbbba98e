//! GitHub Actions: one workflow command per finding, so each violation shows
//! as an annotation on the run (and the pull request), and the Markdown
//! report for `$GITHUB_STEP_SUMMARY`.
//!
//! A finding becomes `::error title=opsguard RULE::TARGET: MESSAGE` (block),
//! `::warning …` (warn) or `::notice …` (info). A pre-flight that could not
//! check the environment, a check that could not finish after the command,
//! and a remedy's verdict get one line each too: with no finding to show, a
//! red job would otherwise carry no annotation saying why.
//!
//! The caller writes these lines to **stderr**. The runner reads workflow
//! commands from both streams of a step (each through its own output
//! manager), and stdout may carry `--format json`, which must stay valid JSON.
//!
//! Escaping is the runner's own (`ActionCommand` in actions/runner, mirrored by
//! `escapeData` / `escapeProperty` in @actions/core): in the message, `%`,
//! `\r` and `\n` become `%25`, `%0D`, `%0A`; in a property, `:` and `,` also
//! become `%3A` and `%2C`, since they delimit properties. An escaped message
//! is one line, so nothing in it can start a command of its own.
//!
//! Like every renderer here this is pure: the caller decides where it goes.

use super::model::{Outcome, Report, Violation};

/// Whether the process runs as a GitHub Actions step.
pub fn detected(env: &dyn Fn(&str) -> Option<String>) -> bool {
    env("GITHUB_ACTIONS").as_deref() == Some("true")
}

/// The workflow commands for `report`, one a line, each ending in `\n`.
/// Blocking findings come first (the report keeps them first), so they are
/// the ones shown when GitHub caps the annotations of a step.
pub fn annotations(report: &Report) -> String {
    let mut out = String::new();
    if let Some(e) = &report.preflight_error {
        line(
            &mut out,
            "error",
            "opsguard pre-flight",
            &format!("{e} (nothing was run)"),
        );
    }
    if let Some(e) = &report.error {
        line(
            &mut out,
            "error",
            "opsguard verification",
            &format!("{e} (a human must look: see the step summary)"),
        );
    }
    for v in &report.violations {
        line(
            &mut out,
            level(v),
            &format!("opsguard {}", v.rule),
            &message(v),
        );
    }
    if let Some(r) = &report.remediation {
        match report.outcome {
            Outcome::Remediated => line(
                &mut out,
                "notice",
                "opsguard remedy",
                &format!(
                    "{} applied and verified by a fresh snapshot ({} actions)",
                    r.mode,
                    r.actions.len()
                ),
            ),
            Outcome::RemediationFailed => line(
                &mut out,
                "error",
                "opsguard remedy",
                &format!(
                    "{} failed or could not be verified: a human is needed (see the step summary; `opsguard resume {}` finishes an interrupted remedy)",
                    r.mode, report.run_id
                ),
            ),
            _ => {}
        }
    }
    out
}

/// The annotation level of a finding's severity.
fn level(v: &Violation) -> &'static str {
    match v.severity.as_str() {
        "block" => "error",
        "warn" => "warning",
        _ => "notice",
    }
}

/// `TARGET: MESSAGE`, and the consumers when the message does not name them.
fn message(v: &Violation) -> String {
    let mut m = format!("{}: {}", v.target, v.message);
    if !v.consumers.is_empty() && !v.consumers.iter().all(|c| v.message.contains(c.as_str())) {
        m.push_str(&format!(" (consumers: {})", v.consumers.join(", ")));
    }
    m
}

fn line(out: &mut String, level: &str, title: &str, msg: &str) {
    out.push_str(&format!(
        "::{level} title={}::{}\n",
        escape_property(title),
        escape_data(msg)
    ));
}

/// A workflow command's message: `%`, CR and LF percent-encoded.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: as [`escape_data`], plus `:` and `,`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The Markdown report for `$GITHUB_STEP_SUMMARY`: the `markdown` format,
/// followed by a blank line so the next step's summary starts a new block.
pub fn step_summary(report: &Report, diff: Option<&str>) -> String {
    let mut s = super::markdown::render(report, diff);
    s.push_str("\n\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::Remediation;

    fn violation(rule: &str, severity: &str, target: &str, message: &str) -> Violation {
        Violation {
            rule: rule.into(),
            severity: serde_json::from_value(serde_json::json!(severity)).unwrap(),
            target: target.into(),
            message: message.into(),
            ..Violation::default()
        }
    }

    #[test]
    fn escaping_is_the_runners() {
        assert_eq!(escape_data("50% a:b,c\r\nnext"), "50%25 a:b,c%0D%0Anext");
        assert_eq!(escape_property("a: b, 5%\n"), "a%3A b%2C 5%25%0A");
        // Already-escaped text is escaped again, so it reads back as written.
        assert_eq!(escape_data("%0A"), "%250A");
    }

    #[test]
    fn one_line_per_finding_by_severity() {
        let report = Report {
            violations: vec![
                violation("live-credential-broken", "block", "search", "it broke"),
                violation("desired-count-changed", "warn", "c/s", "3 → 1"),
                violation("some-info", "info", "x", "fyi"),
            ],
            ..Report::default()
        };
        assert_eq!(
            annotations(&report),
            "::error title=opsguard live-credential-broken::search: it broke\n\
             ::warning title=opsguard desired-count-changed::c/s: 3 → 1\n\
             ::notice title=opsguard some-info::x: fyi\n"
        );
    }

    #[test]
    fn a_message_cannot_start_a_command_of_its_own() {
        let mut v = violation("r:1,2", "block", "t", "a\n::set-env name=X::y\r\n100%");
        v.consumers = vec!["c/a".into(), "c/b".into()];
        let out = annotations(&Report {
            violations: vec![v],
            ..Report::default()
        });
        assert_eq!(out.lines().count(), 1, "{out}");
        assert_eq!(
            out,
            "::error title=opsguard r%3A1%2C2::t: a%0A::set-env name=X::y%0D%0A100%25 (consumers: c/a, c/b)\n"
        );
    }

    #[test]
    fn failures_without_findings_still_annotate() {
        let out = annotations(&Report {
            preflight_error: Some("cannot take a snapshot: ECS DescribeClusters failed".into()),
            ..Report::default()
        });
        assert_eq!(
            out,
            "::error title=opsguard pre-flight::cannot take a snapshot: ECS DescribeClusters failed (nothing was run)\n"
        );
        let out = annotations(&Report {
            run_id: "R1".into(),
            outcome: Outcome::RemediationFailed,
            remediation: Some(Remediation {
                mode: crate::report::model::ReportMode::Rollback,
                ..Remediation::default()
            }),
            ..Report::default()
        });
        assert!(
            out.starts_with("::error title=opsguard remedy::rollback failed"),
            "{out}"
        );
        assert!(out.contains("opsguard resume R1"), "{out}");
    }

    #[test]
    fn nothing_found_nothing_said() {
        assert_eq!(annotations(&Report::default()), "");
    }
}
