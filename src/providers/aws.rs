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

pub async fn sdk_config(cfg: &AwsConfig) -> Result<SdkConfig, ProviderError> {
    // The longest one call may take, its retries included.
    let budget = cfg.timeout.unwrap_or(Duration::from_secs(60));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(100))
                .with_max_backoff(Duration::from_secs(5)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
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
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => describe_err(e),
    }
}
