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
            message: crate::report::escape::line(&redact_userinfo(&message), 1024),
            src: NamedSource::new(path.display().to_string(), redact(text)),
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

/// Keys whose value is a secret when someone writes one into the file by
/// mistake (`password = "…"` under `[elasticsearch]`).
fn secret_bearing(key: &str) -> bool {
    let k = key.trim().trim_matches(['"', '\'']).to_ascii_lowercase();
    let k = k.rsplit('.').next().unwrap_or(&k).trim();
    if k.ends_with("_env")
        || k.ends_with("_name")
        || (k.ends_with("_secret") && k != "client_secret")
    {
        return false;
    }
    matches!(
        k,
        "password"
            | "passwd"
            | "pwd"
            | "pass"
            | "secret"
            | "token"
            | "api_key"
            | "apikey"
            | "key"
            | "access_key"
            | "secret_key"
            | "secret_access_key"
            | "aws_secret_access_key"
            | "session_token"
            | "aws_session_token"
            | "private_key"
            | "client_secret"
            | "authorization"
            | "auth"
            | "credentials"
    ) || k.contains("password")
        || k.contains("token")
}

/// The config text as a diagnostic may show it: the values of
/// secret-bearing keys and the password of any URL userinfo replaced by
/// `****`. Byte offsets are kept (the value is padded with spaces), so the
/// spans of an error still point at the right place.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let masked = match line.split_once('=') {
            Some((key, value))
                if !key.trim_start().starts_with('#')
                    && !key.trim_start().starts_with('[')
                    && secret_bearing(key) =>
            {
                format!("{key}={}", mask(value))
            }
            _ => line.to_owned(),
        };
        out.push_str(&redact_userinfo(&masked));
    }
    out
}

/// `value` (what follows `=`) replaced by `****`, padded to its length.
fn mask(value: &str) -> String {
    let lead = value.len() - value.trim_start().len();
    let body = value.len() - lead;
    let stars = "****".get(..body.min(4)).unwrap_or("");
    format!(
        "{}{stars}{}",
        " ".repeat(lead),
        " ".repeat(body - stars.len())
    )
}

/// `scheme://user:****@host`: the password of every URL userinfo in `s`
/// masked, the length kept.
pub(crate) fn redact_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| {
                c == '/' || c == '"' || c == '\'' || c.is_whitespace() || c == '?' || c == '#'
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..=colon]);
                out.push_str(&mask(&authority[colon + 1..at]));
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn secret_values_and_userinfo_are_masked_with_offsets_kept() {
        let text = "[elasticsearch]\nurl = \"http://elastic:hunter2-pw@es:9200\"\npassword = \"hunter2-pw\"\npassword_env = \"ES_PW\"\n";
        let r = redact(text);
        assert_eq!(r.len(), text.len());
        assert!(!r.contains("hunter2"), "{r}");
        assert!(r.contains("http://elastic:****"), "{r}");
        assert!(r.contains("password = ****"), "{r}");
        assert!(r.contains("password_env = \"ES_PW\""), "{r}");
    }

    #[test]
    fn messages_lose_userinfo_passwords() {
        assert_eq!(
            redact_userinfo("`url` \"https://u:pw@h/\" bad"),
            "`url` \"https://u:**@h/\" bad"
        );
    }
}
