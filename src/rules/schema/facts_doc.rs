//! `docs/facts.md`, the reference of every fact a rule can use, generated
//! from the code so it cannot drift from what rules really see.
//!
//! The facts and their CEL types come from [`Schema`] (which reads them off
//! the fact types' serde form, exactly as rule loading does); each fact's
//! meaning is the doc comment on its field in `src/facts/model.rs`. A fact
//! without a doc comment fails the test: a rule author needs to know what it
//! means.
//!
//! Regenerate with `UPDATE_DOCS=1 cargo test --lib facts_md`.

use super::{FieldType, Schema};
use crate::facts::model::PROBE_STATES;
use crate::rules::Each;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

const MODEL: &str = include_str!("../../facts/model.rs");

fn type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::Bool => "bool",
        FieldType::Int => "int",
        FieldType::Double => "double",
        FieldType::String => "string",
        FieldType::StringList => "list(string)",
        FieldType::List => "list",
        FieldType::Other => "map",
    }
}

fn default_of(t: FieldType) -> &'static str {
    match t {
        FieldType::Bool => "`false`",
        FieldType::Int => "`0`",
        FieldType::Double => "`0.0`",
        FieldType::String => "`\"\"`",
        FieldType::StringList | FieldType::List => "`[]`",
        FieldType::Other => "`{}`",
    }
}

/// The doc comments of one struct in `facts/model.rs`: the struct's own, and
/// each field's by name (lines joined with spaces).
struct Docs {
    about: String,
    fields: BTreeMap<String, String>,
}

fn docs_of(source: &str, struct_name: &str) -> Docs {
    let mut about = String::new();
    let mut fields = BTreeMap::new();
    let mut pending: Vec<&str> = Vec::new();
    let mut inside = false;
    let header = format!("pub struct {struct_name} {{");
    for line in source.lines() {
        let t = line.trim();
        if let Some(doc) = t.strip_prefix("///") {
            pending.push(doc.trim());
        } else if t.starts_with("#[") {
            // Attributes sit between a doc comment and its item.
        } else if !inside && t == header {
            about = pending.join(" ");
            inside = true;
            pending.clear();
        } else if inside && t == "}" {
            break;
        } else if let Some(field) = inside.then(|| t.strip_prefix("pub ")).flatten() {
            if let Some((name, _)) = field.split_once(':') {
                fields.insert(name.trim().to_owned(), pending.join(" "));
            }
            pending.clear();
        } else {
            pending.clear();
        }
    }
    assert!(inside, "no `{header}` in src/facts/model.rs");
    Docs { about, fields }
}

/// The whole of `docs/facts.md`.
pub(crate) fn render() -> String {
    let mut out = String::new();
    out.push_str(
        "<!-- Generated from src/facts/model.rs and src/rules/schema.rs: do not edit.\n     \
         Regenerate: UPDATE_DOCS=1 cargo test --lib facts_md -->\n\n",
    );
    out.push_str("# Facts: what a rule can see\n\n");
    out.push_str(
        "A rule's `when` is a CEL expression over one item: a `credential`, a \
         `service` or a `secret`, chosen by the rule's `each`. These are every \
         fact of each item, with its CEL type. A rule that names a fact not \
         listed here, or compares a fact with a value of another type, fails \
         to load. In a rule's `[test.facts]`, a fact left out takes its \
         default (`false`, `0`, `\"\"`, `[]`).\n\n",
    );
    let _ = writeln!(
        out,
        "Probe facts (`authenticated_before`, `before_value_after`, \
         `current_value_after`) are one of {}. `unknown` means not probed: \
         offline `diff` has no secret values to probe with.\n",
        PROBE_STATES
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out.push_str(
        "In `check`, facts are built from one snapshot with before = after: \
         facts about a change (`value_changed`, `roles_lost`, …) are then \
         empty, and only rules about the present state can fire.\n",
    );
    for (each, struct_name) in [
        (Each::Credentials, "CredentialFact"),
        (Each::Services, "ServiceFact"),
        (Each::Secrets, "SecretFact"),
    ] {
        let schema = Schema::of(each);
        let docs = docs_of(MODEL, struct_name);
        let _ = write!(
            out,
            "\n## `{var}` (`each = \"{each}\"`)\n\n{about}\n\n\
             | fact | type | default | meaning |\n|---|---|---|---|\n",
            var = schema.var,
            each = each.as_str(),
            about = docs.about,
        );
        for (name, t) in &schema.fields {
            let meaning = docs.fields.get(name).map(String::as_str).unwrap_or("");
            assert!(
                !meaning.is_empty(),
                "the fact `{name}` of {struct_name} has no doc comment: add a `///` line \
                 saying what it means to src/facts/model.rs"
            );
            let _ = writeln!(
                out,
                "| `{var}.{name}` | {ty} | {default} | {meaning} |",
                var = schema.var,
                ty = type_name(*t),
                default = default_of(*t),
                meaning = meaning.replace('|', "\\|"),
            );
        }
    }
    out
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/facts.md")
}

#[test]
fn facts_md_is_up_to_date() {
    let want = render();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(path(), &want).expect("write docs/facts.md");
        return;
    }
    let have = std::fs::read_to_string(path()).unwrap_or_default();
    assert!(
        have == want,
        "docs/facts.md is out of date with the fact types.\n\
         Regenerate it with: UPDATE_DOCS=1 cargo test --lib facts_md\n\
         (first differing line: {:?})",
        have.lines()
            .zip(want.lines())
            .find(|(a, b)| a != b)
            .map(|(_, b)| b)
            .or_else(|| want.lines().nth(have.lines().count()))
    );
}

#[test]
fn every_fact_is_in_the_generated_reference() {
    let md = render();
    for each in [Each::Credentials, Each::Services, Each::Secrets] {
        let schema = Schema::of(each);
        assert!(!schema.fields.is_empty());
        for (name, _) in &schema.fields {
            let row = format!("| `{}.{name}` |", schema.var);
            assert!(md.contains(&row), "{row} missing");
        }
    }
    // A doc comment is attached to its own field, not its neighbour.
    let docs = docs_of(MODEL, "CredentialFact");
    assert!(docs.fields["live"].contains("running tasks"));
    assert!(docs.about.contains("credential"));
}
