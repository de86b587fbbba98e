//! opsguard: a pre-flight safety checker for operations scripts.
//!
//! The crate is laid out as the pipeline it implements, one folder a stage:
//!
//! ```text
//! config  →  snapshot  →  facts  →  rules  →  remedy  →  report
//! ```
//!
//! * [`config`] reads `opsguard.toml`: what to watch and how to reach it.
//! * [`snapshot`] observes one instant of the real world — Elasticsearch users,
//!   Secrets Manager secrets, ECS services and their tasks — and joins them into
//!   the credential graph, with a probe of every credential.
//! * [`providers`] are the narrow doors to the outside world (Elasticsearch,
//!   Secrets Manager, ECS). Nothing else in the crate talks to a network.
//! * [`progress`] says, on a terminal, what a slow step is waiting for.
//! * [`model`] holds the small typed vocabulary every stage shares
//!   (`SecretArn`, `ServiceRef`, parsed `valueFrom` references, …).
//!
//! Secret values never leave memory: they are `secrecy::SecretString`, they
//! never implement `Display`, and the only thing written about them anywhere is
//! a keyed fingerprint (see [`snapshot::fingerprint`]).

pub mod cli;
pub mod config;
pub mod error;
pub mod exit;
pub mod facts;
pub mod guard;
pub mod model;
pub mod plan;
pub mod progress;
pub mod providers;
pub mod rehearse;
pub mod remedy;
pub mod report;
pub mod rules;
pub mod snapshot;
pub mod state;
