//! The file as written: serde structs that mirror `opsguard.toml` one to one
//! and reject unknown keys, with spans kept where a later check needs to point.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub elasticsearch: Option<Spanned<RawEs>>,
    pub aws: Option<RawAws>,
    pub ecs: Option<Spanned<RawEcs>>,
    #[serde(default)]
    pub credentials: Vec<Spanned<RawCredential>>,
    pub rules: Option<RawRules>,
    pub environments: Option<RawEnvironments>,
    pub remedies: Option<RawRemedies>,
    pub rehearse: Option<RawRehearse>,
    pub plan: Option<Spanned<RawPlan>>,
    #[serde(default)]
    pub waivers: Vec<Spanned<RawWaiver>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEs {
    pub url: Option<Spanned<String>>,
    pub username: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_secret: Option<Spanned<String>>,
    pub api_key_env: Option<Spanned<String>>,
    pub ca_cert: Option<Spanned<String>>,
    pub timeout_seconds: Option<Spanned<i64>>,
    pub max_concurrency: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAws {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    pub max_concurrency: Option<Spanned<i64>>,
    pub timeout_seconds: Option<Spanned<i64>>,
    #[serde(default)]
    pub targets: Vec<Spanned<RawTarget>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub name: Spanned<String>,
    pub region: Option<String>,
    pub role_arn: Option<Spanned<String>>,
    pub account: Option<Spanned<String>>,
    pub clusters: Spanned<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEcs {
    pub clusters: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCredential {
    pub kind: Spanned<String>,
    pub username_env: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub json_env: Option<Spanned<String>>,
    pub username_key: Option<String>,
    pub password_key: Option<String>,
    pub api_key_env: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRules {
    #[serde(default)]
    pub paths: Vec<String>,
    pub on_violation: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWaiver {
    pub rule: String,
    pub target: String,
    pub reason: String,
    pub expires: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEnvironments {
    pub prefixes: Spanned<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemedies {
    pub redeploy_fallback: Option<bool>,
    pub stable_timeout_seconds: Option<Spanned<i64>>,
    pub kill_grace_seconds: Option<Spanned<i64>>,
    pub watch_interval_ms: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRehearse {
    pub aws_emulator: Option<Spanned<Vec<String>>>,
    pub aws_endpoint_url: Option<Spanned<String>>,
    #[serde(default)]
    pub extra_secrets: Vec<String>,
    pub es_url_env: Option<Vec<String>>,
}

/// `[plan]`: where `opsguard plan` (and the pre-push hook) gets the plan JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlan {
    pub file: Option<String>,
    pub command: Option<Vec<String>>,
    pub dir: Option<String>,
}
