//! Publishing: each message fans out to one delivery row per subscribing worker,
//! all in one transaction; a type nobody subscribes to is parked as unrouted.

use async_trait::async_trait;
use blog_actors::delivery::TransportError;
use blog_actors::worker::Workers;
use rusqlite::Connection;
use uuid::Uuid;

use super::db::{immediate, now_ms};
use super::deliveries::{insert_delivery, Message};
use super::parked::{self, NewParked, UNROUTED};
use super::EmbeddedQueue;
use crate::transport::OutgoingMessage;
use crate::transport::Publisher;

/// Queues `message` for every subscriber of its type; parks it when there is none,
/// so an unknown type shows up in the dead letters instead of vanishing.
fn fan_out(conn: &Connection, workers: &Workers, message: &Message<'_>, now: i64) -> rusqlite::Result<()> {
    let workers = workers.subscribers(message.routing_key);
    if workers.is_empty() {
        let reason = parked::unrouted_reason(message.routing_key);
        tracing::warn!(routing_key = message.routing_key, "parking a message no worker subscribes to");
        return parked::insert(conn, &NewParked { worker: UNROUTED, message, reason: &reason, attempts: 0 }, now);
    }
    workers.into_iter().try_for_each(|worker| insert_delivery(conn, worker, message, now))
}

fn publish_all(conn: &mut Connection, workers: &Workers, entries: &[OutgoingMessage], now: i64) -> rusqlite::Result<()> {
    let tx = immediate(conn)?;
    for entry in entries {
        let message_id = entry.message_id.to_string();
        let message = Message {
            routing_key: &entry.routing_key,
            message_id: Some(&message_id),
            correlation_id: entry.correlation_id.as_deref(),
            trace: entry.trace.as_ref(),
            body: &entry.body,
        };
        fan_out(&tx, workers, &message, now)?;
    }
    tx.commit()
}

#[async_trait]
impl Publisher for EmbeddedQueue {
    /// Returns once the transaction is committed (and fsynced): the messages are durable.
    async fn publish(&self, entries: &[OutgoingMessage]) -> Result<(), TransportError> {
        if entries.is_empty() {
            return Ok(());
        }
        let (entries, workers) = (entries.to_vec(), self.shared.workers.clone());
        self.shared.db.call(move |conn| publish_all(conn, &workers, &entries, now_ms())).await?;
        self.shared.wake.notify_waiters();
        Ok(())
    }
}

impl EmbeddedQueue {
    /// Publishes one message that did not come through the outbox (tests, the CLI);
    /// returns the message id it was given.
    pub async fn publish_raw(
        &self,
        routing_key: &str,
        body: Vec<u8>,
        correlation_id: Option<String>,
    ) -> Result<Uuid, TransportError> {
        let entry = OutgoingMessage {
            message_id: Uuid::now_v7(),
            routing_key: routing_key.to_owned(),
            body,
            correlation_id,
            trace: None,
        };
        self.publish(std::slice::from_ref(&entry)).await?;
        Ok(entry.message_id)
    }
}
