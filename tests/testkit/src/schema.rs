//! opsguard's JSON output checked against its published JSON Schemas
//! (`docs/schema/report.v1.json`, `docs/schema/snapshot.v1.json`), so the
//! documented contract and the real output cannot drift apart: a field added
//! to the report without being documented, or documented but never written,
//! fails the tests that produce it.

use crate::ministack::workspace_root;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// The documents opsguard publishes a schema for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Schema {
    /// `opsguard.report/v1`: `--report FILE`, `--format json`.
    Report,
    /// `opsguard.snapshot/v1`: `opsguard snapshot`, a run's before/after files.
    Snapshot,
    /// `opsguard.rules/v1`: `rules list --format json`, `rules show ID --format json`.
    Rules,
}

impl Schema {
    fn file(self) -> &'static str {
        match self {
            Schema::Report => "docs/schema/report.v1.json",
            Schema::Snapshot => "docs/schema/snapshot.v1.json",
            Schema::Rules => "docs/schema/rules.v1.json",
        }
    }
}

/// Every way `doc` breaks the schema, one line each (empty when it conforms).
pub fn violations(schema: Schema, doc: &Value) -> Vec<String> {
    static VALIDATORS: OnceLock<Mutex<BTreeMap<Schema, &'static jsonschema::Validator>>> =
        OnceLock::new();
    let validator = {
        let mut cache = VALIDATORS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *cache.entry(schema).or_insert_with(|| {
            let path = workspace_root().join(schema.file());
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let json: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            let v = jsonschema::validator_for(&json)
                .unwrap_or_else(|e| panic!("{} is not a valid JSON Schema: {e}", path.display()));
            Box::leak(Box::new(v))
        })
    };
    validator
        .iter_errors(doc)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect()
}

/// Panics, naming every violation and the schema file, unless `doc` conforms.
#[track_caller]
pub fn assert_conforms(schema: Schema, doc: &Value) {
    let errors = violations(schema, doc);
    assert!(
        errors.is_empty(),
        "the output does not match {} (update the schema and docs/report.md \
         if the format changed on purpose):\n  {}",
        schema.file(),
        errors.join("\n  ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schemas_load_and_reject_what_they_should() {
        let minimal = json!({
            "schema": "opsguard.report/v1", "run_id": "20261124T101500Z-3f2a",
            "subcommand": "check", "command": [], "command_exit": null, "mode": "check",
            "outcome": "ok", "violations": [], "waived": [], "remediation": null,
            "exit_code": 0, "skip_preflight": false,
            "started_at": "2026-11-24T10:15:00Z", "finished_at": "2026-11-24T10:15:01.5Z",
            "changes": []
        });
        assert_eq!(violations(Schema::Report, &minimal), Vec::<String>::new());

        let mut renamed = minimal.clone();
        renamed["outcome"] = json!("fine");
        assert_eq!(violations(Schema::Report, &renamed).len(), 1);
        let mut undocumented = minimal.clone();
        undocumented["surprise"] = json!(1);
        assert!(!violations(Schema::Report, &undocumented).is_empty());
        let mut missing = minimal;
        missing.as_object_mut().unwrap().remove("exit_code");
        assert!(!violations(Schema::Report, &missing).is_empty());

        assert!(
            !violations(Schema::Snapshot, &json!({"schema": "opsguard.snapshot/v1"})).is_empty()
        );
    }
}
