//! The shared vocabulary of every stage: typed identifiers, parsed
//! `valueFrom` references, the snapshot document and the outage a `--watch`
//! tripwire saw. Pure data, no I/O: every layer above (providers, snapshot,
//! rules, remedy, report, guard) may use it, and it uses none of them.

mod ids;
mod outage;
pub mod snapshot;
pub mod value_from;

pub use ids::{ApiKeyId, SecretArn, SecretName, ServiceRef, Username};
pub use outage::Outage;
pub use value_from::{SecretRef, ValueFrom, ValueFromError};

/// How a credential authenticates to Elasticsearch: `kind` in
/// `[[credentials]]`, in the snapshot and in the rule facts.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    ElasticsearchBasic,
    ElasticsearchApiKey,
}

/// Now, as RFC 3339 (UTC): the timestamps of reports and journals.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
