//! What a rule can see. For each `each`, the name its item is bound to in
//! CEL and the facts (fields) that item has, with their types.
//!
//! The field list is read off the fact types themselves (their serde form),
//! not written out a second time here: when a fact is added to
//! `facts::model`, rules can use it at once, and a rule naming a fact that was
//! removed stops loading instead of silently never firing.

use super::Each;
use crate::facts::change::ChangeFact;
use crate::facts::model::{CredentialFact, SecretFact, ServiceFact};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::OnceLock;

/// The type of one fact, as CEL sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldType {
    Bool,
    Int,
    Double,
    String,
    /// A list of strings.
    StringList,
    /// A list of something else.
    List,
    /// Anything else (a nested object); not checked further.
    Other,
}

/// The facts of one kind of item.
#[derive(Debug)]
pub(crate) struct Schema {
    pub each: Each,
    /// The CEL name of the item: `credential`, `service`, `secret`.
    pub var: &'static str,
    /// In declaration order.
    pub fields: Vec<(String, FieldType)>,
}

impl Schema {
    pub(crate) fn of(each: Each) -> &'static Schema {
        static SCHEMAS: OnceLock<[Schema; 4]> = OnceLock::new();
        let all = SCHEMAS.get_or_init(|| {
            [
                build::<CredentialFact>(Each::Credentials),
                build::<ServiceFact>(Each::Services),
                build::<SecretFact>(Each::Secrets),
                build::<ChangeFact>(Each::Changes),
            ]
        });
        match each {
            Each::Credentials => &all[0],
            Each::Services => &all[1],
            Each::Secrets => &all[2],
            Each::Changes => &all[3],
        }
    }

    pub(crate) fn field(&self, name: &str) -> Option<FieldType> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, t)| *t)
    }

    /// `id, kind, principal, …`
    pub(crate) fn field_list(&self) -> String {
        let names: Vec<&str> = self.fields.iter().map(|(n, _)| n.as_str()).collect();
        names.join(", ")
    }

    /// The known fact closest to a misspelt one, if any is close.
    pub(crate) fn suggest(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .map(|(n, _)| (n.as_str(), edit_distance(n, name)))
            .filter(|(n, d)| *d <= 2.max(name.len() / 4) && *d < n.len())
            .min_by_key(|(_, d)| *d)
            .map(|(n, _)| n)
    }
}

/// One item that rules iterate over.
pub(crate) trait FactItem: Serialize {
    const EACH: Each;
    fn id(&self) -> &str;
    /// Who is affected when a rule fires on this item.
    fn consumers(&self) -> Vec<String>;
}

impl FactItem for CredentialFact {
    const EACH: Each = Each::Credentials;
    fn id(&self) -> &str {
        &self.id
    }
    fn consumers(&self) -> Vec<String> {
        self.consumers.clone()
    }
}

impl FactItem for ServiceFact {
    const EACH: Each = Each::Services;
    fn id(&self) -> &str {
        &self.id
    }
    fn consumers(&self) -> Vec<String> {
        vec![self.id.clone()]
    }
}

impl FactItem for SecretFact {
    const EACH: Each = Each::Secrets;
    fn id(&self) -> &str {
        &self.id
    }
    fn consumers(&self) -> Vec<String> {
        self.consumers.clone()
    }
}

impl FactItem for ChangeFact {
    const EACH: Each = Each::Changes;
    fn id(&self) -> &str {
        &self.id
    }
    /// The consumers a plan change would break: the live ones.
    fn consumers(&self) -> Vec<String> {
        self.live_consumers.clone()
    }
}

fn build<T: Serialize + DeserializeOwned + Default>(each: Each) -> Schema {
    let serde_json::Value::Object(default) =
        serde_json::to_value(T::default()).expect("a default fact serialises")
    else {
        panic!("a fact serialises as an object");
    };
    let fields = default
        .iter()
        .map(|(name, value)| {
            let t = match value {
                serde_json::Value::Bool(_) => FieldType::Bool,
                serde_json::Value::Number(n) if n.is_f64() => FieldType::Double,
                serde_json::Value::Number(_) => FieldType::Int,
                serde_json::Value::String(_) => FieldType::String,
                serde_json::Value::Array(_) => {
                    // An empty list does not say what it holds: see whether a
                    // list of one string reads back.
                    let mut probe = default.clone();
                    probe.insert(name.clone(), serde_json::json!(["x"]));
                    if serde_json::from_value::<T>(serde_json::Value::Object(probe)).is_ok() {
                        FieldType::StringList
                    } else {
                        FieldType::List
                    }
                }
                _ => FieldType::Other,
            };
            (name.clone(), t)
        })
        .collect();
    Schema {
        each,
        var: each.var(),
        fields,
    }
}

/// Levenshtein distance, for "did you mean".
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod facts_doc;
