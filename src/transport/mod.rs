//! Transports: how events travel from the outbox to the workers. The embedded
//! durable queue (SQLite in the data dir) and RabbitMQ implement the same traits.

pub mod embedded;
#[cfg(test)]
mod fan_out;
pub mod parked_query;
pub mod rabbitmq;
pub mod relay;
pub mod replay_throttle;

use std::collections::BTreeMap;

use async_trait::async_trait;
use blog_actors::delivery::{DeliverySource, TransportError};
use chrono::{DateTime, Utc};
use serde::Serialize;

use blog_actors::trace_context::TraceContext;
use uuid::Uuid;

use self::parked_query::{ParkedFilter, ParkedPage};
use self::replay_throttle::ReplayThrottle;

/// A message for the transport: an event's bytes and what travels with them.
/// The transport's own type, so it needs nothing of the store (an outbox entry
/// holds one for the relay to publish; the CLI and tests make them directly).
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    /// The envelope's id, used as the broker's message id.
    pub message_id: Uuid,
    pub routing_key: String,
    pub body: Vec<u8>,
    pub correlation_id: Option<String>,
    /// The W3C trace context the message carries (the publish span's).
    pub trace: Option<TraceContext>,
}

/// Puts messages on the transport.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Publishes the messages; returns only once the transport has them durably
    /// (a commit, or every publisher confirm).
    async fn publish(&self, messages: &[OutgoingMessage]) -> Result<(), TransportError>;
}

/// A message in a parking lot, with why it is there.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ParkedMessage {
    /// Stable id for replay and delete.
    pub id: String,
    /// The worker that gave up on it (`unrouted` when no worker takes its type).
    pub worker: String,
    pub routing_key: String,
    pub message_id: Option<String>,
    pub correlation_id: Option<String>,
    /// The body as JSON when it is JSON, else as text.
    pub body: serde_json::Value,
    pub reason: String,
    pub attempts: u32,
    pub parked_at: DateTime<Utc>,
    /// What else the transport kept with it (trace context, the last error, the
    /// broker's death records); the attempt history is `attempts`, `reason` and these.
    pub headers: BTreeMap<String, String>,
}

/// Messages waiting in one retry level of one worker.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RetryLevelCount {
    pub worker: String,
    /// The level's delay on RabbitMQ (`5000ms`), the attempt due next on the embedded queue (`attempt 3`).
    pub level: String,
    pub waiting: u64,
}

/// The dead-letter admin operations.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// The oldest parked messages, at most `limit`.
    async fn list_parked(&self, limit: usize) -> Result<Vec<ParkedMessage>, TransportError>;
    /// Sends a parked message back to its worker as a fresh first attempt; false when no such id.
    async fn replay_parked(&self, id: &str) -> Result<bool, TransportError>;
    /// Drops a parked message for good; false when no such id.
    async fn delete_parked(&self, id: &str) -> Result<bool, TransportError>;
    /// How many messages are parked.
    async fn parked_count(&self) -> Result<u64, TransportError>;
    /// One page (from `offset`, at most `limit`, oldest first) of the parked
    /// messages `filter` matches, how many match, and the groups of all of them.
    async fn query_parked(&self, filter: &ParkedFilter, offset: usize, limit: usize) -> Result<ParkedPage, TransportError>;
    /// Replays every parked message `filter` matches, each once, at the throttle's
    /// pace; the others stay parked. How many were replayed.
    async fn replay_matching(&self, filter: &ParkedFilter, throttle: &ReplayThrottle) -> Result<u64, TransportError>;
    /// Drops every parked message `filter` matches; how many.
    async fn delete_matching(&self, filter: &ParkedFilter) -> Result<u64, TransportError>;
    /// Parked messages per worker parking lot (`unrouted` included), empty lots too.
    async fn parked_by_worker(&self) -> Result<Vec<(String, u64)>, TransportError>;
    /// Messages waiting for a retry, per worker and retry level.
    async fn waiting_for_retry(&self) -> Result<Vec<RetryLevelCount>, TransportError>;
}

/// A whole transport.
#[async_trait]
pub trait Transport: Publisher + DeliverySource + DeadLetters + Send + Sync + 'static {
    /// Whether the transport is reachable now (for `/health/ready` and metrics).
    fn is_connected(&self) -> bool;
    /// The broker node in use now, without credentials; `None` when not connected
    /// or when the transport has no nodes (embedded).
    fn broker_node(&self) -> Option<String> {
        None
    }
    /// How often the consumers lost their broker session and reconnected.
    fn connection_losses(&self) -> u64 {
        0
    }
    /// Deliveries waiting in the worker queues or handed out and not yet settled.
    async fn pending_deliveries(&self) -> Result<u64, TransportError>;
    /// Closes connections cleanly at shutdown.
    async fn close(&self);
}
