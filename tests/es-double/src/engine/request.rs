//! The request as a handler sees it: path variables, query parameters
//! (with Elasticsearch's checks of unknown and malformed ones), the JSON body,
//! and the small parsers and validators several API families share (names,
//! passwords, string lists, Jackson token names in parse errors).

use super::*;

/// Parameters every REST handler accepts (response rendering).
pub(super) const RESPONSE_PARAMS: [&str; 4] = ["pretty", "human", "error_trace", "filter_path"];

/// The request as the handlers see it.
pub(super) struct Req<'a> {
    pub(super) method: &'a str,
    /// Raw path as sent (no query string), as `RestRequest.path()`.
    pub(super) raw_path: &'a str,
    pub(super) params: Vec<(String, String)>,
    pub(super) vars: Vec<(&'static str, String)>,
    pub(super) body: &'a [u8],
}

impl Req<'_> {
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| {
                self.params
                    .iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            })
    }

    pub(super) fn var(&self, name: &str) -> String {
        self.vars
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// `RestRequest.paramAsBoolean`: empty means true.
    pub(super) fn param_bool(&self, name: &str, default: bool) -> Result<bool, EsError> {
        match self.param(name) {
            None => Ok(default),
            Some("") | Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(EsError::illegal_argument(format!(
                "Failed to parse value [{v}] as only [true] or [false] are allowed."
            ))),
        }
    }

    /// Rejects query parameters the handler does not consume, with
    /// Elasticsearch's "did you mean" suggestions.
    pub(super) fn check_params(&self, consumed: &[&str]) -> Result<(), EsError> {
        let invalid: BTreeSet<&str> = self
            .params
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !consumed.contains(k) && !RESPONSE_PARAMS.contains(k))
            .collect();
        if invalid.is_empty() {
            return Ok(());
        }
        let mut msg = format!(
            "request [{}] contains unrecognized parameter{}: ",
            self.raw_path,
            if invalid.len() > 1 { "s" } else { "" }
        );
        for (i, bad) in invalid.iter().enumerate() {
            if i > 0 {
                msg.push_str(", ");
            }
            msg.push_str(&format!("[{bad}]"));
            let mut scored: Vec<(f32, &str)> = consumed
                .iter()
                .map(|c| (similarity(bad, c), *c))
                .filter(|(s, _)| *s > 0.5)
                .collect();
            scored.sort_by(|a, b| {
                b.0.partial_cmp(&a.0)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(a.1.cmp(b.1))
            });
            if !scored.is_empty() {
                msg.push_str(" -> did you mean ");
                if scored.len() == 1 {
                    msg.push_str(&format!("[{}]", scored[0].1));
                } else {
                    let keys: Vec<&str> = scored.iter().map(|(_, k)| *k).collect();
                    msg.push_str(&format!("any of [{}]", keys.join(", ")));
                }
                msg.push('?');
            }
        }
        Err(EsError::illegal_argument(msg))
    }

    /// `WriteRequest.RefreshPolicy.parse` of `?refresh=`.
    pub(super) fn check_refresh(&self) -> Result<(), EsError> {
        match self.param("refresh") {
            None | Some("") | Some("true") | Some("false") | Some("wait_for") => Ok(()),
            Some(v) => Err(EsError::illegal_argument(format!(
                "Unknown value for refresh: [{v}]."
            ))),
        }
    }

    pub(super) fn json_body(&self) -> Result<Option<Value>, EsError> {
        if self.body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(None);
        }
        serde_json::from_slice::<Value>(self.body)
            .map(Some)
            .map_err(|e| {
                let text = e.to_string();
                let text = match text.rfind(" at line ") {
                    Some(i) => text[..i].to_string(),
                    None => text,
                };
                EsError::x_content_parse(format!("[{}:{}] {}", e.line(), e.column(), text))
            })
    }

    /// `RestRequest.requiredContent()` then `XContentUtils.verifyObject`.
    pub(super) fn object_body(&self) -> Result<Map<String, Value>, EsError> {
        match self.json_body()? {
            None => Err(EsError::parse("request body is required")),
            Some(Value::Object(m)) => Ok(m),
            Some(other) => Err(EsError::parse(format!(
                "expected an object, but found token [{}]",
                token(&other)
            ))),
        }
    }

    /// Where `"field"` appears in the body, as `[line:column]`.
    pub(super) fn location_of(&self, field: &str) -> String {
        let text = String::from_utf8_lossy(self.body);
        let needle = format!("\"{field}\"");
        let offset = text.find(&needle).unwrap_or(0);
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = offset - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
        format!("[{line}:{col}]")
    }
}

/// Jackson's token name for a JSON value, as Elasticsearch prints it.
pub(super) fn token(v: &Value) -> &'static str {
    match v {
        Value::Null => "VALUE_NULL",
        Value::Bool(_) => "VALUE_BOOLEAN",
        Value::Number(_) => "VALUE_NUMBER",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

pub(super) fn expected_type(field: &str, kind: &str, v: &Value) -> EsError {
    EsError::parse(format!(
        "expected field [{field}] to be of type {kind}, but found [{}] instead",
        token(v)
    ))
}

pub(super) const PASSWORD_MIN: usize = 6;

pub(super) fn check_password(pw: &str) -> Result<(), EsError> {
    if pw.chars().count() < PASSWORD_MIN {
        return Err(EsError::validation(&format!(
            "passwords must be at least [{PASSWORD_MIN}] characters long"
        )));
    }
    Ok(())
}

pub(super) fn password_hash_unsupported() -> EsError {
    EsError::illegal_argument(
        "es-double does not store password hashes: send [password] instead of [password_hash]",
    )
}

/// `Validation.isValidUserOrRoleName`.
pub(super) fn valid_name(name: &str) -> bool {
    let len = name.chars().count();
    (1..=1024).contains(&len)
        && name.chars().all(|c| (' '..='~').contains(&c))
        && !name.starts_with(' ')
        && !name.ends_with(' ')
}

pub(super) fn invalid_name_message(kind: &str) -> String {
    format!(
        "{kind} names must be at least 1 and no more than 1024 characters. They can contain alphanumeric characters (a-z, A-Z, 0-9), spaces, punctuation, and printable symbols in the Basic Latin (ASCII) block. Leading or trailing whitespace is not allowed."
    )
}

pub(super) fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
        ),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

pub(super) fn underscore_keys(m: &Map<String, Value>) -> bool {
    m.keys().any(|k| k.starts_with('_'))
}
