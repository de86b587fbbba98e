//! Secrets Manager: reads for the snapshot, two writes for rollback (move
//! AWSCURRENT back, cancel a scheduled deletion).
//!
//! Secrets are addressed by name once resolved: names are unique per account
//! and region, and a lookup by ARN makes the service scan (ministack does so
//! literally, real AWS parses it). Values are fetched in batches of 20 with
//! BatchGetSecretValue — AWS's limit — and land in `SecretString` at once.

use super::aws::sdk_err;
use super::in_batches;
use super::{
    aws_time, Calls, ProviderError, SecretMeta, SecretValue, SecretsReader, SecretsWriter,
};
use crate::model::{SecretArn, SecretName};
use crate::snapshot::model::SecretVersionState;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use secrecy::SecretString;

const BATCH_MAX: usize = 20;
const SERVICE: &str = "Secrets Manager";
const AWSCURRENT: &str = "AWSCURRENT";
const CONCURRENCY: usize = 4;

pub struct AwsSecrets {
    client: aws_sdk_secretsmanager::Client,
    calls: Calls,
}

impl AwsSecrets {
    pub fn new(sdk: &aws_config::SdkConfig, calls: Calls) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(sdk),
            calls,
        }
    }

    fn err<E, R>(op: &str, e: SdkError<E, R>) -> ProviderError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        ProviderError::new(SERVICE, op, sdk_err(&e))
    }

    /// DescribeSecret for a write: the secret must exist.
    async fn meta_for(&self, name: &SecretName, op: &str) -> Result<SecretMeta, ProviderError> {
        self.describe(name.as_str())
            .await?
            .ok_or_else(|| ProviderError::new(SERVICE, op, format!("secret {name} does not exist")))
    }
}

/// The version AWSCURRENT is attached to, per DescribeSecret.
fn current_version(meta: &SecretMeta) -> Option<&str> {
    meta.version_stages
        .iter()
        .find(|(_, stages)| stages.iter().any(|s| s == AWSCURRENT))
        .map(|(v, _)| v.as_str())
}

/// Secret values are text for every credential opsguard understands; a binary
/// secret that is valid UTF-8 is taken as text, any other is left unread.
fn to_secret(s: Option<&str>, b: Option<&aws_smithy_types::Blob>) -> Option<SecretString> {
    match (s, b) {
        (Some(s), _) => Some(SecretString::from(s.to_owned())),
        (None, Some(b)) => std::str::from_utf8(b.as_ref())
            .ok()
            .map(|s| SecretString::from(s.to_owned())),
        _ => None,
    }
}

impl SecretsReader for AwsSecrets {
    async fn describe(&self, secret_id: &str) -> Result<Option<SecretMeta>, ProviderError> {
        self.calls.hit("secretsmanager:DescribeSecret");
        let out = match self
            .client
            .describe_secret()
            .secret_id(secret_id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                if let Some(DescribeSecretError::ResourceNotFoundException(_)) =
                    e.as_service_error()
                {
                    return Ok(None);
                }
                return Err(Self::err("DescribeSecret", e));
            }
        };
        let (Some(arn), Some(name)) = (out.arn(), out.name()) else {
            return Err(ProviderError::new(
                SERVICE,
                "DescribeSecret",
                format!("{secret_id}: response carries no ARN or name"),
            ));
        };
        Ok(Some(SecretMeta {
            arn: SecretArn::new(arn),
            name: SecretName::new(name),
            created_date: aws_time(out.created_date()),
            last_changed_date: aws_time(out.last_changed_date()),
            deleted_date: aws_time(out.deleted_date()),
            version_stages: out
                .version_ids_to_stages()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        }))
    }

    async fn versions(&self, name: &SecretName) -> Result<Vec<SecretVersionState>, ProviderError> {
        let mut versions = Vec::new();
        let mut pages = self
            .client
            .list_secret_version_ids()
            .secret_id(name.as_str())
            // A version that lost its last stage is "deprecated" and hidden by
            // default, but still readable by id: a rollback may need it.
            .include_deprecated(true)
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            self.calls.hit("secretsmanager:ListSecretVersionIds");
            let page = page.map_err(|e| Self::err("ListSecretVersionIds", e))?;
            for v in page.versions() {
                let mut stages = v.version_stages().to_vec();
                stages.sort();
                versions.push(SecretVersionState {
                    version_id: v.version_id().unwrap_or_default().to_owned(),
                    stages,
                    created_date: aws_time(v.created_date()),
                    fingerprint: None,
                });
            }
        }
        versions.sort_by(|a, b| {
            a.created_date
                .cmp(&b.created_date)
                .then_with(|| a.version_id.cmp(&b.version_id))
        });
        Ok(versions)
    }

    async fn current_values(
        &self,
        names: &[SecretName],
    ) -> Result<Vec<SecretValue>, ProviderError> {
        let ids = names.iter().map(|n| n.as_str().to_owned()).collect();
        in_batches(ids, BATCH_MAX, CONCURRENCY, |chunk| async move {
            self.calls.hit("secretsmanager:BatchGetSecretValue");
            let out = self
                .client
                .batch_get_secret_value()
                .set_secret_id_list(Some(chunk))
                .send()
                .await
                .map_err(|e| Self::err("BatchGetSecretValue", e))?;
            if let Some(e) = out
                .errors()
                .iter()
                .find(|e| e.error_code() != Some("ResourceNotFoundException"))
            {
                return Err(ProviderError::new(
                    SERVICE,
                    "BatchGetSecretValue",
                    format!(
                        "{}: {} {}",
                        e.secret_id().unwrap_or("?"),
                        e.error_code().unwrap_or("?"),
                        e.message().unwrap_or("")
                    ),
                ));
            }
            Ok(out
                .secret_values()
                .iter()
                .filter_map(|v| {
                    Some(SecretValue {
                        name: SecretName::new(v.name()?),
                        version_id: v.version_id()?.to_owned(),
                        value: to_secret(v.secret_string(), v.secret_binary())?,
                    })
                })
                .collect())
        })
        .await
    }

    async fn value_at(
        &self,
        name: &SecretName,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> Result<Option<SecretValue>, ProviderError> {
        self.calls.hit("secretsmanager:GetSecretValue");
        let res = self
            .client
            .get_secret_value()
            .secret_id(name.as_str())
            .set_version_id(version_id.map(str::to_owned))
            .set_version_stage(version_stage.map(str::to_owned))
            .send()
            .await;
        let out = match res {
            Ok(out) => out,
            Err(e) => {
                if let Some(GetSecretValueError::ResourceNotFoundException(_)) =
                    e.as_service_error()
                {
                    return Ok(None);
                }
                return Err(Self::err("GetSecretValue", e));
            }
        };
        Ok((|| {
            Some(SecretValue {
                name: SecretName::new(out.name()?),
                version_id: out.version_id()?.to_owned(),
                value: to_secret(out.secret_string(), out.secret_binary())?,
            })
        })())
    }
}

impl SecretsWriter for AwsSecrets {
    async fn move_current(
        &self,
        name: &SecretName,
        to_version: &str,
        from_version: &str,
    ) -> Result<(), ProviderError> {
        const OP: &str = "UpdateSecretVersionStage";
        // The service is not idempotent here: a repeat of a move that landed
        // is refused ("AWSCURRENT is not attached to version FROM"). So look
        // first, and say what is wrong in our own words before it does.
        let meta = self.meta_for(name, OP).await?;
        if meta.deleted_date.is_some() {
            return Err(ProviderError::new(
                SERVICE,
                OP,
                format!(
                    "secret {name} is scheduled for deletion: restore it before moving AWSCURRENT"
                ),
            ));
        }
        let remove_from = match current_version(&meta) {
            Some(v) if v == to_version => {
                tracing::debug!(secret = %name, version = to_version, "AWSCURRENT already on the version; nothing to move");
                return Ok(());
            }
            Some(v) if v != from_version => {
                return Err(ProviderError::new(
                    SERVICE,
                    OP,
                    format!(
                        "secret {name}: AWSCURRENT is on version {v}, not on {from_version} as expected \
                         (the secret changed again); not moving it to {to_version}"
                    ),
                ));
            }
            // On `from_version`, or (never seen on AWS) on no version at all.
            current => current.map(str::to_owned),
        };
        tracing::debug!(secret = %name, to = to_version, from = ?remove_from, "moving AWSCURRENT");
        self.calls.hit("secretsmanager:UpdateSecretVersionStage");
        let res = self
            .client
            .update_secret_version_stage()
            .secret_id(name.as_str())
            .version_stage(AWSCURRENT)
            .move_to_version_id(to_version)
            .set_remove_from_version_id(remove_from)
            .send()
            .await;
        if let Err(e) = res {
            // The SDK retries transient failures; if an earlier attempt landed,
            // the retry is refused although the stage is where it was asked to be.
            if let Ok(meta) = self.meta_for(name, OP).await {
                if current_version(&meta) == Some(to_version) {
                    return Ok(());
                }
            }
            return Err(ProviderError::new(
                SERVICE,
                OP,
                format!(
                    "secret {name}: moving AWSCURRENT to version {to_version}: {}",
                    sdk_err(&e)
                ),
            ));
        }
        Ok(())
    }

    async fn restore_secret(&self, name: &SecretName) -> Result<(), ProviderError> {
        const OP: &str = "RestoreSecret";
        // RestoreSecret on a secret that is not scheduled for deletion is an
        // InvalidRequestException, so look first.
        let meta = self.meta_for(name, OP).await?;
        if meta.deleted_date.is_none() {
            tracing::debug!(secret = %name, "not scheduled for deletion; nothing to restore");
            return Ok(());
        }
        tracing::debug!(secret = %name, "cancelling the scheduled deletion");
        self.calls.hit("secretsmanager:RestoreSecret");
        if let Err(e) = self
            .client
            .restore_secret()
            .secret_id(name.as_str())
            .send()
            .await
        {
            if let Ok(meta) = self.meta_for(name, OP).await {
                if meta.deleted_date.is_none() {
                    return Ok(());
                }
            }
            return Err(ProviderError::new(
                SERVICE,
                OP,
                format!("secret {name}: {}", sdk_err(&e)),
            ));
        }
        Ok(())
    }
}
