//! Transports: how events travel from the outbox to the workers. The embedded
//! durable queue (SQLite in the data dir) and RabbitMQ implement the same traits.

pub mod embedded;
pub mod rabbitmq;
pub mod relay;

use async_trait::async_trait;
use blog_actors::delivery::{DeliverySource, TransportError};
use chrono::{DateTime, Utc};
use serde::Serialize;

use blog_actors::trace_context::TraceContext;
use uuid::Uuid;

/// A message for the transport: an event's bytes and what travels with them.
/// The transport's own type, so it needs nothing of the store (the relay makes
/// these from outbox entries; the CLI and tests make them directly).
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
