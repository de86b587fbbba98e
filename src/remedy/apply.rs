//! Carrying out a plan: each step journalled before it acts, redeploys
//! waited on until stable, and every outcome recorded as an action.
//!
//! Steps are independent — each restores its own resource — so one failing
//! does not stop the others: restoring a user's password while its secret
//! could not be moved back still ends the outage of the running tasks, and
//! the verification that follows says exactly what is still wrong.

use super::journal::{Event, Journal};
use super::plan::{Plan, Step, ValueRef};
use crate::providers::{
    EcsReader, EcsWriter, EsWriter, ProbeAuth, ProviderError, SecretsReader, SecretsWriter,
};
use crate::report::model::Action;
use crate::snapshot::graph::json_field;
use crate::snapshot::model::ServiceState;
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// The providers a remedy writes through.
pub struct Writers<'a, S, E, C> {
    pub secrets: &'a S,
    pub es: &'a E,
    pub ecs: &'a C,
}

pub struct Options<'a> {
    /// The before-values still in memory, by credential id (empty on resume:
    /// values are then read back from the secret versions the plan names).
    pub values: &'a BTreeMap<String, ProbeAuth>,
    pub stable_timeout: Duration,
    /// Show a progress bar while waiting for redeploys (on a terminal).
    pub progress: bool,
}

/// Apply the `pending` steps of `plan`, in order; return one action per step.
pub async fn apply<S, E, C>(
    plan: &Plan,
    pending: &[usize],
    journal: &mut Journal,
    w: &Writers<'_, S, E, C>,
    opts: &Options<'_>,
) -> Vec<Action>
where
    S: SecretsReader + SecretsWriter,
    E: EsWriter,
    C: EcsReader + EcsWriter,
{
    let mut actions = Vec::new();
    let mut redeploys: Vec<(usize, crate::model::ServiceRef, OffsetDateTime)> = Vec::new();
    for &i in pending {
        let step = &plan.steps[i];
        if let Err(e) = journal.append(Event::Started {
            step: i,
            kind: step.kind().to_owned(),
            target: step.target(),
        }) {
            // Without the journal a crash could not be resumed: do not act.
            actions.push(action(
                step,
                false,
                Some(format!("cannot write the journal: {e}")),
            ));
            continue;
        }
        tracing::info!(step = i, what = %step.describe(), "remedy step");
        let result = run_step(step, w, opts).await;
        match result {
            Ok(Some(since)) => {
                if let Step::Redeploy { service } = step {
                    redeploys.push((i, service.clone(), since));
                }
            }
            Ok(None) => {
                let _ = journal.append(Event::Done { step: i });
                actions.push(action(step, true, None));
            }
            Err(e) => {
                let detail = e.to_string();
                let _ = journal.append(Event::Failed {
                    step: i,
                    detail: detail.clone(),
                });
                actions.push(action(step, false, Some(detail)));
            }
        }
    }
    if !redeploys.is_empty() {
        let outcomes = wait_stable(w.ecs, &redeploys, opts).await;
        for ((i, _, _), outcome) in redeploys.iter().zip(outcomes) {
            let step = &plan.steps[*i];
            match outcome {
                Ok(()) => {
                    let _ = journal.append(Event::Done { step: *i });
                    actions.push(action(step, true, None));
                }
                Err(detail) => {
                    let _ = journal.append(Event::Failed {
                        step: *i,
                        detail: detail.clone(),
                    });
                    actions.push(action(step, false, Some(detail)));
                }
            }
        }
    }
    actions
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
async fn before_value<S: SecretsReader>(
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
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(services.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} redeploying {pos}/{len} stable {elapsed} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
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
                        bar.inc(1);
                    }
                    Ok(false) => bar.set_message(format!(
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
    bar.finish_and_clear();
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
