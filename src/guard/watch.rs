//! `--watch`, the tripwire: while the command runs, probe every live
//! credential with the value its running tasks hold, every ~250 ms. The first
//! probe that is refused trips the wire: the command is stopped and the remedy
//! applied at once, so an outage lasts as long as a probe interval plus the
//! remedy, not until someone notices.

use crate::providers::{EsReader, ProbeAuth, ProbeOutcome};
use crate::snapshot::model::Snapshot;
use futures::stream::{self, StreamExt};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// What tripped the wire.
#[derive(Clone, Debug)]
pub struct Trip {
    pub at: OffsetDateTime,
    pub instant: Instant,
    /// Credentials whose held value was refused.
    pub credentials: Vec<String>,
}

pub use crate::model::Outage;

/// The credentials worth watching: live ones whose value was read before.
pub fn watched<'a>(
    before: &Snapshot,
    auth: &'a BTreeMap<String, ProbeAuth>,
) -> Vec<(&'a String, &'a ProbeAuth)> {
    auth.iter()
        .filter(|(id, _)| {
            before
                .credentials
                .iter()
                .any(|c| &c.id == *id && c.consumers.iter().any(|k| k.running_tasks > 0))
        })
        .collect()
}

/// Probe until one value is refused; never returns otherwise (the caller
/// drops it when the command ends).
pub async fn tripwire<X: EsReader>(
    es: &X,
    creds: Vec<(&String, &ProbeAuth)>,
    every: Duration,
    probes: &std::sync::atomic::AtomicU64,
) -> Trip {
    if creds.is_empty() {
        return std::future::pending().await;
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let refused: Vec<String> = stream::iter(creds.iter())
            .map(|(id, auth)| async move {
                match es.authenticate(auth).await {
                    Ok(ProbeOutcome::Rejected { .. }) => Some((*id).clone()),
                    Ok(ProbeOutcome::Authenticated { .. }) => None,
                    // An unreachable cluster is not a refused credential.
                    Err(e) => {
                        tracing::debug!(credential = %id, error = %e, "tripwire probe failed");
                        None
                    }
                }
            })
            .buffer_unordered(8)
            .filter_map(|x| async move { x })
            .collect()
            .await;
        probes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !refused.is_empty() {
            return Trip {
                at: OffsetDateTime::now_utc(),
                instant: Instant::now(),
                credentials: refused,
            };
        }
    }
}

/// After the remedy: probe the tripped credentials until all authenticate
/// (with the held value after a rollback, the current one after a redeploy),
/// at most `limit`. Returns when they did.
pub async fn recovery<X: EsReader>(
    es: &X,
    creds: &[(&String, &ProbeAuth)],
    every: Duration,
    limit: Duration,
) -> Option<(OffsetDateTime, Instant)> {
    let deadline = Instant::now() + limit;
    loop {
        let mut all = true;
        for (_, auth) in creds {
            if !matches!(
                es.authenticate(auth).await,
                Ok(ProbeOutcome::Authenticated { .. })
            ) {
                all = false;
                break;
            }
        }
        if all {
            return Some((OffsetDateTime::now_utc(), Instant::now()));
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}
