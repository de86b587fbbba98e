//! Configuration errors: each one knows where in the file it is, renders as a
//! labelled snippet through miette, and still reads well as one plain line
//! (`opsguard.toml:12:1: …`) where no fancy rendering is wanted.

use miette::{Diagnostic, NamedSource, SourceSpan};
use std::path::PathBuf;
use thiserror::Error;

/// A configuration error. Boxed: the rendered source snippet makes the
/// variants large, and errors travel up through every `Result`.
#[derive(Debug, Error, Diagnostic)]
#[error(transparent)]
#[diagnostic(transparent)]
pub struct ConfigError(Box<ConfigErrorKind>);

impl ConfigError {
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.0
    }
}

impl From<ConfigErrorKind> for ConfigError {
    fn from(k: ConfigErrorKind) -> Self {
        ConfigError(Box::new(k))
    }
}

#[derive(Debug, Error, Diagnostic)]
pub enum ConfigErrorKind {
    #[error("cannot read config file {}", path.display())]
    #[diagnostic(
        code(opsguard::config::read),
        help("pass --config PATH or set OPSGUARD_CONFIG; the default is ./opsguard.toml")
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{location}: {message}")]
    #[diagnostic(code(opsguard::config::invalid))]
    Invalid {
        location: String,
        message: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("{message}")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
}

impl ConfigError {
    pub(super) fn at(
        path: &std::path::Path,
        text: &str,
        span: std::ops::Range<usize>,
        message: String,
        help: Option<String>,
    ) -> ConfigError {
        let (line, col) = line_col(text, span.start);
        ConfigErrorKind::Invalid {
            location: format!("{}:{line}:{col}", path.display()),
            message,
            src: NamedSource::new(path.display().to_string(), text.to_owned()),
            span: (span.start, span.end.saturating_sub(span.start)).into(),
            help,
        }
        .into()
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}
