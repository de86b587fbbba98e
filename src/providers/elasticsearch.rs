//! Elasticsearch, through the official client.
//!
//! Two transports: `admin` carries opsguard's own identity; `probe` carries
//! none, and every probe sets its own `Authorization` header. Keeping them
//! apart means a probe can never succeed by accident on the admin's
//! credentials. The client returns non-2xx answers as `Ok(Response)`, so each
//! call checks the status itself; transient failures (connection errors, 429,
//! 502, 503, 504) are retried with backoff, a bounded number of times.
//!
//! The writes (password, user, enabled flag; see [`EsWriter`]) go through the
//! admin transport and the same retries. Retrying a write is only safe when
//! sending it twice changes nothing more than sending it once; every write
//! here sets a state (this password, this user document, enabled = this), so
//! it is.

use super::{
    ApiKeyState, Calls, ClusterHealth, ClusterInfo, EsReader, EsUser, EsWriter, ProbeAuth,
    ProbeOutcome, ProviderError,
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
use elasticsearch::security::{
    SecurityChangePasswordParts, SecurityDisableUserParts, SecurityEnableUserParts,
    SecurityGetRoleParts, SecurityGetUserParts, SecurityPutRoleParts, SecurityPutUserParts,
};
use elasticsearch::Elasticsearch;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Map, Value};
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
    /// The longest one call may take, its retries included.
    budget: Duration,
    /// The URL as configured, without credentials, for messages.
    url: String,
}

/// What `_has_privileges` says about opsguard's own identity.
#[derive(Clone, Debug, Default)]
pub struct Privileges {
    pub username: String,
    /// Each cluster privilege asked about, and whether it is held.
    pub cluster: std::collections::BTreeMap<String, bool>,
}

/// The HTTP request behind an operation name, for error messages.
fn endpoint(op: &str) -> &'static str {
    match op {
        "info" => "GET /",
        "cluster.health" => "GET /_cluster/health",
        "security.get_user" => "GET /_security/user",
        "security.get_api_key" => "GET /_security/api_key",
        "security.authenticate" => "GET /_security/_authenticate",
        "security.has_privileges" => "POST /_security/user/_has_privileges",
        "security.change_password" => "POST /_security/user/{name}/_password",
        "security.put_user" => "PUT /_security/user/{name}",
        "security.enable_user" => "PUT /_security/user/{name}/_enable",
        "security.disable_user" => "PUT /_security/user/{name}/_disable",
        _ => "request",
    }
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
            budget: cfg.timeout,
            url: {
                let mut u = cfg.url.clone();
                let _ = u.set_password(None);
                let _ = u.set_username("");
                u.set_query(None);
                u.to_string()
            },
        })
    }

    /// `GET /_security/role/{names}`: the role descriptors as Elasticsearch
    /// renders them, by name (unknown names are simply absent). Read-only.
    pub async fn roles(&self, names: &[String]) -> Result<Map<String, Value>, ProviderError> {
        if names.is_empty() {
            return Ok(Map::new());
        }
        let op = "GetRole";
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let security = self.admin.security();
        let (status, body) = self
            .send(op, || {
                security.get_role(SecurityGetRoleParts::Name(&refs)).send()
            })
            .await?;
        if status.as_u16() == 404 {
            return Ok(Map::new());
        }
        Self::expect_ok(op, status, &body)?;
        Ok(body.as_object().cloned().unwrap_or_default())
    }

    /// `PUT /_security/role/{name}` with a descriptor as [`Es::roles`] read it
    /// (minus what Elasticsearch does not accept back: `transient_metadata`).
    pub async fn put_role(&self, name: &str, descriptor: &Value) -> Result<(), ProviderError> {
        let op = "PutRole";
        let mut body = descriptor.clone();
        if let Some(m) = body.as_object_mut() {
            m.remove("transient_metadata");
        }
        let security = self.admin.security();
        let (status, reply) = self
            .send(op, || {
                security
                    .put_role(SecurityPutRoleParts::Name(name))
                    .body(body.clone())
                    .send()
            })
            .await?;
        Self::expect_ok(op, status, &reply)
    }

    /// Send with bounded retries, all within the call's time budget
    /// (`[elasticsearch] timeout_seconds`); return the status and the JSON
    /// body. A server that does not answer in time is named as such:
    /// "timed out after 10 s waiting for Elasticsearch GET /_cluster/health
    /// (1 try)".
    async fn send<F, Fut>(&self, op: &str, f: F) -> Result<(StatusCode, Value), ProviderError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Response, elasticsearch::Error>>,
    {
        let call = self.calls.hit(&format!("elasticsearch:{op}"));
        let started = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + self.budget;
        let timed_out = |tries: u32| {
            err(
                op,
                format!(
                    "timed out after {} s waiting for Elasticsearch {} ({tries} tr{})",
                    started.elapsed().as_secs_f64().round() as u64,
                    endpoint(op),
                    if tries == 1 { "y" } else { "ies" }
                ),
            )
        };
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=ATTEMPTS {
            let last = attempt == ATTEMPTS;
            let answer = match tokio::time::timeout_at(deadline, async {
                let resp = f().await?;
                let status = resp.status_code();
                if status.as_u16() == 429 {
                    self.calls.throttled("elasticsearch");
                }
                if matches!(status.as_u16(), 429 | 502 | 503 | 504) && !last {
                    return Ok((status, None));
                }
                let text = resp.text().await?;
                Ok::<_, elasticsearch::Error>((status, Some(text)))
            })
            .await
            {
                Err(_) => return Err(timed_out(attempt)),
                Ok(a) => a,
            };
            match answer {
                Ok((status, Some(text))) => {
                    tracing::trace!(
                        op,
                        attempt,
                        status = status.as_u16(),
                        "Elasticsearch answered"
                    );
                    let body = if text.trim().is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_str(&text).map_err(|e| {
                            err(op, format!("HTTP {status}: body is not JSON ({e})"))
                        })?
                    };
                    call.done(answered(op, status, &body, attempt));
                    return Ok((status, body));
                }
                Ok((status, None)) => {
                    tracing::debug!(op, %status, attempt, "transient Elasticsearch answer, retrying");
                }
                Err(e) if e.is_timeout() => return Err(timed_out(attempt)),
                Err(e) if !last => {
                    tracing::debug!(op, attempt, error = %e, "Elasticsearch call failed, retrying");
                }
                Err(e) => {
                    let why = match super::net_cause(&e) {
                        Some(cause) => cause.words().to_owned(),
                        None => crate::report::escape::line(&e.to_string(), 512),
                    };
                    return Err(err(
                        op,
                        format!(
                            "{} at {} failed after {attempt} tries: {why}; check [elasticsearch] url{}",
                            endpoint(op),
                            crate::report::escape::line(&self.url, 256),
                            match super::net_cause(&e) {
                                Some(super::NetCause::Tls | super::NetCause::Certificate) => {
                                    " (http:// or https://) and [elasticsearch] ca_cert"
                                }
                                _ => " and that Elasticsearch runs there",
                            }
                        ),
                    ));
                }
            }
            if tokio::time::Instant::now() + delay >= deadline {
                return Err(timed_out(attempt));
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        unreachable!("the last attempt returns")
    }

    /// `POST /_security/user/_has_privileges` for opsguard's own identity:
    /// which of the named cluster privileges it holds.
    pub async fn has_privileges(&self, cluster: &[&str]) -> Result<Privileges, ProviderError> {
        let op = "security.has_privileges";
        let security = self.admin.security();
        let body = serde_json::json!({ "cluster": cluster });
        let (status, body) = self
            .send(op, || {
                security
                    .has_privileges(elasticsearch::security::SecurityHasPrivilegesParts::None)
                    .body(body.clone())
                    .send()
            })
            .await?;
        Self::expect_ok(op, status, &body)?;
        let granted = body["cluster"]
            .as_object()
            .ok_or_else(|| err(op, "the answer has no `cluster` object"))?;
        Ok(Privileges {
            username: string(&body["username"]).unwrap_or_default(),
            cluster: cluster
                .iter()
                .map(|p| {
                    (
                        (*p).to_owned(),
                        granted.get(*p).and_then(Value::as_bool).unwrap_or(false),
                    )
                })
                .collect(),
        })
    }

    fn expect_ok(op: &str, status: StatusCode, body: &Value) -> Result<(), ProviderError> {
        if status.is_success() {
            return Ok(());
        }
        let code = status.as_u16();
        let reason = crate::report::escape::line(&es_reason(body), 512);
        let next = match code {
            401 => " — opsguard's own credentials were refused: check [elasticsearch] username with password_env / password_secret, or api_key_env".to_owned(),
            403 => format!(
                " — opsguard's identity lacks a privilege: grant it the cluster privilege {}",
                privilege_for(&reason)
            ),
            429 | 502..=504 => format!(
                " — Elasticsearch is overloaded or unavailable ({ATTEMPTS} tries, with backoff); try again later, or raise [elasticsearch] timeout_seconds"
            ),
            500..=599 => " — an error inside Elasticsearch (1 try); its logs say more".to_owned(),
            _ => String::new(),
        };
        Err(err(
            op,
            format!("{} answered HTTP {code}: {reason}{next}", endpoint(op)),
        ))
    }
}

/// The cluster privilege that grants the action a 403 names
/// (`action [cluster:admin/xpack/security/user/get] is unauthorized …`):
/// reading the security API wants `read_security`, changing it
/// `manage_security`.
fn privilege_for(reason: &str) -> String {
    let action = reason
        .split("action [")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap_or("");
    let privilege = if action.starts_with("cluster:admin/xpack/security/")
        && (action.ends_with("/get")
            || action.ends_with("/has_privileges")
            || action.contains("/query"))
    {
        "read_security"
    } else if action.starts_with("cluster:admin/xpack/security/") {
        "manage_security"
    } else if action.starts_with("cluster:monitor/") {
        "monitor"
    } else {
        "read_security (snapshots) or manage_security (rollback)"
    };
    if action.is_empty() {
        privilege.to_owned()
    } else {
        format!("{privilege} (for {action})")
    }
}

/// What an answer was, for the log: the status, what it counts, the tries.
fn answered(op: &str, status: StatusCode, body: &Value, attempt: u32) -> String {
    let counted = match op {
        "security.get_user" if status.is_success() => {
            format!(", {} users", body.as_object().map_or(0, |o| o.len()))
        }
        "security.get_api_key" if status.is_success() => format!(
            ", {} API keys",
            body["api_keys"].as_array().map_or(0, |a| a.len())
        ),
        _ => String::new(),
    };
    let tries = if attempt > 1 {
        format!(", {attempt} tries")
    } else {
        String::new()
    };
    format!("HTTP {}{counted}{tries}", status.as_u16())
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

/// The body of `POST /_security/user/{name}/_password`.
#[derive(Serialize)]
struct PasswordBody<'a> {
    #[serde(serialize_with = "expose")]
    password: &'a SecretString,
}

/// The body of `PUT /_security/user/{name}`. `PUT` replaces the user
/// document, so a field left out is cleared — except the password, which is
/// kept when absent.
#[derive(Serialize)]
struct PutUserBody<'a> {
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_some"
    )]
    password: Option<&'a SecretString>,
    roles: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    full_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    metadata: Map<String, Value>,
    enabled: bool,
}

/// The one place a password leaves its `SecretString`: straight into the
/// request body's bytes as it is serialised.
fn expose<S: serde::Serializer>(secret: &&SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

fn expose_some<S: serde::Serializer>(
    secret: &Option<&SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_str(secret.expose_secret()),
        None => s.serialize_none(),
    }
}

/// Metadata as Elasticsearch accepts it back: keys starting with `_` are
/// reserved (`_reserved`, `_deprecated`, …) and a PUT carrying one is refused.
fn writable_metadata(metadata: &Map<String, Value>) -> Map<String, Value> {
    metadata
        .iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Blank out `secret` wherever it appears in an error's text. Elasticsearch
/// does not echo passwords in its errors, and a transport error names the
/// URL, not the body; this holds the line should either ever change.
fn scrub(mut e: ProviderError, secret: Option<&SecretString>) -> ProviderError {
    if let Some(secret) = secret {
        let s = secret.expose_secret();
        if !s.is_empty() && e.message.contains(s) {
            e.message = e.message.replace(s, "[redacted]");
        }
    }
    e
}

impl EsWriter for Es {
    async fn set_password(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<(), ProviderError> {
        const OP: &str = "security.change_password";
        tracing::debug!(username, "setting an Elasticsearch password");
        let body = PasswordBody { password };
        let security = self.admin.security();
        let result = async {
            let (status, reply) = self
                .send(OP, || {
                    security
                        .change_password(SecurityChangePasswordParts::Username(username))
                        .body(&body)
                        .send()
                })
                .await?;
            Self::expect_ok(OP, status, &reply)
                .map_err(|e| err(OP, format!("user [{username}]: {}", e.message)))
        }
        .await;
        result.map_err(|e| scrub(e, Some(password)))
    }

    async fn put_user(
        &self,
        user: &EsUser,
        password: Option<&SecretString>,
    ) -> Result<(), ProviderError> {
        const OP: &str = "security.put_user";
        let username = user.username.as_str();
        if user.reserved {
            return Err(err(
                OP,
                format!("user [{username}] is reserved: only its password can be changed"),
            ));
        }
        tracing::debug!(
            username,
            with_password = password.is_some(),
            "putting an Elasticsearch user"
        );
        let body = PutUserBody {
            password,
            roles: &user.roles,
            full_name: user.full_name.as_deref(),
            email: user.email.as_deref(),
            metadata: writable_metadata(&user.metadata),
            enabled: user.enabled,
        };
        let security = self.admin.security();
        let result = async {
            let (status, reply) = self
                .send(OP, || {
                    security
                        .put_user(SecurityPutUserParts::Username(username))
                        .body(&body)
                        .send()
                })
                .await?;
            Self::expect_ok(OP, status, &reply)
                .map_err(|e| err(OP, format!("user [{username}]: {}", e.message)))
        }
        .await;
        result.map_err(|e| scrub(e, password))
    }

    async fn set_enabled(&self, username: &str, enabled: bool) -> Result<(), ProviderError> {
        tracing::debug!(
            username,
            enabled,
            "setting an Elasticsearch user's enabled flag"
        );
        let security = self.admin.security();
        let (op, (status, reply)) = if enabled {
            let op = "security.enable_user";
            let r = self
                .send(op, || {
                    security
                        .enable_user(SecurityEnableUserParts::Username(username))
                        .send()
                })
                .await?;
            (op, r)
        } else {
            let op = "security.disable_user";
            let r = self
                .send(op, || {
                    security
                        .disable_user(SecurityDisableUserParts::Username(username))
                        .send()
                })
                .await?;
            (op, r)
        };
        Self::expect_ok(op, status, &reply)
            .map_err(|e| err(op, format!("user [{username}]: {}", e.message)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_403_names_the_privilege_its_action_needs() {
        let r = |a: &str| format!("security_exception: action [{a}] is unauthorized for user [x]");
        assert_eq!(
            privilege_for(&r("cluster:admin/xpack/security/user/get")),
            "read_security (for cluster:admin/xpack/security/user/get)"
        );
        assert!(
            privilege_for(&r("cluster:admin/xpack/security/user/change_password"))
                .starts_with("manage_security")
        );
        assert!(privilege_for(&r("cluster:monitor/health")).starts_with("monitor"));
        assert!(privilege_for("no action named").contains("read_security"));
    }

    #[test]
    fn scrub_blanks_the_secret_out_of_an_error() {
        let pw = SecretString::from("hunter2-abcdef".to_owned());
        let e = err(
            "op",
            "HTTP 400: echoed hunter2-abcdef twice: hunter2-abcdef",
        );
        let e = scrub(e, Some(&pw));
        assert_eq!(e.message, "HTTP 400: echoed [redacted] twice: [redacted]");
        assert!(!e.to_string().contains("hunter2"));
        let untouched = scrub(err("op", "nothing to see"), Some(&pw));
        assert_eq!(untouched.message, "nothing to see");
    }

    #[test]
    fn bodies_carry_the_password_and_drop_reserved_metadata() {
        let pw = SecretString::from("s3cret-pw".to_owned());
        let body = serde_json::to_value(PasswordBody { password: &pw }).unwrap();
        assert_eq!(body, serde_json::json!({"password": "s3cret-pw"}));

        let mut metadata = Map::new();
        metadata.insert("_reserved".into(), Value::Bool(false));
        metadata.insert("team".into(), Value::from("catalogue"));
        let roles = vec!["catalogue_read".to_owned()];
        let without = PutUserBody {
            password: None,
            roles: &roles,
            full_name: Some("Search"),
            email: None,
            metadata: writable_metadata(&metadata),
            enabled: true,
        };
        assert_eq!(
            serde_json::to_value(&without).unwrap(),
            serde_json::json!({
                "roles": ["catalogue_read"], "full_name": "Search",
                "metadata": {"team": "catalogue"}, "enabled": true
            })
        );
        let with = PutUserBody {
            password: Some(&pw),
            ..without
        };
        assert_eq!(
            serde_json::to_value(&with).unwrap()["password"],
            "s3cret-pw"
        );
    }
}
