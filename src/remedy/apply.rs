//! Carrying out a plan: each step journalled before it acts, redeploys
//! waited on until stable, and every outcome recorded as an action.
//!
//! The steps of one credential succeed or fail together. Its Elasticsearch
//! password is restored first (the plan orders it so); a secret of the
//! credential is moved back only once Elasticsearch accepts the value the
//! secret will then hold — proven by a probe just before the move — so a
//! refused password (a 403 without `manage_security`, a throttled API)
//! leaves the secret on the value Elasticsearch accepts, and the report says
//! so. Steps of different credentials are independent: restoring one
//! user's password while another's could not be still ends the outage of
//! the first one's tasks, and the verification that follows says exactly
//! what is still wrong.

use super::journal::Event;
use super::plan::{Plan, Step, ValueRef};
use super::session::Session;
use crate::providers::{
    EcsReader, EcsWriter, EsReader, EsWriter, ProbeAuth, ProbeOutcome, ProviderError,
    SecretsReader, SecretsWriter,
};
use crate::report::model::Action;
use crate::snapshot::graph::json_field;
use crate::snapshot::model::{ServiceState, Snapshot};
use secrecy::SecretString;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// The providers a remedy writes through.
pub struct Writers<'a, S, E, C> {
    pub secrets: &'a S,
    pub es: &'a E,
    pub ecs: &'a C,
}

pub struct Options<'a> {
    /// The before-values, by credential id: held in memory since before the
    /// command, or read back from the secret versions the before snapshot
    /// names (see [`recover_values`]).
    pub values: &'a BTreeMap<String, ProbeAuth>,
    /// The values the credentials' secrets held when the remedy began (the
    /// after snapshot's, or a fresh one's on resume): what an Elasticsearch
    /// password is set back to when its secret cannot follow (the undo).
    pub current: &'a BTreeMap<String, ProbeAuth>,
    pub stable_timeout: Duration,
    /// Where to say what the remedy waits for (redeploys becoming stable).
    pub progress: crate::progress::Progress,
}

/// What applying the pending steps did.
#[derive(Default)]
pub struct Applied {
    pub actions: Vec<Action>,
    /// Credentials left half-restored, in words, for the report.
    pub inconsistent: Vec<String>,
}

/// Apply the `pending` steps of `plan`, in order; return one action per step.
pub async fn apply<S, E, C>(
    plan: &Plan,
    pending: &[usize],
    session: &mut Session,
    w: &Writers<'_, S, E, C>,
    opts: &Options<'_>,
) -> Applied
where
    S: SecretsReader + SecretsWriter,
    E: EsWriter + EsReader,
    C: EcsReader + EcsWriter,
{
    let mut out = Applied::default();
    let mut redeploys: Vec<(usize, crate::model::ServiceRef, OffsetDateTime)> = Vec::new();
    // Credentials whose Elasticsearch step failed in this attempt.
    let mut es_failed: BTreeSet<String> = BTreeSet::new();
    // Credentials whose Elasticsearch password was set back in this
    // attempt, with the secret that holds that password.
    let mut es_done: BTreeMap<String, crate::model::SecretName> = BTreeMap::new();
    for &i in pending {
        let Some(step) = plan.steps.get(i) else {
            continue;
        };
        // A secret of a credential whose password could not be restored
        // stays where it is: it holds the value Elasticsearch accepts.
        if let Step::SecretCurrentBack { credentials, .. } = step {
            let blocked: Vec<&String> = credentials
                .iter()
                .filter(|c| es_failed.contains(*c))
                .collect();
            if !blocked.is_empty() {
                let detail = format!(
                    "not moved back: the Elasticsearch password of {} could not be restored, so the secret keeps the value Elasticsearch accepts (the credential is left consistent)",
                    join(&blocked)
                );
                let _ = session.record(Event::Failed {
                    step: i,
                    detail: detail.clone(),
                });
                out.actions.push(action(step, false, Some(detail)));
                continue;
            }
        }
        if let Err(e) = session.record(Event::Started {
            step: i,
            kind: step.kind().to_owned(),
            target: step.target(),
        }) {
            // Without the journal a crash could not be resumed: do not act.
            out.actions.push(action(step, false, Some(e)));
            continue;
        }
        tracing::info!(step = i, what = %step.describe(), "remedy step");
        let result = match step {
            Step::SecretCurrentBack { credentials, .. } => {
                match accepted(credentials, w.es, opts.values).await {
                    Ok(()) => run_step(step, w, opts).await,
                    Err(why) => Err(ProviderError::new(
                        "Elasticsearch",
                        "_authenticate",
                        format!("not moved back: {why} (the credential is left on the value Elasticsearch accepts)"),
                    )),
                }
            }
            _ => run_step(step, w, opts).await,
        };
        let credential = match step {
            Step::EsPassword {
                credential, value, ..
            }
            | Step::EsUserRecreate {
                credential, value, ..
            } => Some((credential.clone(), value.secret.clone())),
            _ => None,
        };
        match result {
            Ok(Some(since)) => {
                if let Step::Redeploy { service } = step {
                    redeploys.push((i, service.clone(), since));
                }
            }
            Ok(None) => {
                let _ = session.record(Event::Done { step: i });
                out.actions.push(action(step, true, None));
                if let Some((c, secret)) = credential {
                    es_done.insert(c, secret);
                }
            }
            Err(e) => {
                let detail = crate::report::escape::line(&e.to_string(), 1024);
                let _ = session.record(Event::Failed {
                    step: i,
                    detail: detail.clone(),
                });
                out.actions.push(action(step, false, Some(detail)));
                if let Some((c, _)) = credential {
                    es_failed.insert(c);
                }
                if let Step::SecretCurrentBack {
                    secret,
                    credentials,
                    ..
                } = step
                {
                    for c in credentials {
                        if es_done.get(c) == Some(secret) {
                            out.inconsistent
                                .push(undo(c, secret, w.es, opts.current).await);
                            es_done.remove(c);
                        }
                    }
                }
            }
        }
    }
    if !redeploys.is_empty() {
        let outcomes = wait_stable(w.ecs, &redeploys, opts).await;
        for ((i, _, _), outcome) in redeploys.iter().zip(outcomes) {
            let step = &plan.steps[*i];
            match outcome {
                Ok(()) => {
                    let _ = session.record(Event::Done { step: *i });
                    out.actions.push(action(step, true, None));
                }
                Err(detail) => {
                    let _ = session.record(Event::Failed {
                        step: *i,
                        detail: detail.clone(),
                    });
                    out.actions.push(action(step, false, Some(detail)));
                }
            }
        }
    }
    out
}

/// The password secret of `credential` could not follow its restored
/// Elasticsearch password: set the password back to the value the secret
/// still holds, so that the credential is consistent (its running tasks
/// are back where the command left them; a resume retries the whole).
async fn undo<E: EsWriter>(
    credential: &str,
    secret: &crate::model::SecretName,
    es: &E,
    current: &BTreeMap<String, ProbeAuth>,
) -> String {
    let half = format!(
        "credential {credential}: AWSCURRENT of {secret} could not be moved back after its Elasticsearch password was restored"
    );
    match current.get(credential) {
        Some(ProbeAuth::Basic { username, password }) => {
            match es.set_password(username, password).await {
                Ok(()) => format!(
                    "{half}, so the password was set back to the value the secret holds (undone): the credential is consistent, and its running tasks are where the command left them; `opsguard resume RUN_ID` retries the remedy"
                ),
                Err(e) => format!(
                    "{half}, and setting the password back to the value the secret holds failed too ({e}): the credential is inconsistent — tasks started now would read a value Elasticsearch refuses; `opsguard resume RUN_ID` retries"
                ),
            }
        }
        _ => format!(
            "{half}, and the value the secret holds is not known, so it could not be undone: the credential is inconsistent — tasks started now would read a value Elasticsearch refuses; `opsguard resume RUN_ID` retries"
        ),
    }
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// Does Elasticsearch accept, right now, the before-value of every one of
/// `credentials`? A secret moved back makes that value current again, so
/// it must. A value that cannot be probed is not proof (fail closed).
async fn accepted<E: EsReader>(
    credentials: &[String],
    es: &E,
    values: &BTreeMap<String, ProbeAuth>,
) -> Result<(), String> {
    for c in credentials {
        let Some(auth) = values.get(c) else {
            return Err(format!(
                "the value credential {c} held before the command is not known, so it cannot be shown that Elasticsearch accepts it"
            ));
        };
        match es.authenticate(auth).await {
            Ok(ProbeOutcome::Authenticated { .. }) => {}
            Ok(ProbeOutcome::Rejected { .. }) => {
                return Err(format!(
                    "Elasticsearch refuses the value credential {c} held before the command"
                ))
            }
            Err(e) => return Err(format!("cannot probe credential {c}: {e}")),
        }
    }
    Ok(())
}

/// The before-values of the before snapshot's credentials, read back from
/// the secret versions it names (a resume has lost the ones held in
/// memory). Credentials whose value cannot be read are left out, with why.
pub async fn recover_values<S: SecretsReader>(
    before: &Snapshot,
    config: &crate::config::Config,
    secrets: &S,
) -> (BTreeMap<String, ProbeAuth>, Vec<String>) {
    use crate::config::CredentialKind;
    let mut values = BTreeMap::new();
    let mut missing = Vec::new();
    for c in &before.credentials {
        let got: Result<ProbeAuth, String> = async {
            match c.kind {
                CredentialKind::ElasticsearchBasic => {
                    let username = c
                        .principal
                        .clone()
                        .ok_or("its username was not known before the command")?;
                    let value = super::plan::password_ref(c, config)
                        .ok_or("its password was not read from a secret version")?;
                    let password = before_value(&c.id, &value, secrets, &BTreeMap::new())
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(ProbeAuth::Basic { username, password })
                }
                CredentialKind::ElasticsearchApiKey => {
                    let src = c
                        .sources
                        .iter()
                        .find(|s| s.role == "api-key")
                        .ok_or("it has no API key source")?;
                    let value = ValueRef {
                        secret: src.secret.clone().ok_or("its key is not in a secret")?,
                        version_id: src
                            .version_read
                            .clone()
                            .ok_or("its key was not read from a secret version")?,
                        json_key: src.json_key.clone(),
                        field: None,
                    };
                    let raw = before_value(&c.id, &value, secrets, &BTreeMap::new())
                        .await
                        .map_err(|e| e.to_string())?;
                    let (_, encoded) = crate::snapshot::graph::api_key_parts(&raw)
                        .ok_or("its value is not an API key")?;
                    Ok(ProbeAuth::ApiKey { encoded })
                }
            }
        }
        .await
        .map_err(|e: String| e);
        match got {
            Ok(v) => {
                values.insert(c.id.clone(), v);
            }
            Err(e) => missing.push(format!("credential {}: {e}", c.id)),
        }
    }
    (values, missing)
}

fn action(step: &Step, ok: bool, detail: Option<String>) -> Action {
    Action {
        kind: step.kind().to_owned(),
        target: step.target(),
        ok,
        detail: detail.or_else(|| Some(step.describe())),
    }
}

/// Apply one step. A redeploy returns when its deployment was forced, with
/// the instant it was; waiting for it is done for all redeploys together.
async fn run_step<S, E, C>(
    step: &Step,
    w: &Writers<'_, S, E, C>,
    opts: &Options<'_>,
) -> Result<Option<OffsetDateTime>, ProviderError>
where
    S: SecretsReader + SecretsWriter,
    E: EsWriter,
    C: EcsReader + EcsWriter,
{
    match step {
        Step::EsPassword {
            user,
            credential,
            value,
        } => {
            let pw = before_value(credential, value, w.secrets, opts.values).await?;
            w.es.set_password(user, &pw).await?;
        }
        Step::EsUserRecreate {
            user,
            credential,
            value,
        } => {
            let pw = before_value(credential, value, w.secrets, opts.values).await?;
            w.es.put_user(user, Some(&pw)).await?;
        }
        Step::EsUserRestore { user } => w.es.put_user(user, None).await?,
        Step::SecretCurrentBack {
            secret,
            to_version,
            from_version,
            ..
        } => {
            w.secrets
                .move_current(secret, to_version, from_version)
                .await?
        }
        Step::SecretRestore { secret } => w.secrets.restore_secret(secret).await?,
        Step::DesiredCount { service, desired } => {
            w.ecs.set_desired_count(service, *desired).await?
        }
        Step::Redeploy { service } => {
            // Whole seconds, as ECS reports startedAt: a task started in this
            // second or later was started by this deployment.
            let since = OffsetDateTime::now_utc();
            w.ecs.force_new_deployment(service).await?;
            return Ok(Some(since));
        }
    }
    Ok(None)
}

/// The password the credential's tasks hold: from memory when this process
/// read it before the command, else from the secret version that holds it.
pub(crate) async fn before_value<S: SecretsReader>(
    credential: &str,
    value: &ValueRef,
    secrets: &S,
    values: &BTreeMap<String, ProbeAuth>,
) -> Result<SecretString, ProviderError> {
    if let Some(ProbeAuth::Basic { password, .. }) = values.get(credential) {
        return Ok(password.clone());
    }
    let err = |m: String| ProviderError::new("Secrets Manager", "GetSecretValue", m);
    let v = secrets
        .value_at(&value.secret, Some(&value.version_id), None)
        .await?
        .ok_or_else(|| {
            err(format!(
                "{} version {} no longer exists: the password its tasks hold is lost",
                value.secret, value.version_id
            ))
        })?;
    let mut raw = v.value;
    for key in value.json_key.iter().chain(value.field.iter()) {
        raw = json_field(&raw, key).map_err(|e| err(format!("{}: {e}", value.secret)))?;
    }
    Ok(raw)
}

/// Stable: one deployment, its rollout COMPLETED, running == desired, and
/// every running task started at or after the deployment was forced.
pub fn is_stable(s: &ServiceState, since: OffsetDateTime) -> Result<bool, String> {
    if s.deployments
        .iter()
        .any(|d| d.rollout_state.as_deref() == Some("FAILED"))
    {
        return Err(format!("{}: the new deployment FAILED", s.service));
    }
    let fresh = s
        .tasks
        .iter()
        .filter(|t| t.last_status == "RUNNING")
        .all(|t| {
            t.started_at
                .is_some_and(|st| st.unix_timestamp() >= since.unix_timestamp())
        });
    Ok(s.deployments.len() == 1
        && s.deployments[0]
            .rollout_state
            .as_deref()
            .unwrap_or("COMPLETED")
            == "COMPLETED"
        && s.running_count == s.desired_count
        && s.tasks
            .iter()
            .filter(|t| t.last_status == "RUNNING")
            .count() as i32
            == s.desired_count
        && fresh)
}

async fn wait_stable<C: EcsReader + EcsWriter>(
    ecs: &C,
    services: &[(usize, crate::model::ServiceRef, OffsetDateTime)],
    opts: &Options<'_>,
) -> Vec<Result<(), String>> {
    let bar = opts.progress.count(
        format!(
            "waiting for {} redeployed service(s) to be stable",
            services.len()
        ),
        services.len() as u64,
    );
    let deadline = Instant::now() + opts.stable_timeout;
    let mut results: Vec<Option<Result<(), String>>> = vec![None; services.len()];
    let mut delay = Duration::from_millis(200);
    loop {
        for (k, (_, svc, since)) in services.iter().enumerate() {
            if results[k].is_some() {
                continue;
            }
            match ecs.service(svc).await {
                Ok(s) => match is_stable(&s, *since) {
                    Ok(true) => {
                        results[k] = Some(Ok(()));
                        bar.inc();
                    }
                    Ok(false) => bar.say(format!(
                        "{svc}: {}/{} running, {} deployment(s)",
                        s.running_count,
                        s.desired_count,
                        s.deployments.len()
                    )),
                    Err(e) => results[k] = Some(Err(e)),
                },
                Err(e) => {
                    tracing::warn!(service = %svc, error = %e, "describe failed while waiting")
                }
            }
        }
        if results.iter().all(Option::is_some) {
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    drop(bar);
    results
        .into_iter()
        .zip(services)
        .map(|(r, (_, svc, _))| {
            r.unwrap_or_else(|| {
                Err(format!(
                    "{svc} was not stable within {} s (--stable-timeout)",
                    opts.stable_timeout.as_secs()
                ))
            })
        })
        .collect()
}
