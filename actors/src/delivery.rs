//! What a transport hands the queue reader, and how a delivery is settled.
//!
//! The embedded queue and RabbitMQ both implement [`DeliverySource`]; the
//! reader never knows which one it is reading.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ports::Cause;
use crate::trace_context::TraceContext;
use crate::worker::WorkerKind;

/// Why a transport call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The broker or the queue's storage cannot be reached, or the connection
    /// or channel went away: worth retrying.
    #[error("transport unavailable: {context}: {source}")]
    Unavailable { context: String, #[source] source: Cause },
    /// The broker refused what was asked (a declaration that contradicts what
    /// exists, a message it did not take): retrying the same will not help.
    #[error("transport refused: {context}: {source}")]
    Refused { context: String, #[source] source: Cause },
    /// What the queue's storage holds cannot be read back (a damaged file).
    #[error("transport data corrupt: {context}: {source}")]
    Corrupt { context: String, #[source] source: Cause },
    /// A setting is wrong (a URL, a name).
    #[error("transport misconfigured: {context}: {source}")]
    Misconfigured { context: String, #[source] source: Cause },
    /// Our own code failed inside the transport (a task panicked).
    #[error("transport defect: {context}: {source}")]
    Defect { context: String, #[source] source: Cause },
}

impl TransportError {
    pub fn unavailable(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        TransportError::Unavailable { context: context.into(), source: Arc::new(source) }
    }

    pub fn refused(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        TransportError::Refused { context: context.into(), source: Arc::new(source) }
    }

    pub fn corrupt(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        TransportError::Corrupt { context: context.into(), source: Arc::new(source) }
    }

    pub fn misconfigured(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        TransportError::Misconfigured { context: context.into(), source: Arc::new(source) }
    }

    pub fn defect(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        TransportError::Defect { context: context.into(), source: Arc::new(source) }
    }
}

/// One message delivered to one worker, not yet settled.
pub struct Delivery {
    /// The worker whose queue this came from.
    pub worker: WorkerKind,
    /// The routing key (event type) it was published with.
    pub routing_key: String,
    /// The raw envelope; decoding is the reader's job so bad bodies can be parked.
    /// Shared, not copied, with the settler that may republish it (retry, park).
    pub body: Bytes,
    /// 1 for the first attempt; grows with each delayed retry.
    pub attempt: u32,
    /// True when the transport handed this delivery out before without a verdict.
    pub redelivered: bool,
    /// From the message properties, when the body cannot be read.
    pub correlation_id: Option<String>,
    /// The W3C trace context the message travels with: the parent of its consumer span.
    pub trace: Option<TraceContext>,
    /// Settles the delivery on its transport; used exactly once.
    pub settler: Box<dyn Settle>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("worker", &self.worker)
            .field("routing_key", &self.routing_key)
            .field("attempt", &self.attempt)
            .field("redelivered", &self.redelivered)
            .finish_non_exhaustive()
    }
}

/// What becomes of a delivery once its worker has answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The effect is committed: remove the message.
    Ack,
    /// Try again after `delay`, as attempt `next_attempt`.
    Retry { delay: Duration, next_attempt: u32, reason: String },
    /// Give up: keep the message in the parking lot with why and after how many attempts.
    Park { reason: String, attempts: u32 },
    /// Not handled (shutting down): hand it back to the queue unchanged.
    Release,
}

/// Settles one delivery on the transport it came from.
#[async_trait]
pub trait Settle: Send {
    async fn settle(self: Box<Self>, verdict: Verdict) -> Result<(), TransportError>;
}

/// A source of deliveries for a set of workers.
#[async_trait]
pub trait DeliverySource: Send + Sync {
    /// Starts consuming. At most `prefetch` deliveries per worker are unsettled at
    /// once. The receiver ends when `stop` is cancelled; a transport that loses its
    /// connection reconnects by itself and keeps feeding the same receiver.
    async fn consume(
        &self,
        workers: &[WorkerKind],
        prefetch: u16,
        stop: CancellationToken,
    ) -> Result<mpsc::Receiver<Delivery>, TransportError>;

    /// Whether the consumers are attached to the queue right now.
    fn is_consuming(&self) -> bool;

    /// How much to hand one worker from now on: in full, one at a time (a
    /// breaker's probe) or nothing (breaker open, paused by hand). What is not
    /// handed out waits in its queue; deliveries already out are settled as usual.
    fn set_feed(&self, worker: WorkerKind, feed: crate::pause::Feed);
}
