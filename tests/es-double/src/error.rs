//! Elasticsearch-shaped error responses.
//!
//! Elasticsearch renders an exception as
//! `{"error":{"root_cause":[{..}],"type":..,"reason":..,..},"status":N}`,
//! where the inner object lists `type`, `reason`, then metadata fields
//! (for example `additional_unsuccessful_credentials`), then a `header`
//! object carrying the response headers the exception asks for (a single
//! value is a string, several are an array). This module builds exactly that.

use serde_json::{json, Map, Value};

/// The `WWW-Authenticate` challenges of an 8.x node without TLS on HTTP
/// (so without the token service and its `Bearer` challenge).
pub(crate) const WWW_AUTHENTICATE: [&str; 2] =
    ["Basic realm=\"security\", charset=\"UTF-8\"", "ApiKey"];

#[derive(Debug, Clone)]
pub(crate) struct EsError {
    pub status: u16,
    pub kind: String,
    pub reason: String,
    /// Extra fields rendered after `reason` (metadata such as
    /// `additional_unsuccessful_credentials`, or `resource.type`).
    pub fields: Vec<(String, Value)>,
    /// Headers both rendered in the body's `header` object and sent as real
    /// response headers.
    pub headers: Vec<(String, Vec<String>)>,
}

impl EsError {
    pub(crate) fn new(status: u16, kind: &str, reason: impl Into<String>) -> EsError {
        EsError {
            status,
            kind: kind.to_string(),
            reason: reason.into(),
            fields: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn field(mut self, name: &str, value: Value) -> EsError {
        self.fields.push((name.to_string(), value));
        self
    }

    pub(crate) fn body(&self) -> Value {
        let mut inner = Map::new();
        inner.insert("type".into(), Value::String(self.kind.clone()));
        inner.insert("reason".into(), Value::String(self.reason.clone()));
        for (k, v) in &self.fields {
            inner.insert(k.clone(), v.clone());
        }
        if !self.headers.is_empty() {
            let mut h = Map::new();
            for (k, vs) in &self.headers {
                let v = if vs.len() == 1 {
                    Value::String(vs[0].clone())
                } else {
                    json!(vs)
                };
                h.insert(k.clone(), v);
            }
            inner.insert("header".into(), Value::Object(h));
        }
        let mut error = Map::new();
        error.insert("root_cause".into(), json!([Value::Object(inner.clone())]));
        for (k, v) in inner {
            error.insert(k, v);
        }
        json!({"error": Value::Object(error), "status": self.status})
    }

    // ---- common exception types -------------------------------------------------

    fn validation_message(errors: &[String]) -> String {
        let mut s = String::from("Validation Failed: ");
        for (i, e) in errors.iter().enumerate() {
            s.push_str(&format!("{}: {};", i + 1, e));
        }
        s
    }

    /// `ActionRequestValidationException` (a request's `validate()` or a
    /// transport action's own checks).
    pub(crate) fn action_validation(errors: &[String]) -> EsError {
        EsError::new(
            400,
            "action_request_validation_exception",
            Self::validation_message(errors),
        )
    }

    /// `org.elasticsearch.common.ValidationException`.
    pub(crate) fn validation(error: &str) -> EsError {
        EsError::new(
            400,
            "validation_exception",
            Self::validation_message(&[error.to_string()]),
        )
    }

    pub(crate) fn illegal_argument(reason: impl Into<String>) -> EsError {
        EsError::new(400, "illegal_argument_exception", reason)
    }

    /// `ElasticsearchParseException`.
    pub(crate) fn parse(reason: impl Into<String>) -> EsError {
        EsError::new(400, "parse_exception", reason)
    }

    /// `XContentParseException` (malformed JSON, unknown fields of object parsers).
    pub(crate) fn x_content_parse(reason: impl Into<String>) -> EsError {
        EsError::new(400, "x_content_parse_exception", reason)
    }

    fn authentication(reason: impl Into<String>) -> EsError {
        let mut e = EsError::new(401, "security_exception", reason);
        e.headers.push((
            "WWW-Authenticate".into(),
            WWW_AUTHENTICATE.iter().map(|s| s.to_string()).collect(),
        ));
        e
    }

    /// Wrong password, unknown user or disabled user.
    pub(crate) fn failed_authentication(principal: &str, uri: &str) -> EsError {
        Self::authentication(format!(
            "unable to authenticate user [{principal}] for REST request [{uri}]"
        ))
    }

    pub(crate) fn missing_credentials(uri: &str) -> EsError {
        Self::authentication(format!(
            "missing authentication credentials for REST request [{uri}]"
        ))
    }

    /// An authenticator (here only "API key") could not authenticate the
    /// credentials, and there is no anonymous fallback.
    pub(crate) fn unsuccessful_credentials(message: &str) -> EsError {
        Self::authentication(
            "unable to authenticate with provided credentials and anonymous access is not allowed for this request",
        )
        .field("additional_unsuccessful_credentials", Value::String(message.to_string()))
    }

    /// A malformed `Authorization: Basic` header.
    pub(crate) fn bad_basic_header(reason: &str) -> EsError {
        Self::authentication(reason.to_string())
    }

    pub(crate) fn forbidden(reason: impl Into<String>) -> EsError {
        EsError::new(403, "security_exception", reason)
    }

    pub(crate) fn index_not_found(index: &str) -> EsError {
        EsError::new(
            404,
            "index_not_found_exception",
            format!("no such index [{index}]"),
        )
        .field("resource.type", json!("index_or_alias"))
        .field("resource.id", json!(index))
        .field("index_uuid", json!("_na_"))
        .field("index", json!(index))
    }

    /// The ES-shaped error served by fault injection.
    pub(crate) fn injected(status: u16, method: &str, uri: &str) -> EsError {
        let reason = format!("es-double injected fault [{status}] for [{method} {uri}]");
        match status {
            400 => EsError::illegal_argument(reason),
            401 => Self::authentication(reason),
            403 => EsError::forbidden(reason),
            404 => EsError::new(404, "resource_not_found_exception", reason),
            409 => EsError::new(409, "version_conflict_engine_exception", reason),
            429 => EsError::new(429, "es_rejected_execution_exception", reason),
            503 => EsError::new(503, "unavailable_shards_exception", reason),
            _ => EsError::new(status, "exception", reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_elasticsearch() {
        let e = EsError::missing_credentials("/");
        let expected = r#"{"error":{"root_cause":[{"type":"security_exception","reason":"missing authentication credentials for REST request [/]","header":{"WWW-Authenticate":["Basic realm=\"security\", charset=\"UTF-8\"","ApiKey"]}}],"type":"security_exception","reason":"missing authentication credentials for REST request [/]","header":{"WWW-Authenticate":["Basic realm=\"security\", charset=\"UTF-8\"","ApiKey"]}},"status":401}"#;
        assert_eq!(e.body().to_string(), expected);
    }

    #[test]
    fn validation_messages_are_numbered() {
        let e = EsError::action_validation(&["a".into(), "b".into()]);
        assert_eq!(e.reason, "Validation Failed: 1: a;2: b;");
        assert_eq!(e.kind, "action_request_validation_exception");
    }
}
