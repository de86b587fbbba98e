//! The report as JUnit XML, for CI test reporters: one suite `opsguard`, one
//! test case per rule × target finding (named `rule-id: target`, classname the
//! rule id), so a CI page lists each violation by name.
//!
//! * a blocking finding is a `<failure>` (type: the rule id);
//! * a warning or info finding passes, with the warning in `<system-out>`:
//!   it must be visible without failing the build, which `warn` promises;
//! * a waived finding is `<skipped>`, with the waiver's reason;
//! * no finding at all is one passing case, `opsguard: no violations`, since
//!   several reporters treat a suite with no case as a broken upload;
//! * a pre-flight that could not check the environment is an `<error>` case,
//!   `opsguard: pre-flight`, and a check that could not finish after the
//!   command (`error`) is one named `opsguard: verification`: with no finding
//!   to fail on, the run would otherwise show green while it exited 13 or 12;
//! * the report's notes are the suite's `<system-out>`.
//!
//! `quick-junit` writes the XML (escaping, and stripping what XML 1.0 cannot
//! hold), so the output parses whatever the messages contain.

use super::model::{Report, Severity, Violation};
use super::{command_line, remedy_hints};
use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub const SUITE: &str = "opsguard";

pub fn render(report: &Report) -> String {
    let mut suite = TestSuite::new(SUITE);
    let mut props = vec![
        Property::new("run_id", &report.run_id),
        Property::new("subcommand", &report.subcommand),
        Property::new("mode", report.mode.as_str()),
        Property::new(
            "outcome",
            serde_json::to_value(report.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        ),
        Property::new("exit_code", report.exit_code.to_string()),
    ];
    if !report.command.is_empty() {
        props.push(Property::new("command", command_line(&report.command)));
    }
    suite.add_properties(props);
    if !report.notes.is_empty() {
        suite.set_system_out(report.notes.join("\n"));
    }
    if let Some(t) = elapsed(report) {
        suite.set_time(t);
    }

    let mut cases = Vec::new();
    if let Some(e) = &report.preflight_error {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(e.as_str()).set_type("preflight_failed");
        let mut case = TestCase::new("opsguard: pre-flight", status);
        case.set_classname(SUITE);
        cases.push(case);
    }
    if let Some(e) = &report.error {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(e.as_str()).set_type("unverified");
        let mut case = TestCase::new("opsguard: verification", status);
        case.set_classname(SUITE);
        cases.push(case);
    }
    for v in &report.violations {
        cases.push(finding(v));
    }
    for w in &report.waived {
        let mut status = TestCaseStatus::skipped();
        let reason = match &w.waiver {
            Some(n) => format!("waived: {} (expires {})", n.reason, n.expires),
            None => "waived".to_owned(),
        };
        status.set_message(reason).set_type("waived");
        status.set_description(details(w));
        let mut case = TestCase::new(name(w), status);
        case.set_classname(w.rule.as_str());
        cases.push(case);
    }
    if cases.is_empty() {
        let mut case = TestCase::new("opsguard: no violations", TestCaseStatus::success());
        case.set_classname(SUITE);
        cases.push(case);
    }
    suite.add_test_cases(cases);

    let mut xml = quick_junit::Report::new(SUITE);
    if let Some(t) = elapsed(report) {
        xml.set_time(t);
    }
    xml.add_test_suite(suite);
    // Writing to a String cannot fail, and quick-junit escapes all text.
    xml.to_string().expect("a JUnit report always serialises")
}

fn name(v: &Violation) -> String {
    format!("{}: {}", v.rule, v.target)
}

fn finding(v: &Violation) -> TestCase {
    let mut case = if v.severity == Severity::Block {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status
            .set_message(v.message.as_str())
            .set_type(v.rule.as_str())
            .set_description(details(v));
        TestCase::new(name(v), status)
    } else {
        let mut case = TestCase::new(name(v), TestCaseStatus::success());
        let mut note = format!("{}: {}\n", v.severity, v.message);
        note.push_str(&details(v));
        case.set_system_out(note);
        case
    };
    case.set_classname(v.rule.as_str());
    case
}

/// The body of a failure: who is affected, why it matters, what to do.
fn details(v: &Violation) -> String {
    let mut s = String::new();
    if !v.consumers.is_empty() {
        s.push_str(&format!("consumers: {}\n", v.consumers.join(", ")));
    }
    let why = if v.why.is_empty() { &v.summary } else { &v.why };
    if !why.is_empty() {
        s.push_str(&format!("why it matters: {why}\n"));
    }
    for hint in remedy_hints(v) {
        s.push_str(&format!("remedy: {hint}\n"));
    }
    s
}

fn elapsed(report: &Report) -> Option<Duration> {
    let t = |s: &str| OffsetDateTime::parse(s, &Rfc3339).ok();
    let d = t(&report.finished_at)? - t(&report.started_at)?;
    d.try_into().ok()
}
