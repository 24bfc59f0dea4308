//! The outbox relay: publishes what the store's outbox holds, in order, and
//! marks entries sent only after the transport has them. A restart resumes
//! with whatever is still unsent.

use std::sync::Arc;
use std::time::Duration;

use blog_actors::metrics::{ActorMetrics, ActorState, Outcome};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Publisher;
use crate::store::Outbox;

const NAME: &str = "relay";
/// Entries published per round trip.
const BATCH: usize = 500;
/// How often to look without a wake-up (another process may have written).
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// The wait after a failure grows to at most this.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs until `stop` is cancelled; the round in progress finishes first.
pub fn spawn(
    outbox: Arc<dyn Outbox>,
    publisher: Arc<dyn Publisher>,
    wakeup: Arc<Notify>,
    metrics: ActorMetrics,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        metrics.set_state(NAME, ActorState::Running);
        let mut backoff = Duration::from_millis(100);
        while !stop.is_cancelled() {
            match relay_once(&*outbox, &*publisher, &metrics).await {
                Ok(0) => {
                    tokio::select! {
                        _ = wakeup.notified() => {}
                        _ = tokio::time::sleep(POLL_INTERVAL) => {}
                        _ = stop.cancelled() => {}
                    }
                }
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, ?backoff, "outbox relay failed; will try again");
                    metrics.record_error(NAME, &e);
                    metrics.record_outcome(NAME, Outcome::Retried);
                    // New writes do not cut the wait short: the transport is what is failing.
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        metrics.set_state(NAME, ActorState::Stopped);
    })
}

/// Publishes one batch; returns how many entries left the outbox.
pub async fn relay_once(outbox: &dyn Outbox, publisher: &dyn Publisher, metrics: &ActorMetrics) -> Result<usize, String> {
    let entries = outbox.pending(BATCH).await.map_err(|e| e.to_string())?;
    if entries.is_empty() {
        return Ok(0);
    }
    let started = std::time::Instant::now();
    publisher.publish(&entries).await.map_err(|e| e.to_string())?;
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    // A crash here republishes the batch: at least once, and the handlers are idempotent.
    outbox.mark_sent(&seqs).await.map_err(|e| e.to_string())?;
    metrics.observe_handling(NAME, started.elapsed());
    for _ in &entries {
        metrics.record_outcome(NAME, Outcome::Ok);
    }
    Ok(entries.len())
}
