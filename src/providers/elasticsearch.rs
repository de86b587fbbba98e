//! Elasticsearch, through the official client.
//!
//! Two transports: `admin` carries opsguard's own identity; `probe` carries
//! none, and every probe sets its own `Authorization` header. Keeping them
//! apart means a probe can never succeed by accident on the admin's
//! credentials. The client returns non-2xx answers as `Ok(Response)`, so each
//! call checks the status itself; transient failures (connection errors, 429,
//! 502, 503, 504) are retried with backoff, a bounded number of times.

use super::{
    ApiKeyState, Calls, ClusterHealth, ClusterInfo, EsReader, EsUser, ProbeAuth, ProbeOutcome,
    ProviderError,
};
use crate::config::EsConfig;
use base64::Engine;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::cluster::ClusterHealthParts;
use elasticsearch::http::headers::{HeaderValue, AUTHORIZATION};
use elasticsearch::http::response::Response;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::StatusCode;
use elasticsearch::security::SecurityGetUserParts;
use elasticsearch::Elasticsearch;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

const ATTEMPTS: u32 = 4;

/// opsguard's own identity, resolved (a `password_secret` already read).
pub enum AdminAuth {
    Basic {
        username: String,
        password: SecretString,
    },
    ApiKey {
        encoded: SecretString,
    },
}

pub struct Es {
    admin: Elasticsearch,
    probe: Elasticsearch,
    calls: Calls,
}

fn err(op: &str, msg: impl Into<String>) -> ProviderError {
    ProviderError::new("Elasticsearch", op, msg)
}

impl Es {
    pub fn new(cfg: &EsConfig, auth: AdminAuth, calls: Calls) -> Result<Es, ProviderError> {
        let pem = match &cfg.ca_cert {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                err(
                    "configuration",
                    format!("cannot read ca_cert {}: {e}", path.display()),
                )
            })?),
            None => None,
        };
        let build = |creds: Option<Credentials>| -> Result<Elasticsearch, ProviderError> {
            let mut b = TransportBuilder::new(SingleNodeConnectionPool::new(cfg.url.clone()))
                .timeout(cfg.timeout)
                .disable_proxy();
            if let Some(c) = creds {
                b = b.auth(c);
            }
            if let (Some(pem), Some(path)) = (&pem, &cfg.ca_cert) {
                let cert = Certificate::from_pem(pem).map_err(|e| {
                    err("configuration", format!("ca_cert {}: {e}", path.display()))
                })?;
                b = b.cert_validation(CertificateValidation::Full(cert));
            }
            let t = b.build().map_err(|e| err("configuration", e.to_string()))?;
            Ok(Elasticsearch::new(t))
        };
        let creds = match &auth {
            AdminAuth::Basic { username, password } => {
                Credentials::Basic(username.clone(), password.expose_secret().to_owned())
            }
            AdminAuth::ApiKey { encoded } => {
                Credentials::EncodedApiKey(encoded.expose_secret().to_owned())
            }
        };
        Ok(Es {
            admin: build(Some(creds))?,
            probe: build(None)?,
            calls,
        })
    }

    /// Send with bounded retries; return the status and the JSON body.
    async fn send<F, Fut>(&self, op: &str, f: F) -> Result<(StatusCode, Value), ProviderError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Response, elasticsearch::Error>>,
    {
        self.calls.hit(&format!("elasticsearch:{op}"));
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=ATTEMPTS {
            let last = attempt == ATTEMPTS;
            match f().await {
                Ok(resp) => {
                    let status = resp.status_code();
                    let transient = matches!(status.as_u16(), 429 | 502 | 503 | 504);
                    if transient && !last {
                        tracing::debug!(op, %status, attempt, "transient Elasticsearch answer, retrying");
                    } else {
                        let text = resp.text().await.map_err(|e| err(op, e.to_string()))?;
                        let body = if text.trim().is_empty() {
                            Value::Null
                        } else {
                            serde_json::from_str(&text).map_err(|e| {
                                err(op, format!("HTTP {status}: body is not JSON ({e})"))
                            })?
                        };
                        return Ok((status, body));
                    }
                }
                Err(e) if !last => {
                    tracing::debug!(op, attempt, error = %e, "Elasticsearch call failed, retrying");
                }
                Err(e) => return Err(err(op, e.to_string())),
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        unreachable!("the last attempt returns")
    }

    fn expect_ok(op: &str, status: StatusCode, body: &Value) -> Result<(), ProviderError> {
        if status.is_success() {
            return Ok(());
        }
        Err(err(
            op,
            format!("HTTP {}: {}", status.as_u16(), es_reason(body)),
        ))
    }
}

/// `type: reason` of an Elasticsearch error body.
fn es_reason(body: &Value) -> String {
    let e = &body["error"];
    match (e["type"].as_str(), e["reason"].as_str()) {
        (Some(t), Some(r)) => format!("{t}: {r}"),
        _ => match e.as_str() {
            Some(s) => s.to_owned(),
            None => "no error detail".to_owned(),
        },
    }
}

fn millis(v: &Value) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(v.as_i64()?) * 1_000_000).ok()
}

fn string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

impl EsReader for Es {
    async fn cluster_info(&self) -> Result<ClusterInfo, ProviderError> {
        let (status, body) = self.send("info", || self.admin.info().send()).await?;
        Self::expect_ok("info", status, &body)?;
        Ok(ClusterInfo {
            cluster_name: string(&body["cluster_name"]).unwrap_or_default(),
            cluster_uuid: string(&body["cluster_uuid"]).unwrap_or_default(),
            version: string(&body["version"]["number"]).unwrap_or_default(),
        })
    }

    async fn health(&self) -> Result<ClusterHealth, ProviderError> {
        let cluster = self.admin.cluster();
        let (status, body) = self
            .send("cluster.health", || {
                cluster.health(ClusterHealthParts::None).send()
            })
            .await?;
        Self::expect_ok("cluster.health", status, &body)?;
        Ok(ClusterHealth {
            status: string(&body["status"]).unwrap_or_default(),
            number_of_nodes: body["number_of_nodes"].as_u64().unwrap_or(0),
            number_of_data_nodes: body["number_of_data_nodes"].as_u64().unwrap_or(0),
            active_shards_percent: body["active_shards_percent_as_number"]
                .as_f64()
                .unwrap_or(0.0),
        })
    }

    async fn users(&self) -> Result<Vec<EsUser>, ProviderError> {
        let security = self.admin.security();
        let (status, body) = self
            .send("security.get_user", || {
                security.get_user(SecurityGetUserParts::None).send()
            })
            .await?;
        // 404 with `{}` means "no users" (not possible with the reserved users
        // present, but it is what the API says when nothing matches).
        if status == StatusCode::NOT_FOUND && body.as_object().is_some_and(|o| o.is_empty()) {
            return Ok(Vec::new());
        }
        Self::expect_ok("security.get_user", status, &body)?;
        let Some(map) = body.as_object() else {
            return Err(err("security.get_user", "response is not an object"));
        };
        let mut users: Vec<EsUser> = map
            .iter()
            .map(|(name, u)| {
                let metadata = u["metadata"].as_object().cloned().unwrap_or_default();
                let mut roles: Vec<String> = u["roles"]
                    .as_array()
                    .map(|a| a.iter().filter_map(string).collect())
                    .unwrap_or_default();
                roles.sort();
                EsUser {
                    username: string(&u["username"]).unwrap_or_else(|| name.clone()),
                    roles,
                    full_name: string(&u["full_name"]),
                    email: string(&u["email"]),
                    enabled: u["enabled"].as_bool().unwrap_or(true),
                    reserved: metadata
                        .get("_reserved")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    metadata,
                }
            })
            .collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(users)
    }

    async fn api_key(&self, id: &str) -> Result<ApiKeyState, ProviderError> {
        let security = self.admin.security();
        let (status, body) = self
            .send("security.get_api_key", || {
                security.get_api_key().id(id).send()
            })
            .await?;
        let not_found = ApiKeyState {
            id: id.to_owned(),
            found: false,
            name: None,
            username: None,
            realm: None,
            creation: None,
            expiration: None,
            invalidated: false,
        };
        if status == StatusCode::NOT_FOUND {
            return Ok(not_found);
        }
        Self::expect_ok("security.get_api_key", status, &body)?;
        let Some(k) = body["api_keys"]
            .as_array()
            .and_then(|a| a.iter().find(|k| k["id"] == id))
        else {
            return Ok(not_found);
        };
        Ok(ApiKeyState {
            id: id.to_owned(),
            found: true,
            name: string(&k["name"]),
            username: string(&k["username"]),
            realm: string(&k["realm"]),
            creation: millis(&k["creation"]),
            expiration: millis(&k["expiration"]),
            invalidated: k["invalidated"].as_bool().unwrap_or(false),
        })
    }

    async fn authenticate(&self, auth: &ProbeAuth) -> Result<ProbeOutcome, ProviderError> {
        let header = match auth {
            ProbeAuth::Basic { username, password } => {
                let raw = format!("{username}:{}", password.expose_secret());
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )
            }
            ProbeAuth::ApiKey { encoded } => format!("ApiKey {}", encoded.expose_secret()),
        };
        let mut value = HeaderValue::from_str(&header).map_err(|_| {
            err(
                "security.authenticate",
                "credential contains bytes not allowed in an HTTP header",
            )
        })?;
        value.set_sensitive(true);
        let security = self.probe.security();
        let (status, body) = self
            .send("security.authenticate", || {
                security
                    .authenticate()
                    .header(AUTHORIZATION, value.clone())
                    .send()
            })
            .await?;
        match status.as_u16() {
            200 => Ok(ProbeOutcome::Authenticated {
                username: string(&body["username"]).unwrap_or_default(),
            }),
            401 => Ok(ProbeOutcome::Rejected {
                reason: es_reason(&body),
            }),
            _ => Err(err(
                "security.authenticate",
                format!("HTTP {}: {}", status.as_u16(), es_reason(&body)),
            )),
        }
    }
}
