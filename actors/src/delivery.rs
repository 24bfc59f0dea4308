//! What a transport hands the queue reader, and how a delivery is settled.
//!
//! The embedded queue and RabbitMQ both implement [`DeliverySource`]; the
//! reader never knows which one it is reading.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::trace_context::TraceContext;
use crate::worker::WorkerKind;

/// A transport failure: the connection or the queue's storage is not available.
#[derive(Debug, Clone, thiserror::Error)]
#[error("transport: {0}")]
pub struct TransportError(pub String);

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
}
