//! Keeping sensitive plan values out of every output.
//!
//! `terraform show -json` prints sensitive values in clear and only marks
//! them (`before_sensitive`/`after_sensitive`). opsguard copies no attribute
//! value into a fact except identities and a provisioner's command, but a
//! command can embed a password, and "never" deserves a second line of
//! defence: every string marked sensitive, and every value of an attribute
//! that holds a secret by its provider's schema, is collected here and
//! replaced wherever it would appear — in facts, and in each rendered output
//! before it is written.

use super::parse::Plan;
use crate::facts::change::ChangeFact;
use serde_json::Value;

/// Attributes that hold a secret whatever the plan marks.
const SECRET_ATTRIBUTES: [&str; 8] = [
    "password",
    "password_hash",
    "password_wo",
    "secret_string",
    "secret_string_wo",
    "secret_binary",
    "api_key",
    "encoded",
];

/// Shorter strings are not replaced: they would mangle ordinary words, and
/// no credential is that short.
const MIN_LEN: usize = 4;

pub const MASK: &str = "(sensitive)";

#[derive(Debug, Default)]
pub struct Redactor {
    /// Longest first, so a value containing another is replaced whole.
    values: Vec<String>,
}

impl Redactor {
    pub fn from_plan(plan: &Plan) -> Redactor {
        let mut values = Vec::new();
        for c in &plan.changes {
            collect(&c.before, &c.before_sensitive, false, &mut values);
            collect(&c.after, &c.after_sensitive, false, &mut values);
        }
        values.retain(|v: &String| v.chars().count() >= MIN_LEN);
        values.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        values.dedup();
        Redactor { values }
    }

    /// How many distinct sensitive values the plan holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn text(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        out
    }

    /// Every string of a fact, redacted.
    pub fn fact(&self, f: &mut ChangeFact) {
        if self.values.is_empty() {
            return;
        }
        let mut v = serde_json::to_value(&*f).expect("a fact serialises");
        self.value(&mut v);
        *f = serde_json::from_value(v).expect("a redacted fact reads back");
    }

    fn value(&self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.text(s),
            Value::Array(items) => items.iter_mut().for_each(|i| self.value(i)),
            Value::Object(m) => m.values_mut().for_each(|i| self.value(i)),
            _ => {}
        }
    }
}

/// Strings under `value` that `mask` marks sensitive (or that sit under a
/// secret attribute); a JSON document in a secret string gives its values too.
fn collect(value: &Value, mask: &Value, sensitive: bool, out: &mut Vec<String>) {
    let sensitive = sensitive || mask == &Value::Bool(true);
    match value {
        Value::String(s) if sensitive => {
            out.push(s.clone());
            if let Ok(inner @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str(s) {
                collect(&inner, &Value::Bool(true), true, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let m = mask.get(i).unwrap_or(&Value::Null);
                collect(item, m, sensitive, out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let m = mask.get(k).unwrap_or(&Value::Null);
                let by_name = SECRET_ATTRIBUTES.contains(&k.as_str());
                collect(item, m, sensitive || by_name, out);
            }
        }
        Value::Number(n) if sensitive => out.push(n.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_and_secret_attributes_are_replaced() {
        let plan = super::super::parse::parse(
            r#"{"format_version": "1.2", "resource_changes": [{
              "address": "x.y", "type": "x", "name": "y",
              "change": {"actions": ["update"],
                "before": {"note": "marked-value-1", "password": "pw-in-clear-22", "name": "svc"},
                "after": {"note": "marked-value-2", "secret_string": "{\"password\": \"inner-secret-3\"}"},
                "before_sensitive": {"note": true}, "after_sensitive": {"note": true}}}]}"#,
            "p.json",
        )
        .unwrap();
        let r = Redactor::from_plan(&plan);
        let out = r.text("a marked-value-1 b pw-in-clear-22 c marked-value-2 d inner-secret-3 svc");
        assert_eq!(
            out,
            "a (sensitive) b (sensitive) c (sensitive) d (sensitive) svc"
        );
    }
}
