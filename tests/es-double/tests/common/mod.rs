//! Shared helpers: start a double and drive it over real HTTP with reqwest.
#![allow(dead_code)]

use base64::Engine as _;
use es_double::EsDouble;
use reqwest::header::HeaderMap;
use serde_json::Value;

pub const ELASTIC_PW: &str = "elastic-s3cret-pw";

#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    /// `base64(id:api_key)`, as the create API key response's `encoded`.
    ApiKey(&'a str),
    /// A verbatim `Authorization` header value.
    Raw(&'a str),
}

pub const ADMIN: Auth<'static> = Auth::Basic("elastic", ELASTIC_PW);

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    pub fn error_type(&self) -> &str {
        self.json["error"]["type"].as_str().unwrap_or("")
    }

    pub fn reason(&self) -> &str {
        self.json["error"]["reason"].as_str().unwrap_or("")
    }
}

pub struct Es {
    pub double: EsDouble,
    pub client: reqwest::Client,
}

impl Es {
    pub fn start() -> Es {
        Es {
            double: EsDouble::start(ELASTIC_PW),
            client: reqwest::Client::new(),
        }
    }

    pub async fn call(&self, method: &str, path: &str, auth: Auth<'_>, body: Option<&str>) -> Resp {
        let url = format!("{}{}", self.double.url(), path);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.client.request(method, url).header(
            "Accept",
            "application/vnd.elasticsearch+json; compatible-with=8",
        );
        rb = match auth {
            Auth::None => rb,
            Auth::Basic(u, p) => rb.header(
                "Authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                ),
            ),
            Auth::ApiKey(k) => rb.header("Authorization", format!("ApiKey {k}")),
            Auth::Raw(v) => rb.header("Authorization", v),
        };
        if let Some(b) = body {
            rb = rb
                .header(
                    "Content-Type",
                    "application/vnd.elasticsearch+json; compatible-with=8",
                )
                .body(b.to_string());
        }
        let resp = rb.send().await.expect("request to es-double failed");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("response is not JSON ({e}): {text}"))
        };
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn get(&self, path: &str, auth: Auth<'_>) -> Resp {
        self.call("GET", path, auth, None).await
    }

    pub async fn put(&self, path: &str, auth: Auth<'_>, body: &str) -> Resp {
        self.call("PUT", path, auth, Some(body)).await
    }

    pub async fn post(&self, path: &str, auth: Auth<'_>, body: &str) -> Resp {
        self.call("POST", path, auth, Some(body)).await
    }

    pub async fn delete(&self, path: &str, auth: Auth<'_>) -> Resp {
        self.call("DELETE", path, auth, None).await
    }

    /// `security.put_user` as the admin; asserts success.
    pub async fn put_user(&self, name: &str, body: &str) -> Resp {
        let r = self
            .put(&format!("/_security/user/{name}"), ADMIN, body)
            .await;
        assert_eq!(r.status, 200, "put_user {name}: {}", r.text);
        r
    }

    /// `security.put_role` as the admin; asserts success.
    pub async fn put_role(&self, name: &str, body: &str) -> Resp {
        let r = self
            .put(&format!("/_security/role/{name}"), ADMIN, body)
            .await;
        assert_eq!(r.status, 200, "put_role {name}: {}", r.text);
        r
    }

    /// `cluster.health` with the given credentials.
    pub async fn health(&self, auth: Auth<'_>) -> Resp {
        self.get("/_cluster/health", auth).await
    }
}

pub fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

/// The exact body Elasticsearch sends for a 401 with this reason.
pub fn unauthorized_body(reason: &str) -> Value {
    let inner = serde_json::json!({
        "type": "security_exception",
        "reason": reason,
        "header": {"WWW-Authenticate": ["Basic realm=\"security\", charset=\"UTF-8\"", "ApiKey"]}
    });
    serde_json::json!({
        "error": {
            "root_cause": [inner.clone()],
            "type": "security_exception",
            "reason": reason,
            "header": inner["header"].clone()
        },
        "status": 401
    })
}
