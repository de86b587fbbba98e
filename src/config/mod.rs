//! `opsguard.toml`: what to watch and how to reach it.
//!
//! Loading is two steps. Serde reads the file into the `raw` structs, which
//! mirror the TOML exactly and refuse unknown keys; [`Config::load`] then turns
//! them into the validated [`Config`], resolving environment variables on the
//! way. Every mistake a person can make in the file is reported with
//! `file:line:col` and a labelled snippet, and maps to exit code 2 — a typo in a
//! safety tool's config must never quietly mean "watch nothing".

mod error;
mod raw;

pub use error::{ConfigError, ConfigErrorKind};

use raw::{RawConfig, RawCredential};
use secrecy::SecretString;
use std::path::{Path, PathBuf};
use toml::Spanned;
use url::Url;

/// Reads an environment variable: the process environment in production, a
/// map in tests.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Where the config was read from.
    pub path: PathBuf,
    pub elasticsearch: EsConfig,
    pub aws: AwsConfig,
    pub ecs: EcsConfig,
    pub credentials: Vec<CredentialSpec>,
    pub rules: RulesConfig,
    pub waivers: Vec<Waiver>,
    /// Service-name prefixes that name an environment (`prod-` → `prod`).
    pub environment_prefixes: Vec<String>,
    pub remedies: RemediesConfig,
    /// `[rehearse]`: how `opsguard rehearse` builds its shadow.
    pub rehearse: RehearseConfig,
    /// `[plan]`: how to obtain the Terraform plan JSON, if configured.
    pub plan: Option<PlanConfig>,
}

/// How the rehearsal shadow is built (`[rehearse]`, all optional).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RehearseConfig {
    /// The AWS emulator opsguard starts itself: `["ministack"]` by default.
    pub aws_emulator: Vec<String>,
    /// An emulator already running (e.g. LocalStack): used instead of starting one.
    pub aws_endpoint_url: Option<String>,
    /// Glob patterns of further secrets to copy into the shadow (a script
    /// often reads the ES host or the admin password from Secrets Manager).
    pub extra_secrets: Vec<String>,
    /// Environment variables that name the Elasticsearch URL for the command.
    pub es_url_env: Vec<String>,
}

impl Default for RehearseConfig {
    fn default() -> Self {
        RehearseConfig {
            aws_emulator: vec!["ministack".to_owned()],
            aws_endpoint_url: None,
            extra_secrets: Vec::new(),
            es_url_env: vec!["ES_URL".to_owned(), "ELASTICSEARCH_URL".to_owned()],
        }
    }
}

/// Where the plan JSON comes from (`[plan]`): a file, or a command whose
/// stdout is the JSON (e.g. `terraform show -json tfplan`), run in `dir`.
/// Paths are relative to the config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanConfig {
    File(PathBuf),
    Command { argv: Vec<String>, dir: PathBuf },
}

/// How remedies behave (`[remedies]`, all optional).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemediesConfig {
    /// When a rollback cannot restore something (an invalidated API key),
    /// redeploy its consumers instead of only saying so.
    pub redeploy_fallback: bool,
    /// How long a redeploy may take to become stable.
    pub stable_timeout: std::time::Duration,
    /// `--watch`: how long the command gets between SIGTERM and SIGKILL.
    pub kill_grace: std::time::Duration,
    /// `--watch`: time between two probes of the live credentials.
    pub watch_interval: std::time::Duration,
}

impl Default for RemediesConfig {
    fn default() -> Self {
        RemediesConfig {
            redeploy_fallback: false,
            stable_timeout: std::time::Duration::from_secs(600),
            kill_grace: std::time::Duration::from_secs(5),
            watch_interval: std::time::Duration::from_millis(250),
        }
    }
}

/// Prefixes recognised when the config names none.
pub const DEFAULT_ENVIRONMENT_PREFIXES: [&str; 7] = [
    "prod-",
    "production-",
    "stage-",
    "staging-",
    "dev-",
    "test-",
    "qa-",
];

/// The environment a service belongs to, from its name's prefix: the prefix
/// without its trailing separator; empty when none matches.
pub fn environment_of(service: &str, prefixes: &[String]) -> String {
    prefixes
        .iter()
        .filter(|p| service.starts_with(p.as_str()))
        .max_by_key(|p| p.len())
        .map(|p| p.trim_end_matches(['-', '_', '.', '/']).to_owned())
        .unwrap_or_default()
}

#[derive(Debug)]
pub struct EsConfig {
    pub url: Url,
    pub auth: EsAuth,
    /// A PEM CA bundle to trust for the cluster's TLS certificate.
    pub ca_cert: Option<PathBuf>,
    pub timeout: std::time::Duration,
    /// At most this many requests in flight (`max_concurrency`): the probes,
    /// one per credential, are the many.
    pub max_concurrency: usize,
}

/// `[elasticsearch] max_concurrency` when unset: enough to overlap network
/// latency, gentle on a cluster that checks a password hash per probe.
pub const DEFAULT_ES_MAX_CONCURRENCY: usize = 16;
/// `[aws] max_concurrency` when unset: below the burst of the ECS and Secrets
/// Manager read buckets, so a snapshot is not throttled in a quiet account.
pub const DEFAULT_AWS_MAX_CONCURRENCY: usize = 32;
/// The largest `max_concurrency` accepted, for either service.
pub const MAX_CONCURRENCY_LIMIT: usize = 256;

/// How opsguard itself authenticates to Elasticsearch (the admin identity used
/// for snapshots and, later, rollback).
#[derive(Debug)]
pub enum EsAuth {
    /// Password read from an environment variable at load time.
    Basic {
        username: String,
        password: SecretString,
    },
    /// Password read from a Secrets Manager secret when the snapshot starts.
    BasicFromSecret { username: String, secret: String },
    /// An encoded API key (`base64(id:key)`) from an environment variable.
    ApiKey { encoded: SecretString },
    /// Loaded for an offline command (`rules`, `diff`): the credential was
    /// checked for form but not read.
    Offline,
}

#[derive(Debug)]
pub struct AwsConfig {
    /// Overrides the region of the standard chain.
    pub region: Option<String>,
    /// Overrides the endpoint (an emulator, a VPC endpoint).
    pub endpoint_url: Option<String>,
    /// A named profile of the shared config files.
    pub profile: Option<String>,
    /// `[aws] timeout_seconds`: the longest one AWS call may take, retries
    /// included (default 60 s).
    pub timeout: Option<std::time::Duration>,
    /// `[[aws.targets]]`: several accounts or regions in one config. Empty
    /// means one target: the standard chain with `[ecs] clusters`.
    pub targets: Vec<Target>,
    /// At most this many AWS requests in flight (`max_concurrency`).
    pub max_concurrency: usize,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            region: None,
            endpoint_url: None,
            profile: None,
            timeout: None,
            targets: Vec::new(),
            max_concurrency: DEFAULT_AWS_MAX_CONCURRENCY,
        }
    }
}

/// One AWS account and region opsguard watches, reached with the base
/// credentials or by assuming a role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Qualifies its clusters and secrets in reports: `NAME:cluster/service`.
    pub name: String,
    pub region: Option<String>,
    pub role_arn: Option<String>,
    /// The account id: given, or read from `role_arn`. Secret ARNs of this
    /// account are read through this target.
    pub account: Option<String>,
    pub clusters: Vec<String>,
}

#[derive(Debug, Default)]
pub struct EcsConfig {
    /// `[ecs] clusters` (the single-target form).
    pub clusters: Vec<String>,
}

impl Config {
    /// Every cluster watched, as the snapshot names it: bare in the
    /// single-target form, `TARGET:CLUSTER` with `[[aws.targets]]`.
    pub fn clusters(&self) -> Vec<String> {
        if self.aws.targets.is_empty() {
            self.ecs.clusters.clone()
        } else {
            self.aws
                .targets
                .iter()
                .flat_map(|t| t.clusters.iter().map(move |c| format!("{}:{c}", t.name)))
                .collect()
        }
    }
}

/// Which task-definition environment variables form one Elasticsearch credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSpec {
    /// A username variable and a password variable (each may come from a
    /// secret, a JSON key of a secret, or — for the username — plain `environment`).
    Basic {
        username_env: String,
        password_env: String,
    },
    /// One variable whose value is a JSON object holding both.
    BasicJson {
        json_env: String,
        username_key: String,
        password_key: String,
    },
    /// One variable holding an encoded API key (`base64(id:key)`) or `id:key`.
    ApiKey { api_key_env: String },
}

impl CredentialSpec {
    /// The env var names this spec reads, in a fixed order.
    pub fn env_names(&self) -> Vec<&str> {
        match self {
            CredentialSpec::Basic {
                username_env,
                password_env,
            } => vec![username_env, password_env],
            CredentialSpec::BasicJson { json_env, .. } => vec![json_env],
            CredentialSpec::ApiKey { api_key_env } => vec![api_key_env],
        }
    }

    pub fn kind(&self) -> CredentialKind {
        match self {
            CredentialSpec::Basic { .. } | CredentialSpec::BasicJson { .. } => {
                CredentialKind::ElasticsearchBasic
            }
            CredentialSpec::ApiKey { .. } => CredentialKind::ElasticsearchApiKey,
        }
    }
}

pub use crate::model::CredentialKind;

/// What `run` does on a blocking violation: `[rules] on_violation`,
/// `--on-violation`, the journal's `begin` and the report's `mode` all use
/// these words.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Report and exit 11; change nothing.
    Block,
    /// Restore the before state of what broke, then verify.
    Rollback,
    /// Force new deployments of the consumers, then verify.
    Redeploy,
    /// Report; pass the command's exit code through.
    Warn,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Block, Mode::Rollback, Mode::Redeploy, Mode::Warn];

    /// The word in the config, on the command line and in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Block => "block",
            Mode::Rollback => "rollback",
            Mode::Redeploy => "redeploy",
            Mode::Warn => "warn",
        }
    }

    /// The mode a word names, if any.
    pub fn from_word(word: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == word)
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug)]
pub struct RulesConfig {
    /// Extra rule directories, resolved against the config file's folder.
    pub paths: Vec<PathBuf>,
    pub on_violation: Mode,
}

#[derive(Clone, Debug)]
pub struct Waiver {
    pub rule: String,
    pub target: String,
    pub reason: String,
    pub expires: time::Date,
    /// `file:line:col` of the entry, for errors raised after loading (an
    /// unknown rule id is only known once the rules are loaded).
    pub location: String,
}

impl Config {
    /// Read, parse and validate the config at `path`, resolving environment
    /// variables through `env` (the process environment in production; a map
    /// in tests).
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let text = read(path)?;
        Self::parse(path, &text, env, time::OffsetDateTime::now_utc().date())
    }

    /// Load for a command that talks to no service (`rules`, `diff`): the
    /// same validation, but opsguard's own credential is not read, so no
    /// password needs to be in the environment.
    pub fn load_offline(path: &Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        Self::parse_inner(path, &text, None, time::OffsetDateTime::now_utc().date())
    }

    /// Parse and validate config text. `today` decides which waivers have expired.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        today: time::Date,
    ) -> Result<Config, ConfigError> {
        Self::parse_inner(path, text, Some(env), today)
    }

    fn parse_inner(
        path: &Path,
        text: &str,
        env: Option<EnvLookup<'_>>,
        today: time::Date,
    ) -> Result<Config, ConfigError> {
        let cx = Cx {
            path,
            text,
            base: path.parent().unwrap_or(Path::new(".")),
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            cx.err(span, e.message().trim().to_owned(), None)
        })?;
        // Table by table in a fixed order, so a file with several mistakes
        // always reports the same one first.
        let elasticsearch = elasticsearch_config(&cx, raw.elasticsearch, env)?;
        let aws = match raw.aws {
            Some(a) => aws_config(&cx, a)?,
            None => AwsConfig::default(),
        };
        let clusters = ecs_clusters(&cx, raw.ecs, !aws.targets.is_empty())?;
        Ok(Config {
            elasticsearch,
            aws,
            ecs: EcsConfig { clusters },
            credentials: credentials(&cx, &raw.credentials)?,
            rules: rules_config(&cx, raw.rules.unwrap_or_default())?,
            waivers: waivers(&cx, &raw.waivers, today)?,
            environment_prefixes: environment_prefixes(&cx, raw.environments)?,
            remedies: remedies_config(&cx, raw.remedies)?,
            rehearse: rehearse_config(&cx, raw.rehearse)?,
            plan: raw.plan.map(|p| plan_config(&cx, p)).transpose()?,
            path: path.to_owned(),
        })
    }
}

/// What each table's reader needs to point an error at the file: the path,
/// the text (for `line:col` and the snippet) and the folder relative paths
/// in the file are taken from.
struct Cx<'a> {
    path: &'a Path,
    text: &'a str,
    base: &'a Path,
}

impl Cx<'_> {
    fn err(&self, span: std::ops::Range<usize>, msg: String, help: Option<String>) -> ConfigError {
        ConfigError::at(self.path, self.text, span, msg, help)
    }

    /// A `max_concurrency` key: absent is `default`, else 1..=the limit.
    fn max_concurrency(
        &self,
        table: &str,
        v: Option<&Spanned<i64>>,
        default: usize,
    ) -> Result<usize, ConfigError> {
        match v {
            None => Ok(default),
            Some(n) if (1..=MAX_CONCURRENCY_LIMIT as i64).contains(n.get_ref()) => {
                Ok(*n.get_ref() as usize)
            }
            Some(n) => Err(self.err(
                n.span(),
                format!(
                    "[{table}] max_concurrency {} is out of range 1..={MAX_CONCURRENCY_LIMIT}",
                    n.get_ref()
                ),
                Some(format!(
                    "the number of requests in flight at once; leave it out for the default {default}"
                )),
            )),
        }
    }

    /// A duration setting checked against `range` (see [`bounded`]).
    fn bounded(
        &self,
        key: &str,
        value: Option<Spanned<i64>>,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<u64>, ConfigError> {
        bounded(&|s, m, h| self.err(s, m, h), key, value, range)
    }

    /// A `*_seconds` key checked against `range`, as a duration.
    fn seconds(
        &self,
        key: &str,
        value: Option<Spanned<i64>>,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<std::time::Duration>, ConfigError> {
        Ok(self
            .bounded(key, value, range)?
            .map(std::time::Duration::from_secs))
    }
}

/// `[elasticsearch]`: the URL and opsguard's own credential. `env` is `None`
/// when loading offline: the credential is then named but not read.
fn elasticsearch_config(
    cx: &Cx<'_>,
    es: Option<Spanned<raw::RawEs>>,
    env: Option<EnvLookup<'_>>,
) -> Result<EsConfig, ConfigError> {
    let es = es.ok_or_else(|| {
        cx.err(
            0..0,
            "missing required table [elasticsearch]".into(),
            Some(
                "add [elasticsearch] with url and username + password_env (or api_key_env)".into(),
            ),
        )
    })?;
    let es_span = es.span();
    let es = es.into_inner();
    let url_s = es.url.as_ref().ok_or_else(|| {
        cx.err(
            es_span.clone(),
            "missing required key `url` in [elasticsearch]".into(),
            Some("add url = \"https://HOST:9243\" under [elasticsearch]".into()),
        )
    })?;
    let url = Url::parse(url_s.get_ref())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            cx.err(
                url_s.span(),
                format!("`url` {:?} is not an http(s) URL", url_s.get_ref()),
                Some("for example url = \"https://catalogue.es.example:9243\"".into()),
            )
        })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(cx.err(
            url_s.span(),
            "`url` must not carry credentials".into(),
            Some("use username + password_env, password_secret or api_key_env".into()),
        ));
    }
    Ok(EsConfig {
        url,
        auth: es_auth(cx, &es, es_span, env)?,
        ca_cert: es.ca_cert.map(|p| cx.base.join(p.get_ref())),
        timeout: cx
            .seconds(
                "[elasticsearch] timeout_seconds",
                es.timeout_seconds,
                1..=3600,
            )?
            .unwrap_or(std::time::Duration::from_secs(30)),
        max_concurrency: cx.max_concurrency(
            "elasticsearch",
            es.max_concurrency.as_ref(),
            DEFAULT_ES_MAX_CONCURRENCY,
        )?,
    })
}

/// Exactly one of `password_env`, `password_secret`, `api_key_env`, with a
/// `username` where the form needs one.
fn es_auth(
    cx: &Cx<'_>,
    es: &raw::RawEs,
    es_span: std::ops::Range<usize>,
    env: Option<EnvLookup<'_>>,
) -> Result<EsAuth, ConfigError> {
    let sources = [
        es.password_env.is_some(),
        es.password_secret.is_some(),
        es.api_key_env.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if sources != 1 {
        return Err(cx.err(
            es_span,
            if sources == 0 {
                "[elasticsearch] names no credential for opsguard itself".into()
            } else {
                "[elasticsearch] names more than one of password_env, password_secret, api_key_env"
                    .into()
            },
            Some("set exactly one of password_env, password_secret or api_key_env".into()),
        ));
    }
    let need_username = |what: &str| {
        es.username
            .as_ref()
            .map(|u| u.get_ref().clone())
            .ok_or_else(|| {
                cx.err(
                    es_span.clone(),
                    format!(
                        "missing required key `username` in [elasticsearch] (needed with {what})"
                    ),
                    Some(
                        "add username = \"elastic\" (the identity opsguard reads users with)"
                            .into(),
                    ),
                )
            })
    };
    // The secret in an env var: `None` when loading offline (not read).
    let secret_from = |var: &Spanned<String>| -> Result<Option<SecretString>, ConfigError> {
        let Some(env) = env else { return Ok(None) };
        read_env(env, var)
            .map(|v| Some(SecretString::from(v)))
            .map_err(|m| {
                cx.err(
                    var.span(),
                    m,
                    Some(format!(
                        "export {}=… before running opsguard",
                        var.get_ref()
                    )),
                )
            })
    };
    if let Some(var) = &es.password_env {
        let username = need_username("password_env")?;
        return Ok(match secret_from(var)? {
            None => EsAuth::Offline,
            Some(password) => EsAuth::Basic { username, password },
        });
    }
    if let Some(secret) = &es.password_secret {
        return Ok(EsAuth::BasicFromSecret {
            username: need_username("password_secret")?,
            secret: secret.get_ref().clone(),
        });
    }
    let var = es.api_key_env.as_ref().expect("counted above");
    if let Some(u) = &es.username {
        return Err(cx.err(
            u.span(),
            "`username` has no meaning with api_key_env".into(),
            Some("remove username, or use password_env instead of api_key_env".into()),
        ));
    }
    Ok(match secret_from(var)? {
        None => EsAuth::Offline,
        Some(encoded) => EsAuth::ApiKey { encoded },
    })
}

/// `[aws]`, with its `[[aws.targets]]` (several accounts).
fn aws_config(cx: &Cx<'_>, a: raw::RawAws) -> Result<AwsConfig, ConfigError> {
    let mut targets: Vec<Target> = Vec::new();
    for t in &a.targets {
        let target = aws_target(cx, t.get_ref(), &a.region)?;
        if targets.iter().any(|x| x.name == target.name) {
            return Err(cx.err(
                t.get_ref().name.span(),
                format!("two targets are named {:?}", target.name),
                None,
            ));
        }
        targets.push(target);
    }
    if targets.len() > 1 {
        if let Some((i, t)) = targets
            .iter()
            .enumerate()
            .find(|(_, t)| t.account.is_none())
        {
            return Err(cx.err(
                a.targets[i].span(),
                format!("target {:?} needs role_arn or account", t.name),
                Some(
                    "with several targets, secret ARNs are read through the target of their account"
                        .into(),
                ),
            ));
        }
    }
    if let Some(ep) = &a.endpoint_url {
        if Url::parse(ep).is_err() {
            return Err(cx.err(
                0..0,
                format!("[aws] endpoint_url {ep:?} is not a URL"),
                None,
            ));
        }
    }
    Ok(AwsConfig {
        max_concurrency: cx.max_concurrency(
            "aws",
            a.max_concurrency.as_ref(),
            DEFAULT_AWS_MAX_CONCURRENCY,
        )?,
        timeout: cx.seconds("[aws] timeout_seconds", a.timeout_seconds, 1..=3600)?,
        region: a.region,
        endpoint_url: a.endpoint_url,
        profile: a.profile,
        targets,
    })
}

/// One `[[aws.targets]]` entry: a name, clusters, and the account either
/// given or read from the role ARN (and the two agreeing).
fn aws_target(
    cx: &Cx<'_>,
    t: &raw::RawTarget,
    default_region: &Option<String>,
) -> Result<Target, ConfigError> {
    let name = t.name.get_ref();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(cx.err(
            t.name.span(),
            format!("target name {name:?} may hold only letters, digits, - and _"),
            Some("name targets like catalogue or identity-prod".into()),
        ));
    }
    if t.clusters.get_ref().is_empty() {
        return Err(cx.err(
            t.clusters.span(),
            format!("target {name:?} watches no cluster"),
            None,
        ));
    }
    let from_role = match &t.role_arn {
        None => None,
        Some(r) => {
            let parts: Vec<&str> = r.get_ref().splitn(6, ':').collect();
            match parts.as_slice() {
                ["arn", _, "iam", "", acct, res]
                    if acct.len() == 12
                        && acct.bytes().all(|b| b.is_ascii_digit())
                        && res.starts_with("role/") =>
                {
                    Some((*acct).to_owned())
                }
                _ => {
                    return Err(cx.err(
                        r.span(),
                        format!("role_arn {:?} is not an IAM role ARN", r.get_ref()),
                        Some("write it as arn:aws:iam::123456789012:role/NAME".into()),
                    ))
                }
            }
        }
    };
    let account = match (&t.account, from_role) {
        (Some(a), Some(r)) if a.get_ref() != &r => {
            return Err(cx.err(
                a.span(),
                format!(
                    "account {} differs from the role's account {r}",
                    a.get_ref()
                ),
                Some("drop `account`: the role ARN already names it".into()),
            ))
        }
        (Some(a), _)
            if a.get_ref().len() != 12 || !a.get_ref().bytes().all(|b| b.is_ascii_digit()) =>
        {
            return Err(cx.err(a.span(), "an account id is 12 digits".into(), None))
        }
        (Some(a), _) => Some(a.get_ref().clone()),
        (None, r) => r,
    };
    Ok(Target {
        name: name.clone(),
        region: t.region.clone().or_else(|| default_region.clone()),
        role_arn: t.role_arn.as_ref().map(|r| r.get_ref().clone()),
        account,
        clusters: t.clusters.get_ref().clone(),
    })
}

/// `[ecs] clusters`: required, and not empty, unless `[[aws.targets]]`
/// names the clusters (then `[ecs]` must be absent).
fn ecs_clusters(
    cx: &Cx<'_>,
    ecs: Option<Spanned<raw::RawEcs>>,
    has_targets: bool,
) -> Result<Vec<String>, ConfigError> {
    if has_targets {
        if let Some(ecs) = &ecs {
            return Err(cx.err(
                ecs.span(),
                "[ecs] and [[aws.targets]] both name clusters".into(),
                Some("with [[aws.targets]], list each target's clusters in the target".into()),
            ));
        }
        return Ok(Vec::new());
    }
    let ecs = ecs.ok_or_else(|| {
        cx.err(
            0..0,
            "missing required table [ecs]".into(),
            Some(
                "add [ecs] clusters = [\"my-cluster\"], or [[aws.targets]] for several accounts"
                    .into(),
            ),
        )
    })?;
    let ecs_span = ecs.span();
    let clusters = ecs.into_inner().clusters.ok_or_else(|| {
        cx.err(
            ecs_span,
            "missing required key `clusters` in [ecs]".into(),
            Some("add clusters = [\"my-cluster\"] under [ecs]".into()),
        )
    })?;
    if clusters.get_ref().is_empty() {
        return Err(cx.err(
            clusters.span(),
            "[ecs] clusters is empty: opsguard would watch no service".into(),
            Some("name at least one ECS cluster whose services consume the credentials".into()),
        ));
    }
    Ok(clusters.into_inner())
}

/// `[[credentials]]`: each entry valid, and no env var in two entries.
fn credentials(
    cx: &Cx<'_>,
    raw: &[Spanned<RawCredential>],
) -> Result<Vec<CredentialSpec>, ConfigError> {
    let mut credentials = Vec::new();
    for entry in raw {
        credentials.push(credential(entry).map_err(|(span, m, h)| cx.err(span, m, h))?);
    }
    for (i, a) in credentials.iter().enumerate() {
        for b in &credentials[..i] {
            if let Some(dup) = a.env_names().iter().find(|n| b.env_names().contains(n)) {
                return Err(cx.err(
                    raw[i].span(),
                    format!("env var `{dup}` appears in two [[credentials]] entries"),
                    Some("each task-definition variable belongs to one credential: remove it from one entry".into()),
                ));
            }
        }
    }
    Ok(credentials)
}

/// `[rules]`: extra rule files and what to do on a blocking violation.
fn rules_config(cx: &Cx<'_>, rules: raw::RawRules) -> Result<RulesConfig, ConfigError> {
    let on_violation = match rules.on_violation {
        None => Mode::Rollback,
        Some(m) => Mode::from_word(m.get_ref()).ok_or_else(|| {
            cx.err(
                m.span(),
                format!("unknown on_violation {:?}", m.get_ref()),
                Some("use one of block, rollback, redeploy, warn".into()),
            )
        })?,
    };
    Ok(RulesConfig {
        paths: rules.paths.iter().map(|p| cx.base.join(p)).collect(),
        on_violation,
    })
}

/// `[[waivers]]`: each with a date that has not passed and a reason.
fn waivers(
    cx: &Cx<'_>,
    raw: &[Spanned<raw::RawWaiver>],
    today: time::Date,
) -> Result<Vec<Waiver>, ConfigError> {
    let mut waivers = Vec::new();
    for w in raw {
        let span = w.span();
        let (line, col) = error::line_col(cx.text, span.start);
        let location = format!("{}:{line}:{col}", cx.path.display());
        let w = w.get_ref();
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        let expires = time::Date::parse(w.expires.get_ref(), &fmt).map_err(|_| {
            cx.err(
                w.expires.span(),
                format!("waiver `expires` {:?} is not a date", w.expires.get_ref()),
                Some("write it as YYYY-MM-DD".into()),
            )
        })?;
        if expires < today {
            return Err(cx.err(
                w.expires.span(),
                format!(
                    "waiver for rule `{}` on `{}` expired on {}",
                    w.rule,
                    w.target,
                    w.expires.get_ref()
                ),
                Some("an expired waiver is an error, not a silent pass: fix the cause, or renew the waiver with a reason".into()),
            ));
        }
        if w.reason.trim().is_empty() {
            return Err(cx.err(span, "waiver has an empty `reason`".into(), None));
        }
        waivers.push(Waiver {
            rule: w.rule.clone(),
            target: w.target.clone(),
            reason: w.reason.clone(),
            expires,
            location,
        });
    }
    Ok(waivers)
}

/// `[environments] prefixes`, or the defaults.
fn environment_prefixes(
    cx: &Cx<'_>,
    raw: Option<raw::RawEnvironments>,
) -> Result<Vec<String>, ConfigError> {
    let Some(e) = raw else {
        return Ok(DEFAULT_ENVIRONMENT_PREFIXES
            .iter()
            .map(|p| (*p).to_owned())
            .collect());
    };
    if let Some(bad) = e
        .prefixes
        .get_ref()
        .iter()
        .find(|p| p.trim_end_matches(['-', '_', '.', '/']).is_empty())
    {
        return Err(cx.err(
            e.prefixes.span(),
            format!("environment prefix {bad:?} names no environment"),
            Some("write prefixes like \"prod-\" and \"stage-\"".into()),
        ));
    }
    Ok(e.prefixes.into_inner())
}

/// `[remedies]`: the redeploy fallback and the remedy's time limits.
fn remedies_config(
    cx: &Cx<'_>,
    raw: Option<raw::RawRemedies>,
) -> Result<RemediesConfig, ConfigError> {
    let defaults = RemediesConfig::default();
    let Some(r) = raw else { return Ok(defaults) };
    Ok(RemediesConfig {
        redeploy_fallback: r.redeploy_fallback.unwrap_or(defaults.redeploy_fallback),
        stable_timeout: cx
            .seconds(
                "[remedies] stable_timeout_seconds",
                r.stable_timeout_seconds,
                1..=86_400,
            )?
            .unwrap_or(defaults.stable_timeout),
        kill_grace: cx
            .seconds(
                "[remedies] kill_grace_seconds",
                r.kill_grace_seconds,
                0..=3600,
            )?
            .unwrap_or(defaults.kill_grace),
        watch_interval: cx
            .bounded(
                "[remedies] watch_interval_ms",
                r.watch_interval_ms,
                50..=600_000,
            )?
            .map(std::time::Duration::from_millis)
            .unwrap_or(defaults.watch_interval),
    })
}

/// `[plan]`: the plan JSON from a file, or from a command run in `dir`.
fn plan_config(cx: &Cx<'_>, p: Spanned<raw::RawPlan>) -> Result<PlanConfig, ConfigError> {
    let span = p.span();
    let p = p.into_inner();
    match (p.file, p.command) {
        (Some(f), None) if p.dir.is_none() => Ok(PlanConfig::File(cx.base.join(f))),
        (None, Some(argv)) if !argv.is_empty() && !argv[0].is_empty() => Ok(PlanConfig::Command {
            argv,
            dir: cx.base.join(p.dir.unwrap_or_default()),
        }),
        _ => Err(cx.err(
            span,
            "[plan] needs exactly one of `file` or `command` (and `dir` only with `command`)".into(),
            Some("file = \"plan.json\", or command = [\"terraform\", \"show\", \"-json\", \"tfplan\"] with dir = \"infra\"".into()),
        )),
    }
}

/// `[rehearse]`: the emulator to start (or one already running, on
/// loopback only) and what to point at the shadow.
fn rehearse_config(
    cx: &Cx<'_>,
    raw: Option<raw::RawRehearse>,
) -> Result<RehearseConfig, ConfigError> {
    let err = |s, m, h| cx.err(s, m, h);
    let defaults = RehearseConfig::default();
    let Some(r) = raw else { return Ok(defaults) };
    let aws_emulator = match r.aws_emulator {
        None => defaults.aws_emulator,
        Some(cmd) if cmd.get_ref().is_empty() || cmd.get_ref()[0].trim().is_empty() => {
            return Err(err(
                cmd.span(),
                "[rehearse] aws_emulator names no program".into(),
                Some("write it as aws_emulator = [\"ministack\"] or [\"/path/to/venv/bin/ministack\"]".into()),
            ))
        }
        Some(cmd) => cmd.into_inner(),
    };
    let aws_endpoint_url = match r.aws_endpoint_url {
        None => None,
        Some(u) => {
            let ok = Url::parse(u.get_ref())
                .ok()
                .filter(|x| matches!(x.scheme(), "http" | "https"))
                .and_then(|x| x.host_str().map(|h| h.to_owned()))
                .is_some_and(|h| is_loopback_host(&h));
            if !ok {
                return Err(err(
                    u.span(),
                    format!("[rehearse] aws_endpoint_url {:?} is not a loopback http(s) URL", u.get_ref()),
                    Some("the shadow must run on this machine: http://127.0.0.1:PORT or http://localhost:PORT".into()),
                ));
            }
            Some(u.into_inner())
        }
    };
    Ok(RehearseConfig {
        aws_emulator,
        aws_endpoint_url,
        extra_secrets: r.extra_secrets,
        es_url_env: r.es_url_env.unwrap_or(defaults.es_url_env),
    })
}

/// `localhost`, `127.0.0.0/8` or `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| {
        ConfigErrorKind::Read {
            path: path.to_owned(),
            source,
        }
        .into()
    })
}

fn read_env(env: &dyn Fn(&str) -> Option<String>, var: &Spanned<String>) -> Result<String, String> {
    match env(var.get_ref()) {
        Some(v) if !v.is_empty() => Ok(v),
        Some(_) => Err(format!("environment variable {} is empty", var.get_ref())),
        None => Err(format!("environment variable {} is not set", var.get_ref())),
    }
}

type SpannedErr = (std::ops::Range<usize>, String, Option<String>);

fn credential(entry: &Spanned<RawCredential>) -> Result<CredentialSpec, SpannedErr> {
    let span = entry.span();
    let c = entry.get_ref();
    let named = [
        ("username_env", c.username_env.is_some()),
        ("password_env", c.password_env.is_some()),
        ("json_env", c.json_env.is_some()),
        ("api_key_env", c.api_key_env.is_some()),
    ];
    if named.iter().all(|(_, set)| !set) {
        return Err((
            span,
            "[[credentials]] entry names no env vars".into(),
            Some(
                "name the task-definition variables that form the credential: username_env + password_env, json_env, or api_key_env"
                    .into(),
            ),
        ));
    }
    let nonempty = |field: &Option<Spanned<String>>| -> Result<Option<String>, SpannedErr> {
        match field {
            Some(v) if v.get_ref().trim().is_empty() => {
                Err((v.span(), "env var name is empty".into(), None))
            }
            Some(v) => Ok(Some(v.get_ref().clone())),
            None => Ok(None),
        }
    };
    let (user, pass, json, key) = (
        nonempty(&c.username_env)?,
        nonempty(&c.password_env)?,
        nonempty(&c.json_env)?,
        nonempty(&c.api_key_env)?,
    );
    let kind = c.kind.get_ref().as_str();
    match kind {
        "elasticsearch-basic" => {
            if key.is_some() {
                return Err((
                    span,
                    "api_key_env belongs to kind = \"elasticsearch-api-key\"".into(),
                    Some("move api_key_env to its own [[credentials]] entry with kind = \"elasticsearch-api-key\"".into()),
                ));
            }
            match (user, pass, json) {
                (Some(username_env), Some(password_env), None) => Ok(CredentialSpec::Basic {
                    username_env,
                    password_env,
                }),
                (None, None, Some(json_env)) => Ok(CredentialSpec::BasicJson {
                    json_env,
                    username_key: c.username_key.clone().unwrap_or_else(|| "username".into()),
                    password_key: c.password_key.clone().unwrap_or_else(|| "password".into()),
                }),
                (Some(_), None, None) | (None, Some(_), None) => Err((
                    span,
                    "an elasticsearch-basic credential needs both username_env and password_env"
                        .into(),
                    None,
                )),
                _ => Err((
                    span,
                    "use either username_env + password_env or json_env, not both".into(),
                    Some("json_env is for one JSON secret holding both; remove one form".into()),
                )),
            }
        }
        "elasticsearch-api-key" => match (user, pass, json, key) {
            (None, None, None, Some(api_key_env)) => Ok(CredentialSpec::ApiKey { api_key_env }),
            _ => Err((
                span,
                "an elasticsearch-api-key credential takes api_key_env only".into(),
                Some("remove username_env, password_env and json_env from this entry".into()),
            )),
        },
        other => Err((
            c.kind.span(),
            format!("unknown credential kind {other:?}"),
            Some("use \"elasticsearch-basic\" or \"elasticsearch-api-key\"".into()),
        )),
    }
}

#[cfg(test)]
mod tests;

/// A duration setting, checked against what makes sense: 0 would fail every
/// request and 10^17 would wait forever, so both are errors that point at
/// the value.
fn bounded(
    err: &dyn Fn(std::ops::Range<usize>, String, Option<String>) -> ConfigError,
    key: &str,
    value: Option<toml::Spanned<i64>>,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Option<u64>, ConfigError> {
    let Some(v) = value else {
        return Ok(None);
    };
    match u64::try_from(*v.get_ref()) {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(err(
            v.span(),
            format!(
                "{key} = {} is out of range: it must be between {} and {}",
                v.get_ref(),
                range.start(),
                range.end()
            ),
            Some(format!(
                "set {key} to a value from {} to {}, or remove it for the default",
                range.start(),
                range.end()
            )),
        )),
    }
}
