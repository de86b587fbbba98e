//! The outage a `--watch` tripwire saw: data the report carries, so it
//! lives here, below both the guard that measures it and the report.

use serde::{Deserialize, Serialize};

/// The outage a tripwire saw, for the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Outage {
    pub credentials: Vec<String>,
    /// The first refused probe.
    pub first_failed_probe_at: String,
    /// The first probe after the remedy at which every one authenticated again.
    pub recovered_at: Option<String>,
    pub window_ms: Option<u64>,
    pub probes: u64,
}
