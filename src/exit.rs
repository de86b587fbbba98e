//! Exit codes. They are a contract (docs/cli.md, "Exit codes"): scripts, hooks
//! and CI gates outside this project branch on them, so they live here as named
//! constants, and the code of a report is derived from its outcome here, in
//! [`of`], and nowhere else. (Errors that stop a command before it has an
//! outcome get theirs from [`crate::error::Error::exit_code`].)

use crate::report::model::{Outcome, Report};

/// No blocking violation and, for `run`, the command exited 0.
pub const OK: u8 = 0;
/// Usage or configuration error: nothing was run.
pub const USAGE: u8 = 2;
/// A blocking violation was found; a remedy was applied and verified by a fresh snapshot.
pub const REMEDIATED: u8 = 10;
/// `rules test`: a rule's test case failed.
pub const TESTS_FAILED: u8 = 1;
/// A blocking violation was found; no remedy was applied.
pub const VIOLATION: u8 = 11;
/// A blocking violation was found; the remedy failed or could not be verified.
pub const REMEDY_FAILED: u8 = 12;
/// Pre-flight failed: the environment could not be snapshotted (or already
/// violates a blocking steady-state rule); the command was not run.
pub const PREFLIGHT_FAILED: u8 = 13;

/// The codes above that a wrapped command could also return: a command
/// exiting with one of them would read as opsguard's verdict.
pub const VERDICT_CODES: [u8; 5] = [
    USAGE,
    REMEDIATED,
    VIOLATION,
    REMEDY_FAILED,
    PREFLIGHT_FAILED,
];

/// What a command's own exit code becomes when `run` passes it through: a
/// code that collides with a verdict is folded to 1 (failure, and no
/// verdict); the report keeps the real one in `command_exit`.
pub fn fold_command_exit(code: u8) -> u8 {
    if VERDICT_CODES.contains(&code) {
        1
    } else {
        code
    }
}

/// How the wrapped command of `run` or `rehearse` ended, for the exit code.
#[derive(Clone, Copy, Debug)]
pub struct Command {
    /// Its shell code: the exit code, or 128+N when signal N killed it.
    pub code: u8,
    /// Mode `warn`: blocking findings are reported and do not fail.
    pub warn: bool,
}

/// The exit code of an outcome. `command` is the wrapped command's end for
/// `run` and `rehearse`, whose code passes through (folded, see
/// [`fold_command_exit`]) when nothing blocks; `None` for the subcommands
/// that wrap none.
pub fn of(outcome: Outcome, command: Option<Command>) -> u8 {
    let passthrough = command.map_or(OK, |c| fold_command_exit(c.code));
    match outcome {
        Outcome::Ok => passthrough,
        Outcome::Violated if command.is_some_and(|c| c.warn) => passthrough,
        Outcome::Violated => VIOLATION,
        Outcome::Remediated => REMEDIATED,
        Outcome::RemediationFailed | Outcome::Escaped => REMEDY_FAILED,
        Outcome::PreflightFailed => PREFLIGHT_FAILED,
    }
}

/// Set `report`'s outcome and the exit code that follows from it. When the
/// command's own code was folded on the way, the report says so (a note and
/// `command_exit_folded`) and the note is returned for stderr.
pub fn settle(report: &mut Report, outcome: Outcome, command: Option<Command>) -> Option<String> {
    report.outcome = outcome;
    report.exit_code = of(outcome, command);
    let c = command?;
    let passed_through = match outcome {
        Outcome::Ok => true,
        Outcome::Violated => c.warn,
        _ => false,
    };
    if !passed_through || report.exit_code == c.code {
        return None;
    }
    let note = format!(
        "the command exited {}, a code opsguard uses for its own verdicts; opsguard exits {} instead (command_exit keeps {})",
        c.code, report.exit_code, c.code
    );
    report.notes.push(note.clone());
    report.command_exit_folded = true;
    Some(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_code() {
        let run = |code, warn| Some(Command { code, warn });
        assert_eq!(of(Outcome::Ok, None), OK);
        assert_eq!(of(Outcome::Ok, run(3, false)), 3);
        assert_eq!(of(Outcome::Ok, run(11, false)), 1);
        assert_eq!(of(Outcome::Violated, None), VIOLATION);
        assert_eq!(of(Outcome::Violated, run(0, false)), VIOLATION);
        assert_eq!(of(Outcome::Violated, run(4, true)), 4);
        assert_eq!(of(Outcome::Remediated, run(0, false)), REMEDIATED);
        assert_eq!(of(Outcome::RemediationFailed, None), REMEDY_FAILED);
        assert_eq!(of(Outcome::Escaped, run(0, false)), REMEDY_FAILED);
        assert_eq!(of(Outcome::PreflightFailed, None), PREFLIGHT_FAILED);
    }

    #[test]
    fn a_folded_command_code_is_said_once_and_only_when_it_is_the_exit_code() {
        let mut r = Report::default();
        let note = settle(
            &mut r,
            Outcome::Ok,
            Some(Command {
                code: 12,
                warn: false,
            }),
        );
        assert_eq!(r.exit_code, 1);
        assert!(r.command_exit_folded);
        assert!(note.expect("said").contains("exited 12"));
        assert_eq!(r.notes.len(), 1);

        let mut r = Report::default();
        let note = settle(
            &mut r,
            Outcome::Violated,
            Some(Command {
                code: 12,
                warn: false,
            }),
        );
        assert_eq!(
            (r.exit_code, r.command_exit_folded, note),
            (11, false, None)
        );

        let mut r = Report::default();
        let note = settle(
            &mut r,
            Outcome::Ok,
            Some(Command {
                code: 7,
                warn: false,
            }),
        );
        assert_eq!((r.exit_code, r.command_exit_folded, note), (7, false, None));
    }

    #[test]
    fn colliding_codes_fold_to_one_and_others_pass() {
        for c in [2, 10, 11, 12, 13] {
            assert_eq!(fold_command_exit(c), 1, "{c}");
        }
        for c in [0, 1, 3, 9, 14, 127, 130, 255] {
            assert_eq!(fold_command_exit(c), c, "{c}");
        }
    }
}
