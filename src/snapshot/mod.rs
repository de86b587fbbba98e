//! The snapshot stage: one redacted picture of everything a provisioning
//! script can break, joined into the credential graph.
//!
//! * [`model`] — the `opsguard.snapshot/v1` document;
//! * [`take`] — the reads, their order and batching;
//! * [`graph`] — which service consumes which credential (pure);
//! * [`fingerprint`] — keyed fingerprints instead of values.

pub mod fingerprint;
pub mod graph;
pub mod model;
pub mod take;

use crate::config::{Config, EsAuth};
use crate::model::SecretName;
use crate::providers::elasticsearch::{AdminAuth, Es};
use crate::providers::targets::Router;
use crate::providers::{Calls, ProviderError, SecretsReader};
use fingerprint::FingerprintKey;
pub use take::Taken;

/// Connections to the live environment, made once and used for every
/// snapshot and probe of a command.
pub struct Live {
    aws: Router,
    es: Es,
    calls: Calls,
    es_url: String,
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
        })
    }

    /// Take a snapshot; its `collection` counts this snapshot's calls only.
    pub async fn take(
        &self,
        config: &Config,
        key: &FingerprintKey,
    ) -> Result<Taken, ProviderError> {
        self.calls.reset();
        take::take(
            config,
            take::Sources {
                ecs: &self.aws,
                secrets: &self.aws,
                es: &self.es,
                calls: &self.calls,
                es_url: self.es_url.clone(),
            },
            key,
        )
        .await
    }

    pub fn es(&self) -> &Es {
        &self.es
    }

    /// Secrets Manager and ECS of every target, routed.
    pub fn aws(&self) -> &Router {
        &self.aws
    }
}

/// Take one snapshot of the live environment the config describes.
pub async fn take_live(config: &Config, key: &FingerprintKey) -> Result<Taken, ProviderError> {
    Live::connect(config).await?.take(config, key).await
}
