//! Exit codes. They are a contract (docs/cli.md, "Exit codes"): scripts, hooks
//! and CI gates outside this project branch on them, so they live here as named
//! constants and nowhere else.

/// No blocking violation and, for `run`, the command exited 0.
pub const OK: u8 = 0;
/// Usage or configuration error: nothing was run.
pub const USAGE: u8 = 2;
/// A blocking violation was found; a remedy was applied and verified by a fresh snapshot.
pub const REMEDIATED: u8 = 10;
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

#[cfg(test)]
mod tests {
    use super::*;

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
