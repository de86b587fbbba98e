//! Reading rule files: TOML → checked, compiled [`Rule`].
//!
//! Everything that can be known about a rule without real facts is checked
//! here, so that evaluation can only fail on facts, never on the rule: the
//! file's shape (serde, `deny_unknown_fields`), the CEL syntax, the names
//! and types it uses ([`super::check`]), the message placeholders, the test
//! facts, and one evaluation against the default (all-empty) item of its
//! kind.

use super::check;
use super::error::{InvalidKind, RuleError};
use super::schema::{FactItem, Schema};
use super::template::Template;
use super::{Compiled, Each, Expect, Remedy, Rule, RuleTest, Severity, TestFacts};
use crate::facts::change::ChangeFact;
use crate::facts::model::{CredentialFact, SecretFact, ServiceFact};
use include_dir::{include_dir, Dir};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// The built-in pack, embedded at build time.
pub(crate) static BUILTIN: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/rules");

/// The shared CEL environment: the standard library.
pub(crate) fn env() -> Arc<cel::Env> {
    static ENV: OnceLock<Arc<cel::Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(cel::Env::stdlib())).clone()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    summary: Spanned<String>,
    severity: Severity,
    each: Each,
    when: Spanned<String>,
    message: Spanned<String>,
    why: Spanned<String>,
    remedies: Spanned<Vec<Remedy>>,
    #[serde(default, rename = "test")]
    tests: Vec<Spanned<RawTest>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    name: Spanned<String>,
    expect: Expect,
    /// Read again, with its spans, by [`test_facts`]; here only its shape.
    #[serde(default)]
    #[allow(dead_code)]
    facts: Option<toml::Table>,
}

/// Where a rule file comes from.
pub(crate) struct Origin {
    /// `Rule::source`: `built-in:rules/x.toml`, or the path.
    pub source: String,
    /// What errors name: `rules/x.toml`, or the path.
    pub path: String,
}

/// Parse, check and compile one rule file.
pub(crate) fn parse_rule(origin: Origin, text: &str) -> Result<Rule, RuleError> {
    let path = origin.path.as_str();
    let at = |kind, span: std::ops::Range<usize>, message: String, help: Option<String>| {
        RuleError::invalid(kind, path, text, span, message, help)
    };
    let raw: RawRule = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().to_owned();
        let (kind, help) = classify(&message);
        at(kind, e.span().unwrap_or(0..0), message, help)
    })?;

    let id = raw.id.get_ref();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || id.starts_with('-')
    {
        return Err(at(
            InvalidKind::BadValue,
            raw.id.span(),
            format!("rule id {id:?} is not a lowercase-kebab-case name"),
            Some(
                "ids are used in waivers and reports: use lowercase letters, digits and `-`".into(),
            ),
        ));
    }
    for (name, field) in [
        ("summary", &raw.summary),
        ("why", &raw.why),
        ("message", &raw.message),
    ] {
        if field.get_ref().trim().is_empty() {
            return Err(at(
                InvalidKind::BadValue,
                field.span(),
                format!("`{name}` is empty"),
                None,
            ));
        }
    }
    let mut remedies: Vec<Remedy> = Vec::new();
    for r in raw.remedies.get_ref() {
        if remedies.contains(r) {
            return Err(at(
                InvalidKind::BadValue,
                raw.remedies.span(),
                format!("remedy `{r}` is listed twice"),
                None,
            ));
        }
        remedies.push(*r);
    }

    let schema = Schema::of(raw.each);
    let when = raw.when.get_ref();
    let when_start = string_content_start(text, raw.when.span());
    let program = load_when(path, text, when, when_start, schema)?;

    let message_start = string_content_start(text, raw.message.span());
    let template = Template::parse(raw.message.get_ref(), schema).map_err(|e| {
        let start = message_start + e.offset;
        at(
            InvalidKind::Template,
            start..start + e.len,
            e.message,
            e.help,
        )
    })?;

    let (line, col) = super::error::line_col(text, when_start);
    let compiled = Arc::new(Compiled {
        program,
        template,
        when_location: format!("{path}:{line}:{col}"),
    });

    let mut tests: Vec<RuleTest> = Vec::new();
    let doc = DeTable::parse(text).map_err(|e| {
        at(
            InvalidKind::Toml,
            e.span().unwrap_or(0..0),
            e.message().trim().to_owned(),
            None,
        )
    })?;
    for (i, t) in raw.tests.iter().enumerate() {
        let span = t.span();
        let t = t.get_ref();
        if tests.iter().any(|other| other.name == *t.name.get_ref()) {
            return Err(at(
                InvalidKind::BadValue,
                t.name.span(),
                format!("two tests are named {:?}", t.name.get_ref()),
                Some("give every [[test]] of a rule its own name".into()),
            ));
        }
        let facts = test_facts(raw.each, doc.get_ref(), i).map_err(|e| {
            at(
                InvalidKind::TestFacts,
                e.span().unwrap_or(span.clone()),
                format!(
                    "[test.facts] of test {:?}: {}",
                    t.name.get_ref(),
                    e.message().trim()
                ),
                Some(format!(
                    "a test's facts describe one {}; its facts are: {}",
                    schema.var,
                    schema.field_list()
                )),
            )
        })?;
        let (line, col) = super::error::line_col(text, span.start);
        tests.push(RuleTest {
            name: t.name.get_ref().clone(),
            expect: t.expect,
            facts,
            location: format!("{path}:{line}:{col}"),
        });
    }

    let rule = Rule {
        id: id.clone(),
        summary: raw.summary.get_ref().trim().to_owned(),
        severity: raw.severity,
        each: raw.each,
        when: when.clone(),
        message: raw.message.get_ref().clone(),
        why: raw.why.get_ref().trim().to_owned(),
        remedies,
        tests,
        source: origin.source,
        overrides: None,
        compiled,
    };

    // The default item is what every fact looks like when nothing is there:
    // a condition that cannot even be evaluated on it is broken, and would
    // otherwise be found out on the day it matters.
    let default = match rule.each {
        Each::Credentials => rule.test_eval(&CredentialFact::default()),
        Each::Services => rule.test_eval(&ServiceFact::default()),
        Each::Secrets => rule.test_eval(&SecretFact::default()),
        Each::Changes => rule.test_eval(&ChangeFact::default()),
    };
    if let Err(message) = default {
        let span = when_start..when_start + when.trim_end().len();
        return Err(at(
            InvalidKind::Evaluation,
            span,
            format!(
                "`when` cannot be evaluated on a {} whose facts are all empty: {message}",
                schema.var
            ),
            Some("every fact has a default (false, 0, \"\", []): the condition must evaluate to true or false for any item".into()),
        ));
    }
    Ok(rule)
}

fn load_when(
    path: &str,
    text: &str,
    when: &str,
    when_start: usize,
    schema: &'static Schema,
) -> Result<cel::Program, RuleError> {
    if when.trim().is_empty() {
        return Err(RuleError::invalid(
            InvalidKind::BadValue,
            path,
            text,
            when_start..when_start,
            "`when` is empty",
            None,
        ));
    }
    let program = env().compile(when).map_err(|errors| {
        let first = errors.errors.first();
        let (line, col) = first.map(|e| e.pos).unwrap_or((1, 1));
        // "Unexpected end of input" is reported past the last line: point
        // at the end of the expression instead.
        let within = offset_of_line_col(when, line, col).min(when.trim_end().len());
        let offset = when_start + within;
        let mut message = first
            .map(|e| e.msg.clone())
            .unwrap_or_else(|| errors.to_string());
        if errors.errors.len() > 1 {
            message.push_str(&format!(" (and {} more)", errors.errors.len() - 1));
        }
        RuleError::invalid(
            InvalidKind::CelSyntax,
            path,
            text,
            offset..offset + 1,
            format!("CEL syntax error in `when` (at {line}:{col} of the expression): {message}"),
            None,
        )
    })?;
    check::check(program.expression(), program.source_info(), when, schema).map_err(|e| {
        let start = when_start + e.offset;
        RuleError::invalid(e.kind, path, text, start..start + e.len, e.message, e.help)
    })?;
    Ok(program)
}

/// The kind of a serde/TOML error, from its message, and a hint.
fn classify(message: &str) -> (InvalidKind, Option<String>) {
    if message.starts_with("unknown field") {
        (
            InvalidKind::UnknownField,
            Some("a rule has: id, summary, severity, each, when, message, why, remedies, and [[test]] tables (name, expect, [test.facts])".into()),
        )
    } else if message.starts_with("missing field") {
        (
            InvalidKind::MissingField,
            Some("a rule needs: id, summary, severity, each, when, message, why, remedies".into()),
        )
    } else if message.starts_with("unknown variant") || message.starts_with("invalid type") {
        (InvalidKind::BadValue, None)
    } else {
        (InvalidKind::Toml, None)
    }
}

/// The facts of the `index`th `[[test]]`, read with their spans so an
/// unknown fact points at itself.
fn test_facts(each: Each, doc: &DeTable<'_>, index: usize) -> Result<TestFacts, toml::de::Error> {
    let facts: Option<&Spanned<DeValue<'_>>> = doc
        .iter()
        .find(|(k, _)| k.get_ref() == "test")
        .and_then(|(_, v)| v.get_ref().as_array())
        .and_then(|tests| tests.get(index))
        .and_then(|t| t.get_ref().as_table())
        .and_then(|t| t.iter().find(|(k, _)| k.get_ref() == "facts"))
        .map(|(_, v)| v);
    fn read<T: for<'de> Deserialize<'de> + Default>(
        v: Option<&Spanned<DeValue<'_>>>,
    ) -> Result<T, toml::de::Error> {
        match v {
            Some(v) => T::deserialize(ValueDeserializer::from(v.clone())),
            None => Ok(T::default()),
        }
    }
    Ok(match each {
        Each::Credentials => TestFacts::Credential(Box::new(read(facts)?)),
        Each::Services => TestFacts::Service(Box::new(read(facts)?)),
        Each::Secrets => TestFacts::Secret(Box::new(read(facts)?)),
        Each::Changes => TestFacts::Change(Box::new(read(facts)?)),
    })
}

/// Where the characters of a TOML string value start, given the value's span
/// (which includes its quotes). Exact for literal strings (`'…'`, `'''…'''`),
/// the recommended form for `when`; for basic strings, positions after an
/// escape sequence are approximate.
fn string_content_start(text: &str, span: std::ops::Range<usize>) -> usize {
    let raw = &text[span.start.min(text.len())..];
    if raw.starts_with("'''") || raw.starts_with("\"\"\"") {
        let after = &raw[3..];
        // A newline right after the opening delimiter is not part of the string.
        let skip = if after.starts_with("\r\n") {
            2
        } else if after.starts_with('\n') {
            1
        } else {
            0
        };
        span.start + 3 + skip
    } else if raw.starts_with('\'') || raw.starts_with('"') {
        span.start + 1
    } else {
        span.start
    }
}

/// Byte offset in `s` of a 1-based line and (character) column.
fn offset_of_line_col(s: &str, line: isize, col: isize) -> usize {
    let mut offset = 0;
    for (i, l) in s.split_inclusive('\n').enumerate() {
        if i as isize + 1 == line {
            let col = (col.max(1) - 1) as usize;
            let within = l.char_indices().nth(col).map(|(b, _)| b).unwrap_or(l.len());
            return offset + within;
        }
        offset += l.len();
    }
    s.len()
}

/// The built-in pack, in file-name order.
pub(crate) fn builtin_rules() -> Result<Vec<Rule>, RuleError> {
    let mut files: Vec<&include_dir::File<'_>> = BUILTIN
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort_by_key(|f| f.path());
    let mut rules = Vec::new();
    for f in files {
        let path = format!("rules/{}", f.path().display());
        let text = f.contents_utf8().ok_or_else(|| RuleError::Read {
            path: PathBuf::from(&path),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"),
        })?;
        let rule = parse_rule(
            Origin {
                source: format!("built-in:{path}"),
                path: path.clone(),
            },
            text,
        )?;
        rules.push((rule, text.to_owned()));
    }
    Ok(no_duplicates(rules)?.into_iter().map(|(r, _)| r).collect())
}

/// Every `*.toml` file directly in `dir`, in file-name order, each with
/// its text (for errors about it raised later).
pub(crate) fn dir_rules(dir: &Path) -> Result<Vec<(Rule, String)>, RuleError> {
    let read_err = |source| RuleError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut rules = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|source| RuleError::Read {
            path: path.clone(),
            source,
        })?;
        let shown = path.display().to_string();
        let rule = parse_rule(
            Origin {
                source: shown.clone(),
                path: shown,
            },
            &text,
        )?;
        rules.push((rule, text));
    }
    no_duplicates(rules)
}

/// Two files of one directory defining the same id is an error: which one
/// would be meant is a guess.
fn no_duplicates(rules: Vec<(Rule, String)>) -> Result<Vec<(Rule, String)>, RuleError> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (rule, text) in &rules {
        if let Some(first) = seen.get(&rule.id) {
            return Err(duplicate(rule, text, first, "in the same directory"));
        }
        seen.insert(rule.id.clone(), rule.source.clone());
    }
    Ok(rules)
}

pub(crate) fn duplicate(rule: &Rule, text: &str, first: &str, why: &str) -> RuleError {
    let path = rule
        .source
        .strip_prefix("built-in:")
        .unwrap_or(&rule.source)
        .to_owned();
    let span = id_span(text);
    RuleError::invalid(
        InvalidKind::DuplicateId,
        &path,
        text,
        span,
        format!(
            "duplicate rule id `{}`: also defined in {first} ({why})",
            rule.id
        ),
        Some(
            "a user rule may override a built-in one by id; other rules need ids of their own"
                .into(),
        ),
    )
}

/// Where `id = …` is in a rule file (for errors raised after parsing).
fn id_span(text: &str) -> std::ops::Range<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with('[') {
            break; // past the top-level keys
        }
        if t.strip_prefix("id")
            .is_some_and(|r| r.trim_start().starts_with('='))
        {
            let start = offset + (line.len() - t.len());
            return start..start + t.trim_end().len();
        }
        offset += line.len();
    }
    0..0
}

impl Rule {
    /// Evaluate on one item, outside a [`super::RuleSet`]: for tests and the
    /// load-time check. `Err` holds a message.
    pub(crate) fn test_eval<F: FactItem>(&self, item: &F) -> Result<bool, String> {
        let value = super::value::FactVal::new(item)?;
        let mut ctx = cel::Context::with_env(env());
        ctx.add_variable_as_val(F::EACH.var(), Box::new(value));
        self.eval(&ctx)
    }
}
