//! The shared vocabulary of every stage: typed identifiers and parsed
//! `valueFrom` references. Pure data, no I/O.

mod ids;
pub mod value_from;

pub use ids::{ApiKeyId, SecretArn, SecretName, ServiceRef, Username};
pub use value_from::{SecretRef, ValueFrom, ValueFromError};
