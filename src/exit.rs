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
