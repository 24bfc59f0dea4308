//! The outbox relay: publishes what the store's outbox holds, in order, and
//! marks entries sent only after the transport has them. A restart resumes
//! with whatever is still unsent.

use std::sync::Arc;
use std::time::Duration;

use blog_actors::metrics::{ActorMetrics, ActorState, Outcome};
use blog_actors::trace_context::TraceContext;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{OutgoingMessage, Publisher};
use crate::store::Outbox;
use blog_actors::delivery::TransportError;
use blog_actors::ports::StoreError;

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
    metrics: ActorMetrics,
    stop: CancellationToken,
) -> JoinHandle<()> {
    // The outbox says when it has new entries; the poll covers other processes' writes.
    let wakeup = outbox.written();
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
                    metrics.record_error(NAME, &e.to_string());
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

/// The producer span of one message: a child of the context the write left in the
/// outbox, and the parent the message now carries (without the OpenTelemetry
/// layer the stored context travels on unchanged).
fn publish_span(entry: &mut OutgoingMessage) -> tracing::Span {
    let span = tracing::info_span!(
        parent: None,
        "publish",
        otel.kind = "producer",
        otel.status_code = tracing::field::Empty,
        routing_key = %entry.routing_key,
        message_id = %entry.message_id,
    );
    if let Some(trace) = &entry.trace {
        trace.adopt_as_parent(&span);
    }
    if let Some(own) = TraceContext::of_span(&span) {
        entry.trace = Some(own);
    }
    span
}

/// Why a relay round stopped; the entries stay in the outbox for the next one.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot read or mark the outbox: {0}")]
    Outbox(#[from] StoreError),
    #[error("cannot publish: {0}")]
    Publish(#[from] TransportError),
}

/// Publishes one batch; returns how many entries left the outbox.
pub async fn relay_once(outbox: &dyn Outbox, publisher: &dyn Publisher, metrics: &ActorMetrics) -> Result<usize, RelayError> {
    let entries = outbox.pending(BATCH).await?;
    if entries.is_empty() {
        return Ok(0);
    }
    let started = std::time::Instant::now();
    let (seqs, mut messages): (Vec<i64>, Vec<OutgoingMessage>) = entries.into_iter().map(|entry| (entry.seq, entry.message)).unzip();
    // Ended (dropped) once the transport has the batch, or failed it.
    let spans: Vec<tracing::Span> = messages.iter_mut().map(publish_span).collect();
    if let Err(e) = publisher.publish(&messages).await {
        for span in &spans {
            span.record("otel.status_code", "ERROR");
        }
        return Err(e.into());
    }
    drop(spans);
    // A crash here republishes the batch: at least once, and the handlers are idempotent.
    outbox.mark_sent(&seqs).await?;
    metrics.observe_handling(NAME, started.elapsed());
    for _ in &seqs {
        metrics.record_outcome(NAME, Outcome::Ok);
    }
    Ok(seqs.len())
}
