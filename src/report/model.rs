//! The report (`opsguard.report/v1`): what `run`, `check` and `diff` found and
//! did. The JSON form is a contract (docs/report.md, and the JSON Schema
//! docs/schema/report.v1.json): field names are stable; add fields, never
//! rename them.

pub use crate::rules::{Remedy, Severity};
use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "opsguard.report/v1";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub run_id: String,
    /// `run`, `check` or `diff`.
    pub subcommand: String,
    /// The wrapped command (`run` only; empty otherwise).
    pub command: Vec<String>,
    /// Its exit code; `null` when it was not run or was killed by a signal.
    pub command_exit: Option<i32>,
    /// The signal that ended the command, if any (e.g. `SIGTERM`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_signal: Option<String>,
    /// What `run` did on a blocking violation, or the judgement another
    /// subcommand made (see [`ReportMode`]).
    pub mode: ReportMode,
    pub outcome: Outcome,
    /// Findings that are not waived, every severity, blocking ones first.
    pub violations: Vec<Violation>,
    /// Findings a waiver in the config turned off.
    pub waived: Vec<Violation>,
    pub remediation: Option<Remediation>,
    pub exit_code: u8,
    /// `--skip-preflight` was used: pre-flight findings did not stop the command.
    pub skip_preflight: bool,
    /// Why pre-flight failed (`preflight_failed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight_error: Option<String>,
    /// What stopped opsguard from finishing its check after the command ran
    /// (the after snapshot or a probe failed): a human must look.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `--watch`: what the tripwire saw, from the first refused probe to the
    /// probe that succeeded after the remedy.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub outage: Option<crate::model::Outage>,
    /// Notes for the reader, e.g. a remedy this version cannot apply.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notes: Vec<String>,
    pub started_at: String,
    pub finished_at: String,
    /// What changed between the snapshots, one line a change, in words.
    pub changes: Vec<Change>,
    /// `rehearse` and `run --rehearse`: the shadow the command ran against.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rehearsal: Option<Rehearsal>,
    /// `run`: the wrapped command exited with a code opsguard's verdicts use
    /// (2, 10-13), so opsguard exited 1 instead (`command_exit` keeps the real code).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub command_exit_folded: bool,
    /// Where findings point, for SARIF; not part of the JSON report.
    #[serde(skip)]
    pub artifact: Option<Artifact>,
}

/// What a rehearsal ran against and whether the live environment stayed put.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rehearsal {
    /// The shadow AWS emulator: `ministack (started by opsguard)` or the
    /// endpoint of one already running.
    pub aws: String,
    pub aws_endpoint: String,
    /// The shadow Elasticsearch: `es-double (in-process)`.
    pub elasticsearch: String,
    pub elasticsearch_url: String,
    /// What was copied into the shadow, counted.
    pub seeded: RehearsalSeeded,
    /// Names of the environment variables set, changed or removed for the
    /// command (never their values).
    pub env_rewritten: Vec<String>,
    pub env_removed: Vec<String>,
    /// Names of shadow secrets whose value was pointed at the shadow ES.
    pub secrets_rewritten: Vec<String>,
    /// The command's exit code in the shadow (`run --rehearse`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub command_exit: Option<i32>,
    /// True when a fresh live snapshot equals the one taken before.
    pub live_unchanged: bool,
    /// What changed in the live environment, when it did.
    pub live_changes: Vec<Change>,
    /// Milliseconds spent in each phase: `live_snapshot`, `shadow_seeding`
    /// (which includes `emulator_start`), `command`, `verdict`.
    pub timings_ms: std::collections::BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RehearsalSeeded {
    pub users: usize,
    pub roles: usize,
    pub api_keys: usize,
    pub secrets: usize,
    pub clusters: usize,
    pub task_definitions: usize,
    pub services: usize,
}

/// The file a report's findings are about (the plan file for `plan`, the
/// config for live findings), and the line of each target in it, where known.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Artifact {
    /// A path, relative to the working directory where it can be.
    pub uri: String,
    /// Target → 1-based line.
    pub lines: std::collections::BTreeMap<String, usize>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Ok,
    Violated,
    Remediated,
    RemediationFailed,
    PreflightFailed,
    /// `rehearse`: the live environment changed while the command ran in the shadow.
    Escaped,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: String,
    /// `block`, `warn` or `info`.
    pub severity: Severity,
    /// The credential, service or secret id the rule fired on.
    pub target: String,
    pub message: String,
    /// `cluster/service` of the services affected.
    pub consumers: Vec<String>,
    /// `rollback`, `redeploy`.
    pub remedies: Vec<Remedy>,
    /// The rule's one-line summary and why it matters.
    pub summary: String,
    pub why: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiver: Option<WaiverNote>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WaiverNote {
    pub reason: String,
    pub expires: String,
}

/// The report's `mode`: for `run` (and `run --rehearse`) the
/// [`Mode`](crate::config::Mode) it ran in; `check` and `diff` name
/// themselves; `plan` says `live` or `offline`; `rehearse` leaves it empty.
/// A closed set (docs/schema/report.v1.json), serialised as those words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportMode {
    Block,
    Rollback,
    Redeploy,
    Warn,
    Check,
    Diff,
    /// `plan`, joined to the live credential graph.
    Live,
    /// `plan --offline`, judged by resource type alone.
    Offline,
    /// `rehearse`.
    #[default]
    #[serde(rename = "")]
    None,
}

impl ReportMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportMode::Block => "block",
            ReportMode::Rollback => "rollback",
            ReportMode::Redeploy => "redeploy",
            ReportMode::Warn => "warn",
            ReportMode::Check => "check",
            ReportMode::Diff => "diff",
            ReportMode::Live => "live",
            ReportMode::Offline => "offline",
            ReportMode::None => "",
        }
    }

    /// The run mode, for a report of `run`.
    pub fn run_mode(self) -> Option<crate::config::Mode> {
        crate::config::Mode::from_word(self.as_str())
    }
}

impl From<crate::config::Mode> for ReportMode {
    fn from(m: crate::config::Mode) -> ReportMode {
        match m {
            crate::config::Mode::Block => ReportMode::Block,
            crate::config::Mode::Rollback => ReportMode::Rollback,
            crate::config::Mode::Redeploy => ReportMode::Redeploy,
            crate::config::Mode::Warn => ReportMode::Warn,
        }
    }
}

impl std::fmt::Display for ReportMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Remediation {
    /// `rollback` or `redeploy`.
    pub mode: ReportMode,
    pub actions: Vec<Action>,
    pub verified: bool,
    /// From the command's exit to the end of the verifying snapshot (`run` only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exit_to_verified_ms: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub kind: String,
    pub target: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One change between the before and after snapshots.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// `api-key`, `cluster`, `credential`, `secret`, `service`, `task` or
    /// `user` (see [`crate::report::changes::between`]; role changes are
    /// `user` changes: a snapshot holds the users' roles, not role definitions).
    pub kind: String,
    pub target: String,
    /// `added`, `removed` or `changed`.
    pub change: String,
    /// In words, e.g. `AWSCURRENT moved v1 → v2 (value changed)`. Never a secret value.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_is_a_closed_set_with_the_contract_words() {
        for (s, word) in [
            (Severity::Block, "block"),
            (Severity::Warn, "warn"),
            (Severity::Info, "info"),
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), word);
            assert_eq!(
                serde_json::from_value::<Severity>(serde_json::json!(word)).unwrap(),
                s
            );
        }
        assert!(serde_json::from_value::<Severity>(serde_json::json!("fatal")).is_err());
        let v = Violation {
            severity: Severity::Warn,
            ..Violation::default()
        };
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["severity"], "warn");
    }
}
