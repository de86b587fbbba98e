//! SARIF 2.1.0, for GitHub code scanning (`github/codeql-action/upload-sarif`)
//! and any other SARIF consumer.
//!
//! One `run`, one `rules` entry per rule that produced a finding (id, short
//! description, help), one result per finding — waived ones carry a
//! `suppressions` entry instead of being dropped — with `level` error (block),
//! warning (warn) or note (info). GitHub rejects a whole upload when one
//! result lacks a physical location, so every result gets one: the report's
//! [`Artifact`] (the plan file for `plan`, the config file for live
//! findings), at the line of its target where known, else line 1.

use super::model::{Artifact, Report, Violation};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub fn render(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(&document(report)).expect("SARIF serialises");
    text.push('\n');
    text
}

pub fn document(report: &Report) -> Value {
    let fallback = Artifact {
        uri: "opsguard.toml".into(),
        ..Artifact::default()
    };
    let artifact = report.artifact.as_ref().unwrap_or(&fallback);
    let uri = uri_reference(&artifact.uri);

    let mut rule_ids: Vec<&str> = Vec::new();
    let mut rules: Vec<Value> = Vec::new();
    let all = report
        .violations
        .iter()
        .map(|v| (v, false))
        .chain(report.waived.iter().map(|v| (v, true)));
    let mut results = Vec::new();
    for (v, waived) in all {
        let index = match rule_ids.iter().position(|r| *r == v.rule) {
            Some(i) => i,
            None => {
                rule_ids.push(&v.rule);
                rules.push(rule(v));
                rule_ids.len() - 1
            }
        };
        results.push(result(v, index, waived, &uri, artifact));
    }

    let mut invocation = json!({
        "executionSuccessful": report.preflight_error.is_none() && report.error.is_none(),
        "exitCode": report.exit_code,
    });
    let problems: Vec<Value> = report
        .preflight_error
        .iter()
        .chain(report.error.iter())
        .map(|m| json!({"level": "error", "message": {"text": m}}))
        .collect();
    if !problems.is_empty() {
        invocation["toolExecutionNotifications"] = Value::Array(problems);
    }
    if !report.notes.is_empty() {
        invocation["properties"] = json!({"notes": report.notes});
    }

    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "opsguard",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "automationDetails": {"id": format!("opsguard/{}/", report.subcommand)},
            "invocations": [invocation],
            "results": results,
            "properties": {
                "run_id": report.run_id,
                "outcome": report.outcome,
                "exit_code": report.exit_code,
            },
        }],
    })
}

fn level(severity: &str) -> &'static str {
    match severity {
        "block" => "error",
        "warn" => "warning",
        _ => "note",
    }
}

fn rule(v: &Violation) -> Value {
    let summary = if v.summary.is_empty() {
        &v.rule
    } else {
        &v.summary
    };
    let why = if v.why.is_empty() { summary } else { &v.why };
    json!({
        "id": v.rule,
        "name": v.rule,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": why},
        "help": {
            "text": why,
            "markdown": format!("**{}**\n\n{}", summary, why),
        },
        "defaultConfiguration": {"level": level(v.severity.as_str())},
        "properties": {"tags": ["opsguard", v.severity.as_str()]},
    })
}

fn result(v: &Violation, index: usize, waived: bool, uri: &str, artifact: &Artifact) -> Value {
    let line = artifact.lines.get(&v.target).copied().unwrap_or(1).max(1);
    let mut message = v.message.clone();
    if message.trim().is_empty() {
        message = format!("{}: {}", v.rule, v.target);
    }
    if !v.consumers.is_empty() {
        message.push_str(&format!(" [consumers: {}]", v.consumers.join(", ")));
    }
    let fingerprint = hex::encode(&Sha256::digest(format!("{}\n{}", v.rule, v.target))[..16]);
    let mut r = json!({
        "ruleId": v.rule,
        "ruleIndex": index,
        "level": level(v.severity.as_str()),
        "message": {"text": message},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": {"uri": uri},
                "region": {"startLine": line},
            },
            "logicalLocations": [{"name": v.target, "kind": "resource"}],
        }],
        "partialFingerprints": {"opsguardFinding/v1": fingerprint},
        "properties": {
            "target": v.target,
            "severity": v.severity,
            "consumers": v.consumers,
            "remedies": v.remedies,
        },
    });
    if let (true, Some(w)) = (waived, &v.waiver) {
        r["suppressions"] = json!([{
            "kind": "external",
            "status": "accepted",
            "justification": format!("{} (waiver expires {})", w.reason, w.expires),
        }]);
    }
    r
}

/// A path as a relative URI reference: `/` separators, and every byte
/// outside RFC 3986's unreserved set and `/` percent-encoded.
pub fn uri_reference(path: &str) -> String {
    let path = path.replace('\\', "/");
    let path = path.strip_prefix("./").unwrap_or(&path);
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::WaiverNote;

    fn v(rule: &str, severity: &str, target: &str) -> Violation {
        Violation {
            rule: rule.into(),
            severity: serde_json::from_value(json!(severity)).unwrap(),
            target: target.into(),
            message: format!("{target} broke"),
            summary: format!("{rule} summary"),
            why: format!("{rule} why"),
            ..Violation::default()
        }
    }

    #[test]
    fn one_rule_per_id_one_result_per_finding_each_located() {
        let mut report = Report {
            subcommand: "plan".into(),
            violations: vec![
                v("plan-credential-replaced", "block", "a.b"),
                v("plan-credential-replaced", "block", "a.c"),
                v("plan-runs-provisioner", "warn", "null_resource.x"),
            ],
            waived: vec![Violation {
                waiver: Some(WaiverNote {
                    reason: "ticket 1".into(),
                    expires: "2027-01-01".into(),
                }),
                ..v("plan-desired-count-changed", "info", "svc")
            }],
            ..Report::default()
        };
        report.artifact = Some(Artifact {
            uri: "infra/my plan.json".into(),
            lines: [("a.c".to_owned(), 40)].into_iter().collect(),
        });
        let doc = document(&report);
        let run = &doc["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "plan-credential-replaced",
                "plan-runs-provisioner",
                "plan-desired-count-changed"
            ]
        );
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 4);
        let levels: Vec<&str> = results
            .iter()
            .map(|r| r["level"].as_str().unwrap())
            .collect();
        assert_eq!(levels, ["error", "error", "warning", "note"]);
        for r in results {
            let loc = &r["locations"][0]["physicalLocation"];
            assert_eq!(loc["artifactLocation"]["uri"], "infra/my%20plan.json");
            assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
            let i = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[i]["id"], r["ruleId"]);
        }
        assert_eq!(
            results[1]["locations"][0]["physicalLocation"]["region"]["startLine"],
            40
        );
        assert_eq!(results[3]["suppressions"][0]["kind"], "external");
        assert!(results[0].get("suppressions").is_none());
    }
}
