//! Secrets Manager: reads for the snapshot, two writes for rollback (move
//! AWSCURRENT back, cancel a scheduled deletion).
//!
//! Secrets are addressed by name once resolved: names are unique per account
//! and region, and a lookup by ARN makes the service scan (ministack does so
//! literally, real AWS parses it). Values are fetched in batches of 20 with
//! BatchGetSecretValue — AWS's limit — and land in `SecretString` at once.

use super::aws::{sdk_err, ThrottleCounter};
use super::in_batches;
use super::paging::all_pages;
use super::{
    aws_time, Calls, CurrentValues, Gate, ProviderError, SecretMeta, SecretValue, SecretsReader,
    SecretsWriter, Wanted,
};
use crate::model::snapshot::SecretVersionState;
use crate::model::{SecretArn, SecretName};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use secrecy::SecretString;

const BATCH_MAX: usize = 20;
const LIST_PAGE_MAX: i32 = 100;
const SERVICE: &str = "Secrets Manager";
const AWSCURRENT: &str = "AWSCURRENT";

pub struct AwsSecrets {
    client: aws_sdk_secretsmanager::Client,
    calls: Calls,
    gate: Gate,
}

impl AwsSecrets {
    pub fn new(sdk: &aws_config::SdkConfig, calls: Calls) -> Self {
        let conf = aws_sdk_secretsmanager::config::Builder::from(sdk)
            .interceptor(ThrottleCounter::new(calls.clone(), "secretsmanager"))
            .build();
        Self {
            client: aws_sdk_secretsmanager::Client::from_conf(conf),
            calls,
            gate: Gate::default(),
        }
    }

    /// Share a bound on requests in flight with other clients.
    pub fn with_gate(mut self, gate: Gate) -> Self {
        self.gate = gate;
        self
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

fn sorted(stages: &[String]) -> Vec<String> {
    let mut v = stages.to_vec();
    v.sort();
    v
}

/// Watches ListSecrets pages go by for the secrets a snapshot wants, once it
/// knows which (the task definitions name them): paging can stop when all
/// were seen.
#[derive(Default)]
struct Lookout {
    seen_names: std::collections::HashSet<String>,
    seen_arns: std::collections::HashSet<String>,
    /// Wanted and not seen yet, once the wanted set is known.
    missing: Option<(
        std::collections::HashSet<String>,
        std::collections::HashSet<String>,
    )>,
}

impl Lookout {
    fn seen_all(&mut self, page: &[SecretMeta], wanted: &dyn Fn() -> Option<Wanted>) -> bool {
        match &mut self.missing {
            Some((names, arns)) => {
                for m in page {
                    names.remove(m.name.as_str());
                    arns.remove(m.arn.as_str());
                    arns.remove(super::arn_without_suffix(m.arn.as_str()));
                }
            }
            None => {
                for m in page {
                    self.seen_names.insert(m.name.as_str().to_owned());
                    self.seen_arns.insert(m.arn.as_str().to_owned());
                    self.seen_arns
                        .insert(super::arn_without_suffix(m.arn.as_str()).to_owned());
                }
                if let Some(w) = wanted() {
                    let names = w.names.into_iter().filter(|n| !self.seen_names.contains(n));
                    let arns = w.arns.into_iter().filter(|a| !self.seen_arns.contains(a));
                    self.missing = Some((names.collect(), arns.collect()));
                    self.seen_names = Default::default();
                    self.seen_arns = Default::default();
                }
            }
        }
        matches!(&self.missing, Some((n, a)) if n.is_empty() && a.is_empty())
    }
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
        let _slot = self.gate.slot().await;
        let call = self.calls.hit("secretsmanager:DescribeSecret");
        let out = match self
            .client
            .describe_secret()
            .secret_id(secret_id)
            .send()
            .await
        {
            Ok(out) => {
                call.done("1 secret");
                out
            }
            Err(e) => {
                if let Some(DescribeSecretError::ResourceNotFoundException(_)) =
                    e.as_service_error()
                {
                    call.done("no such secret");
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

    async fn list(
        &self,
        wanted: &dyn Fn() -> Option<Wanted>,
    ) -> Result<Vec<SecretMeta>, ProviderError> {
        let mut lookout = Lookout::default();
        let step = self.calls.progress().step("listing secrets");
        let mut page_no = 0u64;
        all_pages("Secrets Manager", "ListSecrets", async |token| {
            page_no += 1;
            step.say(format!("(page {page_no})"));
            let page = {
                let _slot = self.gate.slot().await;
                let call = self.calls.hit("secretsmanager:ListSecrets");
                let page = self
                    .client
                    .list_secrets()
                    // A secret scheduled for deletion is still referenced,
                    // and its deletion is what the rules must see.
                    .include_planned_deletion(true)
                    .max_results(LIST_PAGE_MAX)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| Self::err("ListSecrets", e))?;
                call.done(format_args!(
                    "{} secrets, page {page_no}{}",
                    page.secret_list().len(),
                    if page.next_token().is_some() {
                        ", more pages"
                    } else {
                        ""
                    }
                ));
                page
            };
            let found: Vec<SecretMeta> = page
                .secret_list()
                .iter()
                .filter_map(|e| {
                    Some(SecretMeta {
                        arn: SecretArn::new(e.arn()?),
                        name: SecretName::new(e.name()?),
                        created_date: aws_time(e.created_date()),
                        last_changed_date: aws_time(e.last_changed_date()),
                        deleted_date: aws_time(e.deleted_date()),
                        version_stages: e
                            .secret_versions_to_stages()
                            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                            .unwrap_or_default(),
                    })
                })
                .collect();
            // Stop early once every wanted secret has been seen.
            let next = page
                .next_token()
                .filter(|_| !lookout.seen_all(&found, wanted))
                .map(str::to_owned);
            Ok((found, next))
        })
        .await
    }

    async fn versions(&self, name: &SecretName) -> Result<Vec<SecretVersionState>, ProviderError> {
        let mut versions = all_pages("Secrets Manager", "ListSecretVersionIds", async |token| {
            let _slot = self.gate.slot().await;
            let call = self.calls.hit("secretsmanager:ListSecretVersionIds");
            let page = self
                .client
                .list_secret_version_ids()
                .secret_id(name.as_str())
                // A version that lost its last stage is "deprecated" and hidden by
                // default, but still readable by id: a rollback may need it.
                .include_deprecated(true)
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| Self::err("ListSecretVersionIds", e))?;
            call.done(format_args!("{} versions", page.versions().len()));
            let versions = page
                .versions()
                .iter()
                .map(|v| {
                    let mut stages = v.version_stages().to_vec();
                    stages.sort();
                    SecretVersionState {
                        version_id: v.version_id().unwrap_or_default().to_owned(),
                        stages,
                        created_date: aws_time(v.created_date()),
                        fingerprint: None,
                    }
                })
                .collect();
            Ok((versions, page.next_token().map(str::to_owned)))
        })
        .await?;
        versions.sort_by(|a, b| {
            a.created_date
                .cmp(&b.created_date)
                .then_with(|| a.version_id.cmp(&b.version_id))
        });
        Ok(versions)
    }

    async fn current_values(&self, names: &[SecretName]) -> Result<CurrentValues, ProviderError> {
        let ids = names.iter().map(|n| n.as_str().to_owned()).collect();
        let answers: Vec<Result<SecretValue, SecretName>> =
            in_batches(ids, BATCH_MAX, usize::MAX, |chunk| async move {
                let out = {
                    let _slot = self.gate.slot().await;
                    let call = self.calls.hit("secretsmanager:BatchGetSecretValue");
                    let out = self
                        .client
                        .batch_get_secret_value()
                        .set_secret_id_list(Some(chunk))
                        .send()
                        .await
                        .map_err(|e| Self::err("BatchGetSecretValue", e))?;
                    call.done(format_args!(
                        "{} values, {} errors",
                        out.secret_values().len(),
                        out.errors().len()
                    ));
                    out
                };
                // Gone (ResourceNotFound) or scheduled for deletion
                // (InvalidRequest) since it was listed: the caller asks
                // DescribeSecret. Anything else (access denied, a key that does
                // not decrypt) leaves the picture incomplete.
                let gone = |code: Option<&str>| {
                    matches!(
                        code,
                        Some("ResourceNotFoundException" | "InvalidRequestException")
                    )
                };
                if let Some(e) = out.errors().iter().find(|e| !gone(e.error_code())) {
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
                let unreadable = out
                    .errors()
                    .iter()
                    .filter_map(|e| e.secret_id())
                    .map(|id| Err(SecretName::new(id)));
                Ok(out
                    .secret_values()
                    .iter()
                    .filter_map(|v| {
                        Some(Ok(SecretValue {
                            name: SecretName::new(v.name()?),
                            version_id: v.version_id()?.to_owned(),
                            value: to_secret(v.secret_string(), v.secret_binary())?,
                            created_date: aws_time(v.created_date()),
                            stages: sorted(v.version_stages()),
                        }))
                    })
                    .chain(unreadable)
                    .collect())
            })
            .await?;
        let mut out = CurrentValues::default();
        for a in answers {
            match a {
                Ok(v) => out.values.push(v),
                Err(n) => out.unreadable.push(n),
            }
        }
        Ok(out)
    }

    async fn value_at(
        &self,
        name: &SecretName,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> Result<Option<SecretValue>, ProviderError> {
        let _slot = self.gate.slot().await;
        let call = self.calls.hit("secretsmanager:GetSecretValue");
        let res = self
            .client
            .get_secret_value()
            .secret_id(name.as_str())
            .set_version_id(version_id.map(str::to_owned))
            .set_version_stage(version_stage.map(str::to_owned))
            .send()
            .await;
        let out = match res {
            Ok(out) => {
                call.done("1 value");
                out
            }
            Err(e) => {
                if let Some(GetSecretValueError::ResourceNotFoundException(_)) =
                    e.as_service_error()
                {
                    call.done("no such version");
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
                created_date: aws_time(out.created_date()),
                stages: sorted(out.version_stages()),
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
        let slot = self.gate.slot().await;
        let call = self.calls.hit("secretsmanager:UpdateSecretVersionStage");
        let res = self
            .client
            .update_secret_version_stage()
            .secret_id(name.as_str())
            .version_stage(AWSCURRENT)
            .move_to_version_id(to_version)
            .set_remove_from_version_id(remove_from)
            .send()
            .await;
        drop(slot);
        if res.is_ok() {
            call.done("done");
        } else {
            drop(call);
        }
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
        let slot = self.gate.slot().await;
        let call = self.calls.hit("secretsmanager:RestoreSecret");
        let res = self
            .client
            .restore_secret()
            .secret_id(name.as_str())
            .send()
            .await;
        drop(slot);
        if res.is_ok() {
            call.done("done");
        } else {
            drop(call);
        }
        if let Err(e) = res {
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
