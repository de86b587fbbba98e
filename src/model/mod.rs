//! The shared vocabulary of every stage: typed identifiers and parsed
//! `valueFrom` references, and the outage a `--watch` tripwire saw. Pure
//! data, no I/O.

mod ids;
mod outage;
pub mod value_from;

pub use ids::{ApiKeyId, SecretArn, SecretName, ServiceRef, Username};
pub use outage::Outage;
pub use value_from::{SecretRef, ValueFrom, ValueFromError};
