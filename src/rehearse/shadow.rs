//! Building the shadow: a private copy of what the command can break, made
//! from the live snapshot, on loopback only.
//!
//! * **Elasticsearch** is the project's security-API double, embedded
//!   in-process on a random loopback port. Every live user is copied (roles,
//!   enabled, metadata, full name, email) with the roles they reference and
//!   the API keys the credentials resolve to (same id). A user whose
//!   credential ECS consumes gets the password its secret holds, and a
//!   consumed API key keeps its secret, so probes in the shadow answer as
//!   live ones do; opsguard's own admin identity gets the credential the
//!   config gave it (so the command's admin credential works there too);
//!   every other user a random password nobody knows.
//! * **AWS** is an emulator ([`super::emulator`]) seeded with the secrets in
//!   scope (AWSCURRENT values, and the versions task definitions pin; same
//!   version ids), the `[rehearse] extra_secrets`, the clusters, the task
//!   definitions (their `valueFrom` pointing at the shadow's secrets in the
//!   same form as live) and the services with their desired counts.
//!
//! Everything here *reads* live (snapshot, role descriptors, secret values,
//! task definitions) and *writes* only to the shadow: the writers below are
//! built on the shadow's SDK config, whose endpoint is checked to be
//! loopback before the first call.

use super::emulator::{AwsEmulator, EmulatorError};
use crate::config::{
    is_loopback_host, AwsConfig, Config, EcsConfig, EsAuth, EsConfig, RulesConfig,
};
use crate::model::SecretName;
use crate::providers::elasticsearch::{AdminAuth, Es};
use crate::providers::{
    Calls, EcsReader, EsReader, EsWriter, ProbeAuth, ProbeOutcome, ProviderError, SecretsReader,
};
use crate::report::model::RehearsalSeeded;
use crate::snapshot::model::{EsUser, ProbeResult};
use crate::snapshot::{Live, Taken};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use base64::Engine as _;
use es_double::{EsDouble, SeedApiKey};
use futures::stream::{self, StreamExt, TryStreamExt};
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ShadowError {
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error("cannot read the live environment to build the shadow: {0}")]
    Live(ProviderError),
    #[error("cannot seed the shadow: {0}")]
    Seed(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("the shadow's credential graph differs from the live one: {}", .0.join("; "))]
    Fidelity(Vec<String>),
}

impl ShadowError {
    pub fn help(&self) -> String {
        match self {
            ShadowError::Emulator(e) => e.help().to_owned(),
            ShadowError::Live(_) => "check the AWS credentials and region, [elasticsearch] url and opsguard's permissions (reading role descriptors needs read_security); -v shows every call made".into(),
            ShadowError::Seed(_) => "the AWS emulator refused a write; its version may not support an API rehearsal needs (ministack 1.5.33 is the one tested)".into(),
            ShadowError::Unsupported(_) => "rehearse one target at a time: write a config with that target's [aws] and [ecs] only".into(),
            ShadowError::Fidelity(_) => "a prediction from a shadow that differs from live would be worthless, so none was made; -v shows the seeding calls. Pinned versions by stage other than AWSPREVIOUS and users from external realms cannot be copied".into(),
        }
    }
}

fn live_err(e: ProviderError) -> ShadowError {
    ShadowError::Live(e)
}

/// The shadow, alive until dropped: dropping it stops the emulator (by PID)
/// and the in-process double, and removes the empty AWS files.
pub struct Shadow {
    /// Connections to the shadow, used for its snapshots and probes.
    pub live: Live,
    /// A config whose endpoints are the shadow's.
    pub config: Config,
    pub es_url: url::Url,
    pub aws_endpoint: String,
    pub aws_description: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    pub seeded: RehearsalSeeded,
    pub secrets_rewritten: Vec<String>,
    /// How long the emulator took to start and answer (0 for one already running).
    pub emulator_start_ms: u64,
    /// How long seeding the double took (users, roles, API keys).
    pub seed_elasticsearch_ms: u64,
    /// How long seeding the emulator took (secrets, clusters, task
    /// definitions, services, with the live reads that needs).
    pub seed_aws_ms: u64,
    /// An empty file for the command's `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE`.
    pub empty_file: PathBuf,
    es: EsDouble,
    emulator: Option<AwsEmulator>,
}

impl Drop for Shadow {
    fn drop(&mut self) {
        if let Some(dir) = self.empty_file.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
        // `emulator` and `es` stop in their own Drop.
        tracing::debug!(es = %self.es.url(), "shadow torn down");
    }
}

impl Shadow {
    pub fn emulator_pid(&self) -> Option<u32> {
        self.emulator.as_ref().map(AwsEmulator::pid)
    }
}

/// The 12-digit account of the live environment, read from its ARNs.
fn live_account(before: &Taken) -> Option<String> {
    let arns = before
        .snapshot
        .secrets
        .iter()
        .filter_map(|s| s.arn.as_ref().map(|a| a.to_string()))
        .chain(before.snapshot.services.iter().map(|s| s.arn.clone()));
    arns.filter_map(|a| a.split(':').nth(4).map(str::to_owned))
        .find(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
}

fn millis(since: std::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn random_password() -> SecretString {
    let bytes: [u8; 24] = rand::random();
    SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// `base64(id:key)` or `id:key` → (id, key).
fn split_api_key(encoded: &str) -> Option<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| encoded.trim().to_owned());
    let (id, key) = decoded.split_once(':')?;
    Some((id.to_owned(), key.to_owned()))
}

/// The shadow's emulator, started before the live snapshot so that its boot
/// (seconds, for ministack) overlaps the live reads. Dropped unused, it is
/// stopped.
pub struct Booting {
    emulator: Option<Result<AwsEmulator, EmulatorError>>,
    since: std::time::Instant,
}

/// The region the live SDK config resolves to (the emulator's default).
async fn live_region(config: &Config) -> Result<(aws_config::SdkConfig, String), ShadowError> {
    let live_sdk = crate::providers::aws::sdk_config(&config.aws)
        .await
        .map_err(live_err)?;
    let region = live_sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    Ok((live_sdk, region))
}

/// Start the emulator `[rehearse] aws_emulator` names, without waiting for
/// it (nothing, for one already running at `aws_endpoint_url`). An error is
/// kept for [`build`] to report.
pub async fn boot(config: &Config) -> Booting {
    let since = std::time::Instant::now();
    if config.rehearse.aws_endpoint_url.is_some() {
        return Booting {
            emulator: None,
            since,
        };
    }
    // Without a region the live reads fail too; `build` reports that.
    let emulator = match live_region(config).await {
        Ok((_, region)) => Some(AwsEmulator::spawn(&config.rehearse.aws_emulator, &region)),
        Err(_) => None,
    };
    Booting { emulator, since }
}

pub async fn build(
    config: &Config,
    live: &Live,
    before: &Taken,
    booting: Booting,
) -> Result<Shadow, ShadowError> {
    // A config with [[aws.targets]] never gets here: `rehearse` refuses it
    // before live is read.
    let (live_sdk, region) = live_region(config).await?;

    // 1. The AWS emulator: ours (booting since before the live snapshot),
    //    or one already running.
    let since = booting.since;
    let spawned = match (booting.emulator, &config.rehearse.aws_endpoint_url) {
        (_, Some(_)) => None,
        (Some(e), None) => Some(e?),
        (None, None) => Some(AwsEmulator::spawn(&config.rehearse.aws_emulator, &region)?),
    };
    // It finishes booting while the double is seeded.
    let ready = async {
        match spawned {
            Some(e) => {
                let e = e.ready().await?;
                Ok::<_, ShadowError>((Some(e), millis(since)))
            }
            None => Ok((None, 0)),
        }
    };

    // 2. The Elasticsearch double, with opsguard's admin identity.
    let es_part = async {
        let admin = match &config.elasticsearch.auth {
            EsAuth::Basic { username, password } => AdminAuth::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            EsAuth::BasicFromSecret { username, secret } => {
                let v = live
                    .aws()
                    .value_at(&SecretName::new(secret.as_str()), None, None)
                    .await
                    .map_err(live_err)?
                    .ok_or_else(|| {
                        ShadowError::Live(ProviderError::new(
                            "Secrets Manager",
                            "GetSecretValue",
                            format!("the admin password secret {secret:?} does not exist"),
                        ))
                    })?;
                AdminAuth::Basic {
                    username: username.clone(),
                    password: v.value,
                }
            }
            EsAuth::ApiKey { encoded } => AdminAuth::ApiKey {
                encoded: encoded.clone(),
            },
            EsAuth::Offline => {
                return Err(ShadowError::Unsupported(
                    "the config was loaded without opsguard's own credential".into(),
                ))
            }
        };
        let elastic_pw = match &admin {
            AdminAuth::Basic { username, password } if username == "elastic" => password.clone(),
            _ => random_password(),
        };
        let es = EsDouble::start_on(0, elastic_pw.expose_secret()).map_err(|e| {
            ShadowError::Seed(format!("cannot start the Elasticsearch double: {e}"))
        })?;
        let es_url: url::Url = es
            .url()
            .parse()
            .map_err(|e| ShadowError::Seed(format!("double URL: {e}")))?;
        let seeder = Es::new(
            &EsConfig {
                url: es_url.clone(),
                auth: EsAuth::Offline,
                ca_cert: None,
                timeout: config.elasticsearch.timeout,
                max_concurrency: config.elasticsearch.max_concurrency,
            },
            AdminAuth::Basic {
                username: "elastic".into(),
                password: elastic_pw.clone(),
            },
            Calls::default(),
        )
        .map_err(|e| ShadowError::Seed(e.to_string()))?;
        let mut seeded = RehearsalSeeded::default();
        let started = std::time::Instant::now();
        seed_es(live, before, &admin, &es, &seeder, &mut seeded).await?;
        Ok::<_, ShadowError>((admin, es, es_url, seeded, millis(started)))
    };
    let step = live.progress().step(format!(
        "shadow: starting the AWS emulator ({}) and seeding Elasticsearch users and API keys",
        crate::report::escape::line(
            config
                .rehearse
                .aws_emulator
                .first()
                .map_or("", String::as_str),
            64
        )
    ));
    let (ready, es_part) = tokio::join!(ready, es_part);
    drop(step);
    // Either failing drops the other's half: the emulator and the double stop.
    let (admin, es, es_url, seeded, seed_elasticsearch_ms) = es_part?;
    let (emulator, emulator_start_ms) = ready?;

    let live_acct = live_account(before);
    let (endpoint, access_key_id, aws_description) =
        match (&emulator, &config.rehearse.aws_endpoint_url) {
            (Some(e), _) => (
                e.endpoint().to_owned(),
                live_acct.clone().unwrap_or_else(|| "000000000000".into()),
                format!(
                    "{} (started by opsguard, pid {}, persistence off)",
                    e.program(),
                    e.pid()
                ),
            ),
            (None, url) => {
                let url = url.as_deref().unwrap_or_default();
                // A shared emulator: a fresh account keeps us apart from what it holds.
                let acct = format!(
                    "{:012}",
                    100_000_000_000u64 + rand::random::<u64>() % 899_999_999_999
                );
                (
                    url.trim_end_matches('/').to_owned(),
                    acct,
                    format!("AWS emulator already running at {url}"),
                )
            }
        };
    let loopback = url::Url::parse(&endpoint)
        .ok()
        .and_then(|u| u.host_str().map(is_loopback_host))
        .unwrap_or(false);
    if !loopback {
        return Err(ShadowError::Unsupported(format!(
            "the shadow's AWS endpoint {endpoint} is not on loopback"
        )));
    }
    let secret_access_key = format!("opsguard-shadow-{:016x}", rand::random::<u64>());
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.clone()))
        .endpoint_url(endpoint.clone())
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            access_key_id.clone(),
            secret_access_key.clone(),
            None,
            None,
            "opsguard-shadow",
        )))
        .build();

    // 3. AWS.
    let dir = std::env::temp_dir().join(format!(
        "opsguard-shadow-env-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| ShadowError::Seed(format!("{}: {e}", dir.display())))?;
    let empty_file = dir.join("empty");
    std::fs::write(&empty_file, b"")
        .map_err(|e| ShadowError::Seed(format!("{}: {e}", empty_file.display())))?;

    let mut shadow_config = shadow_config(config, &es_url, &endpoint, &region, &admin);
    shadow_config.path = config.path.clone();
    let shadow_live = Live::connect_with(&shadow_config, &sdk)
        .await
        .map_err(|e| ShadowError::Seed(e.to_string()))?;
    let mut shadow = Shadow {
        live: shadow_live,
        config: shadow_config,
        es_url,
        aws_endpoint: endpoint,
        aws_description,
        access_key_id,
        secret_access_key,
        region,
        seeded,
        secrets_rewritten: Vec::new(),
        emulator_start_ms,
        seed_elasticsearch_ms,
        seed_aws_ms: 0,
        empty_file,
        es,
        emulator,
    };
    let _step = live
        .progress()
        .step("shadow: seeding secrets, clusters, task definitions and services");
    let started = std::time::Instant::now();
    let rewritten = super::seed_aws::seed(
        config,
        live,
        &live_sdk,
        &sdk,
        before,
        &shadow.es_url,
        &mut shadow.seeded,
    )
    .await?;
    shadow.secrets_rewritten = rewritten;
    shadow.seed_aws_ms = millis(started);
    Ok(shadow)
}

fn shadow_config(
    config: &Config,
    es_url: &url::Url,
    endpoint: &str,
    region: &str,
    admin: &AdminAuth,
) -> Config {
    let auth = match admin {
        AdminAuth::Basic { username, password } => EsAuth::Basic {
            username: username.clone(),
            password: password.clone(),
        },
        AdminAuth::ApiKey { encoded } => EsAuth::ApiKey {
            encoded: encoded.clone(),
        },
    };
    Config {
        path: config.path.clone(),
        elasticsearch: EsConfig {
            url: es_url.clone(),
            auth,
            ca_cert: None,
            timeout: config.elasticsearch.timeout,
            max_concurrency: config.elasticsearch.max_concurrency,
        },
        aws: AwsConfig {
            region: Some(region.to_owned()),
            endpoint_url: Some(endpoint.to_owned()),
            profile: None,
            timeout: config.aws.timeout,
            targets: Vec::new(),
            max_concurrency: config.aws.max_concurrency,
        },
        ecs: EcsConfig {
            clusters: config.ecs.clusters.clone(),
        },
        credentials: config.credentials.clone(),
        rules: RulesConfig {
            paths: config.rules.paths.clone(),
            on_violation: config.rules.on_violation,
        },
        waivers: config.waivers.clone(),
        environment_prefixes: config.environment_prefixes.clone(),
        remedies: config.remedies.clone(),
        rehearse: config.rehearse.clone(),
        plan: None,
    }
}

/// Users, roles and API keys into the double.
async fn seed_es(
    live: &Live,
    before: &Taken,
    admin: &AdminAuth,
    es: &EsDouble,
    seeder: &Es,
    seeded: &mut RehearsalSeeded,
) -> Result<(), ShadowError> {
    let snap = &before.snapshot;
    let authenticated: BTreeSet<&str> = snap
        .credentials
        .iter()
        .filter(|c| c.probe.result == ProbeResult::Authenticated)
        .map(|c| c.id.as_str())
        .collect();
    // The passwords and API key secrets the consumers hold; a value that
    // authenticates live wins over a stale one for the same principal.
    let mut passwords: BTreeMap<String, (bool, SecretString)> = BTreeMap::new();
    let mut key_secrets: BTreeMap<String, (bool, String)> = BTreeMap::new();
    for (id, auth) in &before.auth {
        let good = authenticated.contains(id.as_str());
        match auth {
            ProbeAuth::Basic { username, password } => {
                if passwords.get(username).is_none_or(|(g, _)| good && !g) {
                    passwords.insert(username.clone(), (good, password.clone()));
                }
            }
            ProbeAuth::ApiKey { encoded } => {
                if let Some((kid, key)) = split_api_key(encoded.expose_secret()) {
                    if key_secrets.get(&kid).is_none_or(|(g, _)| good && !g) {
                        key_secrets.insert(kid, (good, key));
                    }
                }
            }
        }
    }
    let mut admin_key: Option<(String, String)> = None;
    match admin {
        AdminAuth::Basic { username, password } => {
            passwords.insert(username.clone(), (true, password.clone()));
        }
        AdminAuth::ApiKey { encoded } => {
            admin_key = split_api_key(encoded.expose_secret());
        }
    }

    // API key owners that are not users of the native or reserved realm
    // still need a user to own the copy.
    let mut owners: BTreeSet<String> = snap
        .elasticsearch
        .api_keys
        .iter()
        .filter(|k| k.found)
        .filter_map(|k| k.username.clone())
        .collect();
    let admin_key_state = match &admin_key {
        Some((id, _)) => {
            let st = live.es().api_key(id).await.map_err(live_err)?;
            if let Some(u) = &st.username {
                owners.insert(u.clone());
            }
            Some(st)
        }
        None => None,
    };

    // Roles the users reference, as live defines them.
    let role_names: BTreeSet<String> = snap
        .elasticsearch
        .users
        .iter()
        .flat_map(|u| u.roles.iter().cloned())
        .collect();
    let roles = live
        .es()
        .roles(&role_names.into_iter().collect::<Vec<_>>())
        .await
        .map_err(live_err)?;
    for (name, desc) in &roles {
        let reserved = desc
            .pointer("/metadata/_reserved")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if reserved {
            continue;
        }
        seeder
            .put_role(name, desc)
            .await
            .map_err(|e| ShadowError::Seed(e.to_string()))?;
        seeded.roles += 1;
    }

    // Users.
    let mut users: Vec<EsUser> = snap.elasticsearch.users.clone();
    for o in &owners {
        if !users.iter().any(|u| &u.username == o) {
            users.push(EsUser {
                username: o.clone(),
                roles: Vec::new(),
                full_name: None,
                email: None,
                enabled: true,
                metadata: Default::default(),
                reserved: false,
            });
        }
    }
    let jobs: Vec<(EsUser, Option<SecretString>)> = users
        .into_iter()
        .map(|u| {
            let pw = passwords.get(&u.username).map(|(_, p)| p.clone());
            (u, pw)
        })
        .collect();
    let count = stream::iter(jobs.iter())
        .map(|(u, pw)| async move {
            if u.reserved {
                // Only a reserved user's password can be set; `elastic` got
                // the admin's at start.
                match pw {
                    Some(p) if u.username != "elastic" => {
                        seeder.set_password(&u.username, p).await?;
                        Ok::<usize, ProviderError>(1)
                    }
                    _ => Ok(0),
                }
            } else {
                let random = random_password();
                seeder
                    .put_user(u, Some(pw.as_ref().unwrap_or(&random)))
                    .await?;
                Ok(1)
            }
        })
        .buffer_unordered(8)
        .try_fold(0usize, |a, n| async move { Ok(a + n) })
        .await
        .map_err(|e| ShadowError::Seed(e.to_string()))?;
    seeded.users = count;

    // API keys, same ids; consumed ones keep their secrets.
    let to_millis = |t: Option<time::OffsetDateTime>| {
        t.map(|t| u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0))
    };
    let mut keys: Vec<SeedApiKey> = Vec::new();
    for k in snap.elasticsearch.api_keys.iter().filter(|k| k.found) {
        let secret = key_secrets
            .get(&k.id)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| random_password().expose_secret().to_owned());
        keys.push(SeedApiKey {
            id: k.id.clone(),
            name: k.name.clone().unwrap_or_default(),
            secret,
            owner: k.username.clone().unwrap_or_else(|| "elastic".into()),
            creation_millis: to_millis(k.creation),
            expiration_millis: to_millis(k.expiration),
            invalidated: k.invalidated,
        });
    }
    if let (Some((id, secret)), Some(st)) = (&admin_key, &admin_key_state) {
        keys.retain(|k| &k.id != id);
        keys.push(SeedApiKey {
            id: id.clone(),
            name: st.name.clone().unwrap_or_default(),
            secret: secret.clone(),
            owner: st.username.clone().unwrap_or_else(|| "elastic".into()),
            creation_millis: to_millis(st.creation),
            expiration_millis: to_millis(st.expiration),
            invalidated: false,
        });
    }
    for k in &keys {
        es.seed_api_key(k)
            .map_err(|e| ShadowError::Seed(format!("API key {}: {e}", k.id)))?;
    }
    seeded.api_keys = keys.len();

    // The admin identity must work in the shadow, or nothing else will.
    let probe = match admin {
        AdminAuth::Basic { username, password } => ProbeAuth::Basic {
            username: username.clone(),
            password: password.clone(),
        },
        AdminAuth::ApiKey { encoded } => ProbeAuth::ApiKey {
            encoded: encoded.clone(),
        },
    };
    match seeder.authenticate(&probe).await {
        Ok(ProbeOutcome::Authenticated { .. }) => Ok(()),
        Ok(ProbeOutcome::Rejected { reason }) => Err(ShadowError::Seed(format!(
            "opsguard's admin identity does not authenticate in the shadow: {reason}"
        ))),
        Err(e) => Err(ShadowError::Seed(e.to_string())),
    }
}

/// Task definitions read from live, for seeding.
pub(super) async fn live_task_definition(
    live: &Live,
    arn: &str,
) -> Result<crate::providers::TaskDefinition, ShadowError> {
    live.aws().task_definition(arn).await.map_err(live_err)
}
