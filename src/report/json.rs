//! The machine report: `opsguard.report/v1` (docs/report.md), as
//! `--format json` prints it and `--report FILE` writes it. The field names
//! are [`super::model::Report`]'s, so this module only fixes the layout:
//! pretty-printed, fields in model order, one trailing newline.

use super::model::Report;

pub fn render(report: &Report) -> String {
    // Strings, numbers, bools and lists of them: serialisation cannot fail.
    let mut s = serde_json::to_string_pretty(report).expect("a report always serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Outcome, ReportMode, Violation};

    #[test]
    fn round_trips_and_has_the_documented_fields() {
        let report = Report {
            schema: crate::report::model::SCHEMA.into(),
            run_id: "r".into(),
            subcommand: "run".into(),
            command: vec!["true".into()],
            command_exit: Some(0),
            mode: ReportMode::Block,
            outcome: Outcome::Violated,
            violations: vec![Violation {
                rule: "live-credential-broken".into(),
                severity: crate::rules::Severity::Block,
                ..Violation::default()
            }],
            exit_code: 11,
            ..Report::default()
        };
        let text = render(&report);
        assert!(text.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for field in [
            "schema",
            "run_id",
            "command",
            "command_exit",
            "mode",
            "outcome",
            "violations",
            "remediation",
            "exit_code",
        ] {
            assert!(v.get(field).is_some(), "missing {field}: {text}");
        }
        assert_eq!(v["outcome"], "violated");
        for field in [
            "rule",
            "severity",
            "target",
            "message",
            "consumers",
            "remedies",
        ] {
            assert!(v["violations"][0].get(field).is_some(), "missing {field}");
        }
        assert_eq!(serde_json::from_str::<Report>(&text).unwrap(), report);
    }
}
