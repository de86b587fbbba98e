//! Rule errors. A rule that cannot be trusted to mean what its author meant
//! is an error at load time, pointing at `file:line:col` with a labelled
//! snippet (like config errors); a condition that fails while facts are
//! evaluated is an error too, never a quiet "did not fire".

use miette::{Diagnostic, NamedSource, SourceSpan};
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum RuleError {
    #[error("cannot read rules from {}: {source}", path.display())]
    #[diagnostic(
        code(opsguard::rules::read),
        help("[rules] paths in opsguard.toml (and `opsguard rules test DIR`) name directories of *.toml rule files")
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A rule file that does not load: bad TOML, a bad field, a CEL error, an
    /// unknown fact, a type error, a duplicate id.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<InvalidRule>),

    /// A waiver in the config names a rule that is not in force.
    #[error("{location}: waiver names rule `{rule}`, which is not a rule in force")]
    #[diagnostic(code(opsguard::rules::unknown_waiver_rule), help("{help}"))]
    UnknownWaiverRule {
        /// `file:line:col` of the waiver in the config.
        location: String,
        rule: String,
        help: String,
    },

    /// A condition failed on real facts. The rule cannot say whether it
    /// fires, so nobody may act as if it did not.
    #[error("{location}: rule `{rule}` cannot be evaluated on {each} `{target}`: {message}")]
    #[diagnostic(
        code(opsguard::rules::evaluation),
        help("fix the rule's `when`; `opsguard rules test` runs its test cases")
    )]
    Evaluation {
        /// `file:line:col` of the rule's `when`.
        location: String,
        rule: String,
        /// `credential`, `service` or `secret`.
        each: &'static str,
        target: String,
        message: String,
    },
}

impl RuleError {
    /// The kind of load error, if this is one (for tests and callers that
    /// branch on it).
    pub fn invalid_kind(&self) -> Option<InvalidKind> {
        match self {
            RuleError::Invalid(e) => Some(e.kind),
            _ => None,
        }
    }
}

/// What is wrong with a rule file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidKind {
    /// Not valid TOML.
    Toml,
    /// A key the rule format does not have.
    UnknownField,
    /// A required key is absent.
    MissingField,
    /// A key holds a value it cannot take (severity, each, remedy, expect, id, …).
    BadValue,
    /// `when` is not valid CEL.
    CelSyntax,
    /// `when` or `message` names a fact (or a variable) that does not exist.
    UnknownFact,
    /// `when` uses a fact as a type it is not (or is not a bool condition).
    Type,
    /// `when` fails when evaluated on the default fact.
    Evaluation,
    /// `message` is not a valid template.
    Template,
    /// A `[test.facts]` table does not describe a fact of the rule's kind.
    TestFacts,
    /// Two rules with the same id where only one may be.
    DuplicateId,
}

/// A rule file that does not load, with where and why.
#[derive(Debug, Error, Diagnostic)]
#[error("{location}: {message}")]
#[diagnostic(code(opsguard::rules::invalid))]
pub struct InvalidRule {
    pub kind: InvalidKind,
    /// `file:line:col`.
    pub location: String,
    pub message: String,
    #[source_code]
    src: NamedSource<String>,
    #[label("{label}")]
    span: SourceSpan,
    label: String,
    #[help]
    pub help: Option<String>,
}

impl RuleError {
    /// A load error at byte `span` of `text`, the contents of the file shown as `path`.
    pub(crate) fn invalid(
        kind: InvalidKind,
        path: &str,
        text: &str,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> RuleError {
        let message = message.into();
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let end = floor_char_boundary(text, span.end.clamp(start, text.len()));
        let (line, col) = line_col(text, start);
        let label = first_line(&message).to_owned();
        RuleError::Invalid(Box::new(InvalidRule {
            kind,
            location: format!("{path}:{line}:{col}"),
            message,
            src: NamedSource::new(path, text.to_owned()),
            span: (start, end - start).into(),
            label,
            help,
        }))
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}
