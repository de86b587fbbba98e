//! The narrow doors to the outside world. Everything that talks to
//! Elasticsearch, Secrets Manager or ECS lives here, behind three small traits,
//! so the stages after the snapshot (facts, rules, remedies) can be exercised
//! without a network and the providers can be proven against real wire
//! protocols (the ES double, ministack) in integration tests.
//!
//! Providers return this crate's own types, never SDK types, and count every
//! operation they make (see [`Calls`]) so a snapshot can report its cost.
//! Retries: the AWS SDK's standard retry mode (throttling and transient errors,
//! with backoff, bounded attempts); Elasticsearch calls get the same treatment
//! in [`elasticsearch`]. Throttled answers are counted too
//! ([`Calls::throttled`], counted by an interceptor on each AWS client), so a snapshot can say it
//! was slowed down; a [`Gate`] bounds the AWS requests in flight.
//!
//! Each service has a reader, used by the snapshot, and a writer, used only by
//! the remedies (rollback, redeploy). Every write sets a state rather than
//! applying a change (move this stage to that version, set this password,
//! set the desired count to N), so sending it twice — a retry whose first
//! attempt landed, a remedy resumed after a crash — ends in the same state.
//! The writers lean on that: they retry like the readers, and where the
//! service itself would reject a repeat (Secrets Manager refuses to move a
//! stage off a version that no longer carries it), they check the state first
//! and do nothing when it is already the one asked for.

// The traits are used with static dispatch inside one task (no `Send` bound
// is needed), which is the case the lint warns about not covering.
#![allow(async_fn_in_trait)]

pub mod aws;
pub mod discovery;
pub mod ecs;
pub mod elasticsearch;
pub mod paging;
pub mod secretsmanager;
pub mod targets;

use crate::model::snapshot::{
    ApiKeyState, ClusterHealth, EsUser, SecretVersionState, ServiceState, Timestamp,
};
use crate::model::{SecretArn, SecretName, ServiceRef};
use crate::progress::Progress;
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// A failed call to a provider, after retries. Messages come from the
/// services' error responses and never contain secret values.
#[derive(Debug, Error)]
#[error("{service} {operation} failed: {message}")]
pub struct ProviderError {
    pub service: &'static str,
    pub operation: String,
    pub message: String,
}

impl ProviderError {
    pub fn new(
        service: &'static str,
        operation: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            service,
            operation: operation.into(),
            message: message.into(),
        }
    }
}

/// Why a request got no answer, found by walking an error's chain of
/// sources (the clients wrap the cause several layers deep: hyper, the
/// connector, rustls, the resolver).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetCause {
    /// Nothing listens there (connection refused).
    Refused,
    /// The connection was cut (reset, broken pipe, closed early).
    Reset,
    /// The name does not resolve.
    Dns,
    /// The TLS handshake failed: not TLS at all (an `https://` URL to a
    /// plain HTTP server), or a certificate not trusted.
    Tls,
    /// The certificate was refused (unknown issuer, wrong name, expired).
    Certificate,
    /// No answer in time.
    Timeout,
}

impl NetCause {
    /// In words, for a message: "connection refused (nothing listens there)".
    pub fn words(self) -> &'static str {
        match self {
            NetCause::Refused => "connection refused: nothing listens at that address",
            NetCause::Reset => "the connection was reset or closed before an answer",
            NetCause::Dns => "the host name does not resolve (DNS)",
            NetCause::Tls => {
                "the TLS handshake failed: is the server speaking TLS (https:// to a plain http:// server fails this way)?"
            }
            NetCause::Certificate => {
                "the server's TLS certificate was not accepted (unknown issuer, wrong host name or expired)"
            }
            NetCause::Timeout => "no answer in time",
        }
    }
}

/// The network cause of `e`, if its chain of sources names one.
pub fn net_cause(e: &(dyn std::error::Error + 'static)) -> Option<NetCause> {
    let mut found = None;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::ConnectionRefused => return Some(NetCause::Refused),
                K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                    found = found.or(Some(NetCause::Reset))
                }
                K::TimedOut => found = found.or(Some(NetCause::Timeout)),
                _ => {}
            }
        }
        // The text of each layer, for the causes no type says portably
        // (hyper-util's connect error, rustls' errors inside io::Error).
        let text = err.to_string().to_ascii_lowercase();
        let named = if text.contains("connection refused") {
            Some(NetCause::Refused)
        } else if text.contains("certificate") || text.contains("unknownissuer") {
            Some(NetCause::Certificate)
        } else if text.contains("invalidcontenttype")
            || text.contains("corrupt message")
            || text.contains("tls handshake")
            || text.contains("handshake")
            || text.contains("wrong version number")
        {
            Some(NetCause::Tls)
        } else if text.contains("dns error")
            || text.contains("failed to lookup address")
            || text.contains("name or service not known")
            || text.contains("no such host")
        {
            Some(NetCause::Dns)
        } else if text.contains("connection reset") || text.contains("connection closed") {
            Some(NetCause::Reset)
        } else {
            None
        };
        // The deepest cause named wins over a vaguer outer one, a refused
        // connection over everything.
        if named.is_some() {
            found = named;
        }
        if found == Some(NetCause::Refused) {
            return found;
        }
        cur = err.source();
    }
    found
}

/// Operation counter shared by the providers of one snapshot: the calls
/// made, and the answers that said "slow down" (throttling, HTTP 429), which
/// the providers retry with backoff and a run reports. It also carries the
/// [`Progress`] handle the providers say their slow waits on (a listing's
/// pages), scoped to the phase being read ("before snapshot").
#[derive(Clone, Debug, Default)]
pub struct Calls(Arc<Mutex<Counts>>, Arc<Mutex<Progress>>);

#[derive(Debug, Default)]
struct Counts {
    calls: BTreeMap<String, u64>,
    throttled: BTreeMap<String, u64>,
}

impl Calls {
    /// Say progress on `progress` from now on.
    pub fn set_progress(&self, progress: Progress) {
        *self.1.lock().expect("progress lock") = progress;
    }
    /// Where to say what is being waited for (hidden unless set).
    pub fn progress(&self) -> Progress {
        self.1.lock().expect("progress lock").clone()
    }
    /// One call to `op` starts. The returned [`Call`] logs it when it ends
    /// (`-v`): its duration and what it answered.
    pub fn hit(&self, op: &str) -> Call {
        *self
            .0
            .lock()
            .expect("calls lock")
            .calls
            .entry(op.to_owned())
            .or_default() += 1;
        Call {
            op: op.to_owned(),
            started: std::time::Instant::now(),
            result: None,
        }
    }
    /// One throttled answer (the request is retried with backoff).
    pub fn throttled(&self, service: &str) {
        tracing::debug!(service, "throttled; backing off");
        *self
            .0
            .lock()
            .expect("calls lock")
            .throttled
            .entry(service.to_owned())
            .or_default() += 1;
    }
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().expect("calls lock").calls.clone()
    }
    /// Throttled answers by service since the last reset.
    pub fn throttles(&self) -> BTreeMap<String, u64> {
        self.0.lock().expect("calls lock").throttled.clone()
    }
    pub fn reset(&self) {
        let mut c = self.0.lock().expect("calls lock");
        c.calls.clear();
        c.throttled.clear();
    }
    pub fn total(&self) -> u64 {
        self.0.lock().expect("calls lock").calls.values().sum()
    }
}

/// One API call in flight; logged when dropped (`-v`): the operation, how
/// long it took, retries included, and what it answered ("100 secrets",
/// "HTTP 200"), or that it failed (the error itself is said where it is
/// handled). Never a value.
#[must_use = "the call is logged when this is dropped"]
pub struct Call {
    op: String,
    started: std::time::Instant,
    result: Option<String>,
}

impl Call {
    /// What the call answered, in words ("12 services").
    pub fn done(mut self, result: impl std::fmt::Display) {
        self.result = Some(result.to_string());
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let ms = self.started.elapsed().as_millis() as u64;
        let result = self.result.as_deref().unwrap_or("failed");
        tracing::debug!(ms, result, call = %self.op, "API call");
    }
}

/// At most N AWS requests in flight per client set (`[aws] max_concurrency`):
/// every independent read of a snapshot is started at once, and this is what
/// keeps them from exceeding what the account's rate limits allow.
#[derive(Clone, Debug)]
pub struct Gate(Arc<tokio::sync::Semaphore>);

impl Gate {
    pub fn new(max: usize) -> Gate {
        Gate(Arc::new(tokio::sync::Semaphore::new(max.max(1))))
    }
    /// Wait for a slot; the request runs while the permit lives.
    pub async fn slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.0.acquire().await.expect("the gate is never closed")
    }
}

impl Default for Gate {
    fn default() -> Gate {
        Gate::new(crate::config::DEFAULT_AWS_MAX_CONCURRENCY)
    }
}

/// A task definition as far as opsguard cares: containers and where their
/// variables come from. Environment values stay in memory (the username of a
/// credential may be plain text); they are never serialised.
#[derive(Clone)]
pub struct TaskDefinition {
    pub arn: String,
    pub family: String,
    pub revision: i32,
    pub containers: Vec<Container>,
}

#[derive(Clone)]
pub struct Container {
    pub name: String,
    /// `(env name, valueFrom)`.
    pub secrets: Vec<(String, String)>,
    /// `(env name, value)`.
    pub environment: Vec<(String, String)>,
}

pub trait EcsReader {
    /// Fails unless every named cluster exists and is active: a config that
    /// names a cluster that is not there must not pass as "nothing to watch".
    async fn check_clusters(&self, clusters: &[String]) -> Result<(), ProviderError>;
    /// Every service of a cluster with its deployments and its running (or
    /// about-to-run, or still-draining) tasks.
    async fn services(&self, cluster: &str) -> Result<Vec<ServiceState>, ProviderError>;
    async fn task_definition(&self, arn: &str) -> Result<TaskDefinition, ProviderError>;
}

/// What DescribeSecret, or one entry of a ListSecrets page, says about one
/// secret.
#[derive(Clone, Debug)]
pub struct SecretMeta {
    pub arn: SecretArn,
    pub name: SecretName,
    pub created_date: Option<Timestamp>,
    pub last_changed_date: Option<Timestamp>,
    pub deleted_date: Option<Timestamp>,
    pub version_stages: BTreeMap<String, Vec<String>>,
}

/// One secret version's value, held in memory only, with what the same
/// answer says about the version.
pub struct SecretValue {
    pub name: SecretName,
    pub version_id: String,
    pub value: SecretString,
    pub created_date: Option<Timestamp>,
    pub stages: Vec<String>,
}

/// What a snapshot looks secrets up by: the names of Parameter Store style
/// references and the (full or partial) ARNs of ARN references.
#[derive(Clone, Debug, Default)]
pub struct Wanted {
    pub names: std::collections::BTreeSet<String>,
    pub arns: std::collections::BTreeSet<String>,
}

/// A secret ARN without the `-AbCdEf` suffix AWS appends to the name: the
/// partial ARN a task definition may use.
pub fn arn_without_suffix(arn: &str) -> &str {
    match arn.len().checked_sub(7) {
        Some(i) if arn.is_char_boundary(i) && arn[i..].starts_with('-') => &arn[..i],
        _ => arn,
    }
}

/// What BatchGetSecretValue answered for a set of secrets.
#[derive(Default)]
pub struct CurrentValues {
    pub values: Vec<SecretValue>,
    /// Secrets the batch could not read because they are gone or scheduled
    /// for deletion (perhaps since they were listed): ask DescribeSecret.
    pub unreadable: Vec<SecretName>,
}

pub trait SecretsReader {
    /// The id to look a reference up by first: its name, as well as the text
    /// can tell (see [`SecretRef::name_guess`]); a multi-account router
    /// qualifies it with the target of the reference's account.
    fn locate(&self, r: &crate::model::SecretRef) -> String {
        r.name_guess()
    }

    /// `None` when no such secret exists.
    async fn describe(&self, secret_id: &str) -> Result<Option<SecretMeta>, ProviderError>;
    /// ListSecrets, 100 a page, secrets scheduled for deletion included:
    /// names, ARNs, stage maps and dates of every secret at once. Paging may
    /// start before the caller knows what it wants; once `wanted()` says,
    /// it stops as soon as all of that was seen.
    async fn list(
        &self,
        wanted: &dyn Fn() -> Option<Wanted>,
    ) -> Result<Vec<SecretMeta>, ProviderError>;
    /// Every version (ListSecretVersionIds, deprecated ones included), with
    /// created dates: the full history, read only where it is needed.
    async fn versions(&self, name: &SecretName) -> Result<Vec<SecretVersionState>, ProviderError>;
    /// AWSCURRENT values, batched (at most 20 a call, as AWS allows), with
    /// their version ids, stages and created dates.
    async fn current_values(&self, names: &[SecretName]) -> Result<CurrentValues, ProviderError>;
    /// A pinned version, by id or stage. `None` when it does not exist.
    async fn value_at(
        &self,
        name: &SecretName,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> Result<Option<SecretValue>, ProviderError>;
}

/// The write side of Secrets Manager, for rollback.
pub trait SecretsWriter {
    /// UpdateSecretVersionStage: move AWSCURRENT to `to_version`, removing it
    /// from `from_version` (AWS requires RemoveFromVersionId when the stage is
    /// attached elsewhere). Idempotent: if AWSCURRENT is already on
    /// `to_version`, nothing is sent. Refuses, without acting, when AWSCURRENT
    /// is on neither version (the secret changed again since the snapshot
    /// named `from_version`) or the secret is scheduled for deletion.
    async fn move_current(
        &self,
        name: &SecretName,
        to_version: &str,
        from_version: &str,
    ) -> Result<(), ProviderError>;
    /// RestoreSecret: cancel a scheduled deletion. Idempotent: a secret that
    /// is not scheduled for deletion is left alone.
    async fn restore_secret(&self, name: &SecretName) -> Result<(), ProviderError>;
}

/// What `GET /` says.
#[derive(Clone, Debug)]
pub struct ClusterInfo {
    pub cluster_name: String,
    pub cluster_uuid: String,
    pub version: String,
}

/// Credentials to probe with.
pub enum ProbeAuth {
    Basic {
        username: String,
        password: SecretString,
    },
    /// `base64(id:key)`, as the `ApiKey` authorization scheme wants it.
    ApiKey { encoded: SecretString },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    Authenticated {
        username: String,
    },
    /// A 401, with Elasticsearch's reason (it names the user, never the password).
    Rejected {
        reason: String,
    },
}

pub trait EsReader {
    async fn cluster_info(&self) -> Result<ClusterInfo, ProviderError>;
    async fn health(&self) -> Result<ClusterHealth, ProviderError>;
    /// All users, in one `GET /_security/user`.
    async fn users(&self) -> Result<Vec<EsUser>, ProviderError>;
    async fn api_key(&self, id: &str) -> Result<ApiKeyState, ProviderError>;
    /// `GET /_security/_authenticate` with the given credentials.
    async fn authenticate(&self, auth: &ProbeAuth) -> Result<ProbeOutcome, ProviderError>;
}

/// The write side of Elasticsearch's user API, for rollback. Passwords are
/// exposed only while the request body is serialised, and scrubbed from any
/// error text that might echo them.
pub trait EsWriter {
    /// `POST /_security/user/{name}/_password`
    async fn set_password(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<(), ProviderError>;
    /// `PUT /_security/user/{name}` with roles, full_name, email, metadata
    /// (minus reserved `_` keys) and enabled from `user`; with `password` when
    /// given (recreating a deleted user), without it otherwise (the password
    /// is kept). Refuses reserved users (only their password can change).
    async fn put_user(
        &self,
        user: &EsUser,
        password: Option<&SecretString>,
    ) -> Result<(), ProviderError>;
    /// `/_security/user/{name}/_enable` or `/_disable` (Elasticsearch takes
    /// PUT or POST; the client sends POST).
    async fn set_enabled(&self, username: &str, enabled: bool) -> Result<(), ProviderError>;
}

/// The write side of ECS, for rollback (desired count) and redeploy.
pub trait EcsWriter {
    /// UpdateService with `desiredCount`. A negative count is refused
    /// without a call.
    async fn set_desired_count(
        &self,
        service: &ServiceRef,
        desired: i32,
    ) -> Result<(), ProviderError>;
    /// UpdateService with `forceNewDeployment`: every task is replaced by one
    /// started after the call, on the same task definition.
    async fn force_new_deployment(&self, service: &ServiceRef) -> Result<(), ProviderError>;
    /// One service with its deployments and its running (or about-to-run, or
    /// still-draining) tasks — DescribeServices + ListTasks(serviceName) +
    /// DescribeTasks — for waiting on a rollout. `consumes` is left empty
    /// (that is the snapshot's credential graph). Err if the service does not
    /// exist or was deleted.
    async fn service(&self, service: &ServiceRef) -> Result<ServiceState, ProviderError>;
}

/// Ids in batches of at most `max` (the API's limit), at most `concurrency`
/// batches in flight, results flattened. Fails with the first failed batch.
pub(crate) async fn in_batches<T, F, Fut>(
    ids: Vec<String>,
    max: usize,
    concurrency: usize,
    call: F,
) -> Result<Vec<T>, ProviderError>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, ProviderError>>,
{
    use futures::stream::{self, StreamExt, TryStreamExt};
    let chunks: Vec<Vec<String>> = ids.chunks(max).map(<[String]>::to_vec).collect();
    let batches: Vec<Vec<T>> = stream::iter(chunks)
        .map(call)
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    Ok(batches.into_iter().flatten().collect())
}

/// Convert an AWS timestamp.
pub(crate) fn aws_time(t: Option<&aws_smithy_types::DateTime>) -> Option<Timestamp> {
    let t = t?;
    let nanos = i128::from(t.secs()) * 1_000_000_000 + i128::from(t.subsec_nanos());
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}
