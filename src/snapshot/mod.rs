//! The snapshot stage: one redacted picture of everything a provisioning
//! script can break, joined into the credential graph.
//!
//! * [`model`] — the `opsguard.snapshot/v1` document;
//! * [`take`] — the reads, their order and batching;
//! * [`graph`] — which service consumes which credential (pure);
//! * [`fingerprint`] — keyed fingerprints instead of values.

pub mod fingerprint;
pub mod graph;
/// The document's types live in [`crate::model::snapshot`], below every
/// stage that reads them (providers fill them in, rules read them).
pub use crate::model::snapshot as model;
pub mod take;

use crate::config::{Config, EsAuth};
use crate::model::SecretName;
use crate::progress::Progress;
use crate::providers::elasticsearch::{AdminAuth, Es};
use crate::providers::targets::Router;
use crate::providers::{Calls, ProviderError, SecretsReader};
use fingerprint::FingerprintKey;
pub use take::Taken;

/// Connections to the live environment, made once and used for every
/// snapshot and probe of a command.
///
/// A `Live` remembers the AWSCURRENT versions of the first snapshot it took
/// (a run's before snapshot), or of the one it is told to [`remember`]: every
/// later snapshot reads the full version history of a secret whose
/// AWSCURRENT moved since — only those, since only a rollback of such a
/// secret needs a version that may have lost every stage.
///
/// [`remember`]: Live::remember
pub struct Live {
    aws: Router,
    es: Es,
    calls: Calls,
    es_url: String,
    baseline: std::sync::Mutex<Option<take::Baseline>>,
    /// Where a snapshot says what it waits for (hidden unless given), and
    /// the phase its lines are headed with ("before snapshot").
    progress: Progress,
    phase: std::sync::Mutex<String>,
}

impl Live {
    pub async fn connect(config: &Config) -> Result<Live, ProviderError> {
        let calls = Calls::default();
        let aws = Router::connect(config, &calls).await?;
        Live::assemble(config, aws, calls).await
    }

    /// Connections whose AWS side is a ready SDK config rather than the
    /// config's chain: the rehearsal shadow (see [`crate::rehearse`]).
    pub async fn connect_with(
        config: &Config,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Live, ProviderError> {
        let calls = Calls::default();
        let aws = Router::single(sdk, &calls);
        Live::assemble(config, aws, calls).await
    }

    async fn assemble(config: &Config, aws: Router, calls: Calls) -> Result<Live, ProviderError> {
        let admin = match &config.elasticsearch.auth {
            EsAuth::Basic { username, password } => AdminAuth::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            EsAuth::ApiKey { encoded } => AdminAuth::ApiKey {
                encoded: encoded.clone(),
            },
            EsAuth::Offline => {
                return Err(ProviderError::new(
                    "Elasticsearch",
                    "configuration",
                    "the config was loaded for offline use; opsguard's own credential was not read",
                ))
            }
            EsAuth::BasicFromSecret { username, secret } => {
                let v = aws
                    .value_at(&SecretName::new(secret.as_str()), None, None)
                    .await?
                    .ok_or_else(|| {
                        ProviderError::new(
                            "Secrets Manager",
                            "GetSecretValue",
                            format!(
                                "the admin password secret {secret:?} (elasticsearch.password_secret) does not exist"
                            ),
                        )
                    })?;
                AdminAuth::Basic {
                    username: username.clone(),
                    password: v.value,
                }
            }
        };
        let es = Es::new(&config.elasticsearch, admin, calls.clone())?;
        let mut url = config.elasticsearch.url.clone();
        url.set_query(None);
        Ok(Live {
            aws,
            es,
            calls,
            es_url: url.to_string(),
            baseline: std::sync::Mutex::new(None),
            progress: Progress::hidden(),
            phase: std::sync::Mutex::new("snapshot".to_owned()),
        })
    }

    /// What the next snapshots are, for their progress lines ("after
    /// snapshot").
    pub fn set_phase(&self, phase: &str) {
        *self.phase.lock().expect("phase lock") = phase.to_owned();
    }

    /// The progress handle snapshots say their waits on.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Say on `progress` what each snapshot waits for.
    pub fn with_progress(mut self, progress: &Progress) -> Live {
        self.progress = progress.clone();
        self
    }

    /// Take a snapshot; its `collection` counts this snapshot's calls only.
    pub async fn take(
        &self,
        config: &Config,
        key: &FingerprintKey,
    ) -> Result<Taken, ProviderError> {
        let phase = self.phase.lock().expect("phase lock").clone();
        self.calls.set_progress(self.progress.scoped(&phase));
        self.calls.reset();
        let since = self.baseline.lock().expect("baseline lock").clone();
        let taken = take::take(
            config,
            take::Sources {
                ecs: &self.aws,
                secrets: &self.aws,
                es: &self.es,
                calls: &self.calls,
                es_url: self.es_url.clone(),
                since: since.as_ref(),
            },
            key,
        )
        .await?;
        if since.is_none() {
            self.remember(&taken.snapshot);
        }
        Ok(taken)
    }

    /// Compare later snapshots with this one (a resumed run's before
    /// snapshot, read from disk).
    pub fn remember(&self, before: &model::Snapshot) {
        *self.baseline.lock().expect("baseline lock") = Some(take::baseline(before));
    }

    pub fn es(&self) -> &Es {
        &self.es
    }

    /// Secrets Manager and ECS of every target, routed.
    pub fn aws(&self) -> &Router {
        &self.aws
    }
}

/// Take one snapshot of the live environment the config describes, saying
/// on `progress` what it waits for.
pub async fn take_live(
    config: &Config,
    key: &FingerprintKey,
    progress: &Progress,
) -> Result<Taken, ProviderError> {
    let live = {
        let _step = progress.step("connecting to AWS and Elasticsearch");
        Live::connect(config).await?
    };
    live.with_progress(progress).take(config, key).await
}

/// A report note when any of `snapshots` was throttled (and retried): the
/// run took longer than it had to, and a user may want to lower
/// `max_concurrency`.
pub fn throttle_note(snapshots: &[&model::Snapshot]) -> Option<String> {
    let mut by_service: std::collections::BTreeMap<&str, u64> = Default::default();
    for s in snapshots {
        for (service, n) in &s.collection.throttled {
            *by_service.entry(service.as_str()).or_default() += n;
        }
    }
    if by_service.is_empty() {
        return None;
    }
    let what: Vec<String> = by_service
        .iter()
        .map(|(s, n)| format!("{s} {n} time(s)"))
        .collect();
    Some(format!(
        "throttled: {} answered \"slow down\" and the calls were retried with backoff; \
         lower [aws] max_concurrency or [elasticsearch] max_concurrency if this repeats",
        what.join(", ")
    ))
}
