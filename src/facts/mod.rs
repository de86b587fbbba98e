//! The facts stage: before, after and probes joined into one typed record
//! per credential, service and secret (see [`model`]). Rules read facts only.

pub mod build;
pub mod change;
pub mod model;
