//! Publishing: each message fans out to one delivery row per subscribing worker,
//! all in one transaction; a type nobody subscribes to is parked as unrouted.

use async_trait::async_trait;
use blog_actors::delivery::TransportError;
use blog_actors::trace_context::TraceContext;
use blog_actors::worker::{WorkerKind, Workers};
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::db::{immediate, now_ms};
use super::parked::{self, NewParked, UNROUTED};
use super::EmbeddedQueue;
use crate::store::OutboxEntry;
use crate::transport::Publisher;

const INSERT_DELIVERY: &str = "
INSERT INTO deliveries (worker, routing_key, message_id, correlation_id, traceparent, tracestate, body, attempt,
                        available_at, enqueued_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8)";

/// A message as it is stored, whichever table it comes from.
pub(super) struct Message<'a> {
    pub routing_key: &'a str,
    pub message_id: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
    /// The W3C trace context it travels with; retries, parking and replay keep it.
    pub trace: Option<&'a TraceContext>,
    pub body: &'a [u8],
}

/// The trace context kept in the `traceparent` and `tracestate` columns from `first` on,
/// checked again as it is read (the file is shared with other processes).
pub(super) fn trace_columns(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Option<TraceContext>> {
    let traceparent: Option<String> = row.get(first)?;
    let tracestate: Option<String> = row.get(first + 1)?;
    Ok(traceparent.and_then(|tp| TraceContext::parse(&tp, tracestate.as_deref())))
}

/// Queues `message` for `worker` as a first attempt, due now.
pub(super) fn insert_delivery(
    conn: &Connection,
    worker: WorkerKind,
    message: &Message<'_>,
    now: i64,
) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(INSERT_DELIVERY)?;
    insert.execute(params![
        worker.name(),
        message.routing_key,
        message.message_id,
        message.correlation_id,
        message.trace.map(|t| &t.traceparent),
        message.trace.and_then(|t| t.tracestate.as_ref()),
        message.body,
        now
    ])?;
    Ok(())
}

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

fn publish_all(conn: &mut Connection, workers: &Workers, entries: &[OutboxEntry], now: i64) -> rusqlite::Result<()> {
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
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), TransportError> {
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
        let entry = OutboxEntry {
            seq: 0,
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
