//! Loading AWS configuration: the standard chain (env, profiles, SSO, IMDS),
//! with the config file's region, endpoint and profile on top, and bounded
//! retries and timeouts so no call can hang a pre-flight check forever.

use super::ProviderError;
use crate::config::AwsConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use std::time::Duration;

/// The budget of one AWS call, for the words of a timeout: the SDK's own
/// ("timeout", "dispatch failure") name neither the wait nor the setting.
static BUDGET_SECS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(60);
/// The endpoint override, for the words of an unreachable endpoint: `Some`
/// while every loaded config names the same one (targets with different
/// endpoints leave it unsaid rather than name the wrong one).
static ENDPOINT: std::sync::Mutex<Option<(String, bool)>> = std::sync::Mutex::new(None);
/// The SDK's attempts at one call (standard retry mode).
const ATTEMPTS: u32 = 5;
/// How long the SDK waits to connect before it gives up on an attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn sdk_config(cfg: &AwsConfig) -> Result<SdkConfig, ProviderError> {
    // The longest one call may take, its retries included.
    let budget = cfg.timeout.unwrap_or(Duration::from_secs(60));
    BUDGET_SECS.store(budget.as_secs(), std::sync::atomic::Ordering::Relaxed);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(100))
                .with_max_backoff(Duration::from_secs(5)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(budget.min(Duration::from_secs(20)))
                .operation_timeout(budget)
                .build(),
        );
    if let Some(p) = &cfg.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &cfg.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(e) = &cfg.endpoint_url {
        let mut known = ENDPOINT.lock().unwrap_or_else(|p| p.into_inner());
        *known = match known.take() {
            None => Some((e.clone(), true)),
            Some((was, same)) => {
                let same = same && &was == e;
                Some((was, same))
            }
        };
        drop(known);
        loader = loader.endpoint_url(e);
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(ProviderError::new(
            "aws",
            "configuration",
            "no AWS region: set [aws] region in the config, or AWS_REGION",
        ));
    }
    Ok(sdk)
}

/// The full text of an SDK error (its `Display` alone is often just "service error").
pub(crate) fn describe_err<E: std::error::Error + 'static>(e: &E) -> String {
    aws_sdk_ecs::error::DisplayErrorContext(e).to_string()
}

/// `Code: message` of a service's error answer, as the service worded it;
/// the full context (see [`describe_err`]) for anything else (a timeout, a
/// refused connection), where the chain of causes is the useful part. The
/// full context of a service error also dumps the raw HTTP response, which
/// says nothing more and buries the message.
pub(crate) fn sdk_err<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let budget = BUDGET_SECS.load(std::sync::atomic::Ordering::Relaxed);
    match e {
        SdkError::TimeoutError(_) => {
            return format!(
                "timed out after {budget} s waiting for AWS to answer (retries included; [aws] timeout_seconds): is the endpoint frozen, or the network dropping packets?"
            )
        }
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            return format!(
                "timed out connecting to AWS ({} s per try): is the endpoint reachable from here?",
                CONNECT_TIMEOUT.as_secs()
            )
        }
        _ => {}
    }
    let endpoint = match &*ENDPOINT.lock().unwrap_or_else(|p| p.into_inner()) {
        Some((e, true)) => format!(" ({})", crate::report::escape::line(e, 256)),
        _ => String::new(),
    };
    if let SdkError::DispatchFailure(_) = e {
        if let Some(cause) = super::net_cause(e) {
            let check = match cause {
                super::NetCause::Tls | super::NetCause::Certificate => {
                    "check [aws] endpoint_url (http:// or https://) and the CA bundle (AWS_CA_BUNDLE)"
                }
                super::NetCause::Dns => "check [aws] endpoint_url and [aws] region",
                _ => "check [aws] endpoint_url and that the endpoint runs",
            };
            return format!(
                "cannot reach AWS{endpoint}: {} (retried, up to {ATTEMPTS} tries); {check}",
                cause.words()
            );
        }
    }
    let text = match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => describe_err(e),
    };
    let lower = text.to_ascii_lowercase();
    let next = match e.code().unwrap_or("") {
        "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" => {
            " — the AWS identity lacks this permission (1 try): add the action to its IAM policy; README.md lists what opsguard needs under \"IAM permissions\"".to_owned()
        }
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired" => {
            " — the AWS credentials have expired: refresh them (`aws sso login`, or new keys) and try again".to_owned()
        }
        "UnrecognizedClientException" | "InvalidClientTokenId" | "InvalidSignatureException"
        | "SignatureDoesNotMatch" | "IncompleteSignature" => format!(
            " — the AWS credentials are not valid here: check AWS_PROFILE / AWS_ACCESS_KEY_ID or [aws] profile, and [aws] region and endpoint_url{endpoint}"
        ),
        _ if lower.contains("no credentials") || lower.contains("credentials provider") || lower.contains("credentialsnotloaded") => {
            " — no AWS credentials were found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or [aws] profile".to_owned()
        }
        "InternalFailure" | "InternalServiceError" | "InternalServiceErrorException"
        | "ServiceUnavailable" | "ServiceUnavailableException" | "ServerException" => format!(
            " — a fault on AWS's side (retried, up to {ATTEMPTS} tries, with backoff); try again later"
        ),
        _ => String::new(),
    };
    format!("{text}{next}")
}

/// Counts the answers that said "slow down" — HTTP 429, or an error code such
/// as `ThrottlingException` — on one client. The SDK's standard retry mode
/// already retries them with backoff (see [`sdk_config`]); this only lets the
/// snapshot say that it happened, so a user knows to lower
/// `[aws] max_concurrency` or to expect slower runs.
#[derive(Debug)]
pub(crate) struct ThrottleCounter {
    calls: super::Calls,
    service: &'static str,
}

impl ThrottleCounter {
    pub(crate) fn new(calls: super::Calls, service: &'static str) -> Self {
        Self { calls, service }
    }
}

impl aws_sdk_ecs::config::Intercept for ThrottleCounter {
    fn name(&self) -> &'static str {
        "opsguard::ThrottleCounter"
    }

    fn read_after_deserialization(
        &self,
        ctx: &aws_sdk_ecs::config::interceptors::AfterDeserializationInterceptorContextRef<'_>,
        _rc: &aws_sdk_ecs::config::RuntimeComponents,
        _cfg: &mut aws_sdk_ecs::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let r = ctx.response();
        // -vv: every attempt (a retry is a second line), with the request id
        // AWS support asks for.
        tracing::trace!(
            service = self.service,
            status = r.status().as_u16(),
            request_id = r
                .headers()
                .get("x-amzn-requestid")
                .or_else(|| r.headers().get("x-amz-request-id"))
                .unwrap_or("-"),
            "AWS answered"
        );
        let header = r.headers().get("x-amzn-errortype");
        if is_throttle(r.status().as_u16(), header, r.body().bytes()) {
            self.calls.throttled(self.service);
        }
        Ok(())
    }
}

/// Whether an AWS answer is a throttling error: 429, or a 4xx whose error
/// type (header, or `__type`/`code` in the JSON body) names throttling.
pub(crate) fn is_throttle(status: u16, error_type: Option<&str>, body: Option<&[u8]>) -> bool {
    const NAMES: [&str; 5] = [
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
    ];
    if status == 429 {
        return true;
    }
    if !(400..500).contains(&status) {
        return false;
    }
    // `aws.protocoltests#Code:namespace` or `namespace#Code`: the bare code.
    let bare = |t: &str| -> String {
        let t = t.split(':').next().unwrap_or(t);
        t.rsplit('#').next().unwrap_or(t).to_owned()
    };
    if error_type.is_some_and(|t| NAMES.contains(&bare(t).as_str())) {
        return true;
    }
    let Some(body) = body else { return false };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    ["__type", "code", "Code"]
        .iter()
        .filter_map(|k| v.get(*k).and_then(|x| x.as_str()))
        .any(|t| NAMES.contains(&bare(t).as_str()))
}

#[cfg(test)]
mod tests {
    use super::is_throttle;

    #[test]
    fn throttling_answers_are_recognised() {
        assert!(is_throttle(429, None, None));
        assert!(is_throttle(
            400,
            None,
            Some(br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#)
        ));
        assert!(is_throttle(
            400,
            None,
            Some(br#"{"__type":"com.amazonaws.ecs#ThrottlingException"}"#)
        ));
        assert!(is_throttle(
            400,
            Some("ThrottlingException:http://internal.amazon.com/coral/"),
            None
        ));
        assert!(!is_throttle(
            400,
            None,
            Some(br#"{"__type":"ResourceNotFoundException"}"#)
        ));
        assert!(!is_throttle(500, Some("ThrottlingException"), None));
        assert!(!is_throttle(200, None, Some(b"Throttling")));
    }
}
