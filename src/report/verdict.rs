//! The one line every format leads with: what happened and which exit code
//! says so. Human text and Markdown share it so they never disagree.

use super::model::{Outcome, Report, ReportMode, Severity, Violation};
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
    /// The status word: `OK`, `COMMAND FAILED` (nothing blocking, but the
    /// wrapped command failed), `WARNING` (blocking violations in mode warn),
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

pub(crate) fn severity_count(vs: &[Violation], severity: Severity) -> usize {
    vs.iter().filter(|v| v.severity == severity).count()
}

/// `4 blocking violations`, `4 blocking violations, 1 warning`.
fn findings(report: &Report) -> String {
    let block = severity_count(&report.violations, Severity::Block);
    let warn = severity_count(&report.violations, Severity::Warn);
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

/// `run` or `rehearse` ran a command that exited non-zero or was killed.
fn command_failed(report: &Report) -> bool {
    ran_a_command(report)
        && (report.command_signal.is_some() || report.command_exit.is_some_and(|c| c != 0))
}

pub fn of(report: &Report) -> Verdict {
    let block = severity_count(&report.violations, Severity::Block);
    let remedy = report
        .remediation
        .as_ref()
        .map_or(report.mode.as_str(), |r| r.mode.as_str());
    let tail = exit_tail(report);
    match report.outcome {
        Outcome::Ok if command_failed(report) => {
            let what = match (&report.command_signal, report.command_exit) {
                (Some(sig), _) => format!("the command was killed by {sig}"),
                (None, Some(c)) => format!("the command exited {c}"),
                (None, None) => "the command failed".to_owned(),
            };
            let warn = severity_count(&report.violations, Severity::Warn);
            let found = if warn > 0 {
                format!(
                    "opsguard found no blocking violation, {}",
                    count(warn, "warning", "warnings")
                )
            } else {
                "opsguard found no blocking violation".to_owned()
            };
            Verdict {
                word: "COMMAND FAILED",
                detail: format!("{what}; {found} (exit {})", report.exit_code),
                tone: Tone::Block,
            }
        }
        Outcome::Ok => {
            let warn = severity_count(&report.violations, Severity::Warn);
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
        Outcome::Violated if report.mode == ReportMode::Warn => Verdict {
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
        Outcome::RemediationFailed => Verdict {
            word: "REMEDIATION FAILED",
            detail: format!(
                "{}; {}; a human is needed {tail}",
                findings(report),
                remedy_state(report).unwrap_or_default()
            ),
            tone: Tone::Block,
        },
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

/// The note [`crate::guard::remediate`] writes for each thing a remedy's
/// plan says it cannot do (the reason a remedy was refused).
pub const CANNOT_NOTE: &str = "cannot be put right automatically: ";
/// The note written for each blocking finding a remedy left in place.
pub const STILL_WRONG_NOTE: &str = "still wrong after the remedy: ";

/// The notes that start with `prefix`, without it.
fn notes_after<'a>(report: &'a Report, prefix: &str) -> Vec<&'a str> {
    report
        .notes
        .iter()
        .filter_map(|n| n.strip_prefix(prefix))
        .collect()
}

/// What a remedy did, in words: `rollback applied and verified`,
/// `redeploy refused: …`, `rollback failed: 1 of 2 steps failed`, …
pub fn remedy_state(report: &Report) -> Option<String> {
    let r = report.remediation.as_ref()?;
    let mode = r.mode.as_str();
    let n = r.actions.len();
    let failed = r.actions.iter().filter(|a| !a.ok).count();
    let cannot = notes_after(report, CANNOT_NOTE);
    let still = notes_after(report, STILL_WRONG_NOTE).len();
    let more = |v: &[&str]| {
        if v.len() > 1 {
            format!(" (and {} more)", v.len() - 1)
        } else {
            String::new()
        }
    };
    let steps = count(n, "step", "steps");
    Some(
        if r.verified && report.outcome == Outcome::RemediationFailed {
            // Verified by the rules that could be evaluated; a broken one
            // leaves its items unjudged.
            format!("{mode} applied ({steps}) but not proven complete")
        } else if r.verified {
            format!("{mode} applied ({steps}) and verified")
        } else if failed > 0 {
            format!("{mode} failed: {failed} of {steps} failed")
        } else if n == 0 && !cannot.is_empty() {
            format!("{mode} refused: {}{}", cannot[0], more(&cannot))
        } else if n == 0 {
            format!("{mode} found nothing to apply")
        } else if !cannot.is_empty() {
            format!(
                "{mode} applied in part ({steps}); not done: {}{}",
                cannot[0],
                more(&cannot)
            )
        } else if still > 0 {
            format!(
                "{mode} applied ({steps}), but {}",
                count(
                    still,
                    "blocking violation remains",
                    "blocking violations remain"
                )
            )
        } else {
            format!("{mode} applied ({steps}) but could not be verified")
        },
    )
}

fn ran_a_command(report: &Report) -> bool {
    report.subcommand == "run" || report.subcommand == "rehearse"
}

/// What opsguard did about the findings: the `done` line of the summary.
pub fn done(report: &Report) -> String {
    let sub = report.subcommand.as_str();
    match report.outcome {
        Outcome::Ok => "nothing needed".to_owned(),
        Outcome::Violated if sub == "rehearse" => {
            "nothing for real: the command ran in a shadow; the live environment was not touched"
                .to_owned()
        }
        Outcome::Violated if report.mode == ReportMode::Warn => {
            "nothing: mode warn reports, it does not block; the command's changes stand".to_owned()
        }
        Outcome::Violated if sub == "run" => format!(
            "nothing undone: mode {} stops here with exit {}; the command's changes stand",
            report.mode, report.exit_code
        ),
        Outcome::Violated if sub == "plan" => {
            "nothing: plan only reports; nothing was applied".to_owned()
        }
        Outcome::Violated => format!("nothing: {sub} only reports"),
        Outcome::Remediated | Outcome::RemediationFailed if report.remediation.is_some() => {
            remedy_state(report).unwrap_or_default()
        }
        Outcome::Remediated => "remedied".to_owned(),
        Outcome::RemediationFailed if report.error.is_some() && sub == "run" => {
            "nothing: the check after the command did not finish, so no remedy could be planned"
                .to_owned()
        }
        Outcome::RemediationFailed => "nothing: opsguard could not finish its check".to_owned(),
        Outcome::PreflightFailed if ran_a_command(report) => {
            "nothing: the command was not run".to_owned()
        }
        Outcome::PreflightFailed => "nothing: the environment could not be read".to_owned(),
        Outcome::Escaped => {
            "nothing: the live environment changed during the rehearsal, so a person must look"
                .to_owned()
        }
    }
}

/// What a person can run next, when there is one thing to say.
pub(crate) fn next(report: &Report, causes: &[super::causes::Cause<'_>]) -> Option<String> {
    let remedy_mode = matches!(report.mode.as_str(), "rollback" | "redeploy");
    match report.outcome {
        Outcome::RemediationFailed if report.subcommand == "run" && remedy_mode => Some(format!(
            "opsguard resume {} (plans again from the current state and retries the {})",
            report.run_id, report.mode
        )),
        Outcome::Violated
            if report.subcommand == "check" && super::causes::any_redeploy(report, causes) =>
        {
            Some("opsguard check --fix redeploy (or the aws commands above)".to_owned())
        }
        Outcome::PreflightFailed if report.subcommand == "run" && !report.violations.is_empty() => {
            Some(
                "put the findings right first; if the command is the repair, run it with --skip-preflight"
                    .to_owned(),
            )
        }
        _ => None,
    }
}

/// What the exit code says, for the last block of the human report.
pub fn exit_meaning(report: &Report) -> String {
    let ran = ran_a_command(report);
    match report.exit_code {
        0 if ran => "nothing blocking, and the command exited 0".to_owned(),
        0 => "nothing blocking".to_owned(),
        10 => "a blocking violation was found, remedied and verified".to_owned(),
        11 if report.outcome == Outcome::Violated
            && (report.subcommand == "rehearse"
                || report.command_exit.is_none() && report.rehearsal.is_some()) =>
        {
            "a blocking violation predicted; the command was not run for real".to_owned()
        }
        11 => "a blocking violation, no remedy applied".to_owned(),
        12 if report.outcome == Outcome::Escaped => {
            "the live environment changed during the rehearsal: a person must look".to_owned()
        }
        12 if report.remediation.is_some() => {
            "the remedy failed or could not be verified: a person must look".to_owned()
        }
        12 => "opsguard could not finish its check: a person must look".to_owned(),
        13 if ran => "pre-flight failed: the command was not run".to_owned(),
        13 => "the environment could not be checked".to_owned(),
        1 if report.command_exit_folded => format!(
            "the command exited {}, a code opsguard keeps for its own verdicts",
            report.command_exit.unwrap_or_default()
        ),
        _ if ran && report.command_signal.is_some() => format!(
            "the command was killed by {} (128 + its number)",
            report.command_signal.as_deref().unwrap_or_default()
        ),
        _ if ran => "the command's own exit code".to_owned(),
        2 => "usage or configuration error".to_owned(),
        _ => "see the exit codes in `opsguard --help`".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Action, Remediation};

    fn block(target: &str) -> Violation {
        Violation {
            rule: "live-credential-broken".into(),
            severity: Severity::Block,
            target: target.into(),
            ..Violation::default()
        }
    }

    fn run(outcome: Outcome, mode: &str, exit_code: u8) -> Report {
        Report {
            subcommand: "run".into(),
            command: vec!["true".into()],
            command_exit: Some(0),
            mode: serde_json::from_value(serde_json::json!(mode)).expect("a report mode"),
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
            mode: ReportMode::Rollback,
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
        assert!(line(&r).contains("; rollback applied (0 steps) but not proven complete;"));
        r.remediation.as_mut().unwrap().verified = false;
        // Nothing applied because the plan refused: say so, and why.
        r.notes = vec![
            format!("{CANNOT_NOTE}credential search: its current value does not authenticate"),
            format!("{CANNOT_NOTE}credential items: the same"),
        ];
        assert_eq!(
            line(&r),
            "REMEDIATION FAILED: 2 blocking violations; rollback refused: credential search: its current value does not authenticate (and 1 more); a human is needed (command exited 0, exit 12)"
        );
        r.notes.clear();
        r.remediation.as_mut().unwrap().actions.push(Action {
            kind: "redeploy".into(),
            target: "c/s".into(),
            ok: true,
            detail: None,
        });
        r.notes = vec![format!(
            "{STILL_WRONG_NOTE}live-credential-broken on search: x"
        )];
        assert!(
            line(&r).contains("; rollback applied (1 step), but 1 blocking violation remains"),
            "{}",
            line(&r)
        );
        r.notes.clear();
        assert!(line(&r)
            .contains("; rollback applied (1 step) but could not be verified; a human is needed"));
        r.remediation.as_mut().unwrap().actions.push(Action {
            kind: "restore-secret-stage".into(),
            target: "x".into(),
            ok: false,
            detail: None,
        });
        assert!(line(&r).starts_with(
            "REMEDIATION FAILED: 2 blocking violations; rollback failed: 1 of 2 steps failed; a human is needed"
        ));
        let mut r = run(Outcome::RemediationFailed, "block", 12);
        r.violations.clear();
        assert_eq!(
            line(&r),
            "UNVERIFIED: the command ran, but opsguard could not check what it changed; a human is needed (command exited 0, exit 12)"
        );
        let mut r = run(Outcome::Ok, "block", 3);
        r.violations.clear();
        r.command_exit = Some(3);
        assert_eq!(
            line(&r),
            "COMMAND FAILED: the command exited 3; opsguard found no blocking violation (exit 3)"
        );
        assert_eq!(of(&r).tone, Tone::Block, "a failed command is not green");
        r.command_exit = None;
        r.command_signal = Some("SIGTERM".into());
        r.exit_code = 143;
        assert_eq!(
            line(&r),
            "COMMAND FAILED: the command was killed by SIGTERM; opsguard found no blocking violation (exit 143)"
        );
        r.command_signal = None;
        r.command_exit = Some(0);
        r.exit_code = 0;
        assert_eq!(line(&r), "OK: no blocking violation (command exited 0)");
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
