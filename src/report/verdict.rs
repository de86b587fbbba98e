//! The one line every format leads with: what happened and which exit code
//! says so. Human text and Markdown share it so they never disagree.

use super::model::{Outcome, Report, Violation};
use super::short::count;

/// How a verdict should look: the colour of the human line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Ok,
    Warn,
    Block,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The status word: `OK`, `WARNING` (blocking violations in mode warn),
    /// `BLOCKED`, `REMEDIATED`, `REMEDIATION FAILED`, `UNVERIFIED` (exit 12
    /// without a remedy: the after state could not be checked) or
    /// `PRE-FLIGHT FAILED`.
    pub word: &'static str,
    /// The rest of the line, e.g. `4 blocking violations (exit 11)`.
    pub detail: String,
    pub tone: Tone,
}

impl Verdict {
    /// `BLOCKED: 4 blocking violations (exit 11)`.
    pub fn line(&self) -> String {
        format!("{}: {}", self.word, self.detail)
    }
}

pub(crate) fn severity_count(vs: &[Violation], severity: &str) -> usize {
    vs.iter().filter(|v| v.severity == severity).count()
}

/// `4 blocking violations`, `4 blocking violations, 1 warning`.
fn findings(report: &Report) -> String {
    let block = severity_count(&report.violations, "block");
    let warn = severity_count(&report.violations, "warn");
    let mut s = count(block, "blocking violation", "blocking violations");
    if warn > 0 {
        s.push_str(", ");
        s.push_str(&count(warn, "warning", "warnings"));
    }
    s
}

/// `(command exited 0)`, `(command exited 3, exit 3)`, `(exit 11)`.
fn exit_tail(report: &Report) -> String {
    let e = report.exit_code;
    let ran = report.subcommand == "run" || report.subcommand == "rehearse";
    match (&report.command_signal, report.command_exit) {
        (Some(sig), _) if ran => format!("(command killed by {sig}, exit {e})"),
        (None, Some(c)) if ran && c == i32::from(e) => format!("(command exited {c})"),
        (None, Some(c)) if ran => format!("(command exited {c}, exit {e})"),
        _ => format!("(exit {e})"),
    }
}

pub fn of(report: &Report) -> Verdict {
    let block = severity_count(&report.violations, "block");
    let remedy = report
        .remediation
        .as_ref()
        .map_or(report.mode.as_str(), |r| r.mode.as_str());
    let tail = exit_tail(report);
    match report.outcome {
        Outcome::Ok => {
            let warn = severity_count(&report.violations, "warn");
            let detail = if warn > 0 {
                format!(
                    "no blocking violation, {} {tail}",
                    count(warn, "warning", "warnings")
                )
            } else {
                format!("no blocking violation {tail}")
            };
            Verdict {
                word: "OK",
                detail,
                tone: Tone::Ok,
            }
        }
        Outcome::Violated if report.mode == "warn" => Verdict {
            word: "WARNING",
            detail: format!("{}, not blocked in mode warn {tail}", findings(report)),
            tone: Tone::Warn,
        },
        Outcome::Violated if report.subcommand == "rehearse" => Verdict {
            word: "PREDICTED",
            detail: format!("{} in the shadow; live untouched {tail}", findings(report)),
            tone: Tone::Block,
        },
        Outcome::Violated => Verdict {
            word: "BLOCKED",
            detail: format!("{} {tail}", findings(report)),
            tone: Tone::Block,
        },
        Outcome::Remediated => Verdict {
            word: "REMEDIATED",
            detail: format!("{}; {remedy} applied and verified {tail}", findings(report)),
            tone: Tone::Warn,
        },
        Outcome::RemediationFailed if report.remediation.is_none() => {
            let what = if report.subcommand == "run" {
                "the command ran, but opsguard could not check what it changed"
            } else {
                "opsguard could not finish its check"
            };
            Verdict {
                word: "UNVERIFIED",
                detail: format!("{what}; a human is needed {tail}"),
                tone: Tone::Block,
            }
        }
        Outcome::RemediationFailed => {
            let failed = report
                .remediation
                .as_ref()
                .is_some_and(|r| r.actions.iter().any(|a| !a.ok));
            let how = if failed {
                "failed"
            } else {
                "could not be verified"
            };
            Verdict {
                word: "REMEDIATION FAILED",
                detail: format!(
                    "{}; {remedy} {how}, a human is needed {tail}",
                    findings(report)
                ),
                tone: Tone::Block,
            }
        }
        Outcome::Escaped => Verdict {
            word: "ESCAPED",
            detail: format!(
                "the live environment changed while the command ran in the shadow; a human is needed {tail}"
            ),
            tone: Tone::Block,
        },
        Outcome::PreflightFailed => {
            let why = if block > 0 {
                format!(
                    "the environment already has {}",
                    count(block, "blocking violation", "blocking violations")
                )
            } else {
                "the environment could not be checked".to_owned()
            };
            let not_run = if report.subcommand == "run" || report.subcommand == "rehearse" {
                "; the command was NOT run"
            } else {
                ""
            };
            Verdict {
                word: "PRE-FLIGHT FAILED",
                detail: format!("{why}{not_run} {tail}"),
                tone: Tone::Block,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Action, Remediation};

    fn block(target: &str) -> Violation {
        Violation {
            rule: "live-credential-broken".into(),
            severity: "block".into(),
            target: target.into(),
            ..Violation::default()
        }
    }

    fn run(outcome: Outcome, mode: &str, exit_code: u8) -> Report {
        Report {
            subcommand: "run".into(),
            command: vec!["true".into()],
            command_exit: Some(0),
            mode: mode.into(),
            outcome,
            exit_code,
            violations: vec![block("search"), block("items")],
            ..Report::default()
        }
    }

    #[test]
    fn each_outcome_has_its_word_and_exit_code() {
        let line = |r: &Report| of(r).line();
        assert_eq!(
            line(&run(Outcome::Violated, "block", 11)),
            "BLOCKED: 2 blocking violations (command exited 0, exit 11)"
        );
        assert_eq!(
            line(&run(Outcome::Violated, "warn", 0)),
            "WARNING: 2 blocking violations, not blocked in mode warn (command exited 0)"
        );
        let mut r = run(Outcome::Remediated, "rollback", 10);
        r.remediation = Some(Remediation {
            mode: "rollback".into(),
            actions: vec![],
            verified: true,
            ..Default::default()
        });
        assert_eq!(
            line(&r),
            "REMEDIATED: 2 blocking violations; rollback applied and verified (command exited 0, exit 10)"
        );
        r.outcome = Outcome::RemediationFailed;
        r.exit_code = 12;
        assert!(line(&r).contains("rollback could not be verified, a human is needed"));
        r.remediation.as_mut().unwrap().actions.push(Action {
            kind: "restore-secret-stage".into(),
            target: "x".into(),
            ok: false,
            detail: None,
        });
        assert!(line(&r).starts_with("REMEDIATION FAILED: 2 blocking violations; rollback failed,"));
        let mut r = run(Outcome::RemediationFailed, "block", 12);
        r.violations.clear();
        assert_eq!(
            line(&r),
            "UNVERIFIED: the command ran, but opsguard could not check what it changed; a human is needed (command exited 0, exit 12)"
        );
        let mut r = run(Outcome::Ok, "block", 3);
        r.violations.clear();
        r.command_exit = Some(3);
        assert_eq!(line(&r), "OK: no blocking violation (command exited 3)");
        r.command_exit = None;
        r.command_signal = Some("SIGTERM".into());
        r.exit_code = 143;
        assert_eq!(
            line(&r),
            "OK: no blocking violation (command killed by SIGTERM, exit 143)"
        );
        let mut r = run(Outcome::PreflightFailed, "block", 13);
        r.command_exit = None;
        assert_eq!(
            line(&r),
            "PRE-FLIGHT FAILED: the environment already has 2 blocking violations; the command was NOT run (exit 13)"
        );
    }

    #[test]
    fn tones_follow_severity() {
        assert_eq!(of(&run(Outcome::Violated, "block", 11)).tone, Tone::Block);
        assert_eq!(of(&run(Outcome::Violated, "warn", 0)).tone, Tone::Warn);
        assert_eq!(of(&Report::default()).tone, Tone::Ok);
    }
}
