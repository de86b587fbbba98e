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

/// Keys whose values a diagnostic may show: the config's own keys, none
/// of which holds a secret (credentials are named by environment variable
/// or secret name, never given). Any other key's value — `password = "…"`
/// written by mistake, a misspelt key — is masked, and so is a known key's
/// value that is not one well-formed TOML value (a stray quote can pull a
/// secret from the next line into it).
const SHOWN_KEYS: &[&str] = &[
    "url",
    "username",
    "password_env",
    "password_secret",
    "api_key_env",
    "ca_cert",
    "timeout_seconds",
    "region",
    "endpoint_url",
    "profile",
    "name",
    "role_arn",
    "account",
    "clusters",
    "kind",
    "username_env",
    "json_env",
    "username_key",
    "password_key",
    "paths",
    "on_violation",
    "prefixes",
    "redeploy_fallback",
    "stable_timeout_seconds",
    "kill_grace_seconds",
    "watch_interval_ms",
    "rule",
    "target",
    "reason",
    "expires",
    "max_concurrency",
];

fn shown(key: &str, value: &str) -> bool {
    let k = key.trim().trim_matches(['"', '\'']).to_ascii_lowercase();
    SHOWN_KEYS.contains(&k.as_str()) && well_formed(value)
}

/// One simple TOML value on one line: a string without a stray quote, an
/// array of such, a number, a boolean, a date (a trailing comment allowed).
fn well_formed(value: &str) -> bool {
    let v = value.trim();
    let simple = |v: &str| {
        let v = v.trim();
        if let Some(rest) = v.strip_prefix('"') {
            let mut escaped = false;
            for (i, c) in rest.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => return rest[i + 1..].trim().is_empty(),
                    _ => escaped = false,
                }
            }
            false
        } else if let Some(rest) = v.strip_prefix('\'') {
            rest.find('\'')
                .is_some_and(|i| rest[i + 1..].trim().is_empty())
        } else {
            !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-_.:".contains(c))
        }
    };
    let v = match v.rfind('#') {
        Some(i) if simple(&v[..i]) || v[..i].trim().starts_with('[') => v[..i].trim(),
        _ => v,
    };
    if let Some(inner) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.trim().is_empty()
            || inner
                .split(',')
                .filter(|x| !x.trim().is_empty())
                .all(simple);
    }
    simple(v)
}

/// The config text as a diagnostic may show it: values that may hold a
/// secret (see [`SHOWN_KEYS`]) and the password of any URL userinfo
/// replaced by `****`. Byte offsets are kept (the value is padded with
/// spaces), so the spans of an error still point at the right place.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let t = line.trim();
        let masked =
            if t.is_empty() || t.starts_with('#') || (t.starts_with('[') && !t.contains('=')) {
                line.to_owned()
            } else {
                match line.split_once('=') {
                    Some((key, value)) if shown(key, value) => line.to_owned(),
                    Some((key, value)) => format!("{key}={}", mask(value)),
                    // An array continuation of plain strings stays; anything
                    // else (a multi-line string's content) is masked.
                    None if well_formed(&format!(
                        "[{}]",
                        t.trim_end_matches(',')
                            .trim_start_matches('[')
                            .trim_end_matches(']')
                    )) =>
                    {
                        line.to_owned()
                    }
                    None => mask(line),
                }
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
/// masked, the length kept. Also without a scheme (`user:pass@host`), and
/// when a stray quote splits the URL: for each `@`, whatever follows the
/// first `:` of its token (back to a space or `/`) is masked.
pub(crate) fn redact_userinfo(s: &str) -> String {
    let mut out: Vec<u8> = s.as_bytes().to_vec();
    for (at, _) in s.match_indices('@') {
        let start = s[..at]
            .char_indices()
            .rev()
            .find(|(_, c)| *c == '/' || c.is_whitespace())
            .map(|(i, c)| i + c.len_utf8())
            .unwrap_or(0);
        if let Some(colon) = s[start..at].find(':') {
            let from = start + colon + 1;
            for (k, b) in out[from..at].iter_mut().enumerate() {
                // `****`, then spaces: the length is kept, the value is not.
                *b = if k < 4 { b'*' } else { b' ' };
            }
        }
    }
    // Only ASCII bytes were written over whole characters' bytes between
    // two ASCII delimiters, so the text is still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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
        assert_eq!(
            redact_userinfo("url = \"elastic:hunter22@h\""),
            "url = \"elastic:****    @h\""
        );
        assert_eq!(
            redact_userinfo("\"http://el\"as:hunter22@h\""),
            "\"http://el\"as:****    @h\""
        );
        assert_eq!(redact_userinfo("http://h:9200/x@y"), "http://h:9200/x@y");
        assert_eq!(redact_userinfo("mail a.b@c.d"), "mail a.b@c.d");
    }
}
