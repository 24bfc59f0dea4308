//! The outbox: events waiting for the relay, written in the same transaction
//! as the change that caused them.

use async_trait::async_trait;
use blog_actors::event::Envelope;
use blog_actors::ports::StoreError;
use blog_actors::trace_context::TraceContext;
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::codec::{count, id_text, now, parse_id, to_ms};
use super::db::DbResult;
use super::SqliteStore;
use crate::store::{Outbox, OutboxEntry};
use crate::transport::OutgoingMessage;

/// Sent rows are kept this long, for looking into what went out recently, then
/// deleted so the table does not grow forever.
const KEEP_SENT_MS: i64 = 60 * 60 * 1000;

/// Adds `envelope` to the outbox inside the caller's transaction, with the trace context of the write.
pub(super) fn insert_event(conn: &Connection, envelope: &Envelope, trace: Option<&TraceContext>) -> DbResult<()> {
    let cause = (envelope.correlation_id.as_deref(), trace);
    insert(conn, &envelope.event_type, envelope.id, &envelope.to_bytes(), cause)
}

/// `cause`: the correlation id and the trace context the event travels with.
fn insert(
    conn: &Connection,
    routing_key: &str,
    message_id: Uuid,
    body: &[u8],
    (correlation_id, trace): (Option<&str>, Option<&TraceContext>),
) -> DbResult<()> {
    conn.prepare_cached(
        "INSERT INTO outbox (message_id, routing_key, body, correlation_id, traceparent, tracestate, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id_text(message_id),
        routing_key,
        body,
        correlation_id,
        trace.map(|t| &t.traceparent),
        trace.and_then(|t| t.tracestate.as_ref()),
        to_ms(now())
    ])?;
    Ok(())
}

/// Adds the trace context columns to an outbox made before them (until 2026-12).
pub(super) fn upgrade(conn: &Connection) -> DbResult<()> {
    let has_column = conn
        .prepare("SELECT 1 FROM pragma_table_info('outbox') WHERE name = 'traceparent'")?
        .exists([])?;
    if !has_column {
        tracing::info!("upgrading the outbox of a store made by an earlier version: trace context columns");
        conn.execute_batch("ALTER TABLE outbox ADD COLUMN traceparent TEXT; ALTER TABLE outbox ADD COLUMN tracestate TEXT;")?;
    }
    Ok(())
}

#[async_trait]
impl Outbox for SqliteStore {
    #[tracing::instrument(level = "debug", skip(self, body, correlation_id))]
    async fn enqueue(&self, routing_key: &str, message_id: Uuid, body: Vec<u8>, correlation_id: Option<String>) -> Result<(), StoreError> {
        let (routing_key, trace) = (routing_key.to_owned(), TraceContext::current());
        self.main
            .write("outbox enqueue", move |tx| {
                insert(tx, &routing_key, message_id, &body, (correlation_id.as_deref(), trace.as_ref()))
            })
            .await
            .inspect(|_| self.outbox_written.notify_one())
    }

    fn written(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.outbox_written.clone()
    }

    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let pending = self
            .main
            .read("outbox pending", move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT seq, message_id, routing_key, body, correlation_id, traceparent, tracestate FROM outbox
                     WHERE sent_at IS NULL ORDER BY seq LIMIT ?1",
                )?;
                let rows = stmt.query_map([limit], |r| {
                    let trace = r.get::<_, Option<String>>(5)?.and_then(|tp| {
                        TraceContext::parse(&tp, r.get::<_, Option<String>>(6).ok().flatten().as_deref())
                    });
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?, trace))
                })?;
                rows.map(|row| {
                    let (seq, message_id, routing_key, body, correlation_id, trace) = row?;
                    let message = OutgoingMessage { message_id: parse_id(&message_id)?, routing_key, body, correlation_id, trace };
                    Ok(OutboxEntry { seq, message })
                })
                .collect::<DbResult<Vec<_>>>()
            })
            .await?;
        // An event leaves only once its write would survive a power cut (see db.rs).
        self.main.durable().await?;
        Ok(pending)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(count = seqs.len()))]
    async fn mark_sent(&self, seqs: &[i64]) -> Result<(), StoreError> {
        let seqs = seqs.to_vec();
        self.main
            .write("outbox mark_sent", move |tx| {
                let sent_at = to_ms(now());
                let mut mark =
                    tx.prepare_cached("UPDATE outbox SET sent_at = ?1 WHERE seq = ?2 AND sent_at IS NULL")?;
                for seq in &seqs {
                    mark.execute(params![sent_at, seq])?;
                }
                tx.prepare_cached("DELETE FROM outbox WHERE sent_at < ?1")?.execute([sent_at - KEEP_SENT_MS])?;
                Ok(())
            })
            .await
    }

    async fn backlog(&self) -> Result<u64, StoreError> {
        self.main.read("outbox backlog", |conn| count(conn, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbox_made_before_trace_contexts_gets_their_columns() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, message_id TEXT NOT NULL, routing_key TEXT NOT NULL,
                                  body BLOB NOT NULL, correlation_id TEXT, created_at INTEGER NOT NULL, sent_at INTEGER);
             INSERT INTO outbox (message_id, routing_key, body, created_at) VALUES ('m', 'order.fulfilled', x'7b7d', 1);",
        )
        .unwrap();
        upgrade(&conn).unwrap();
        upgrade(&conn).unwrap(); // idempotent
        let kept: (String, Option<String>) =
            conn.query_row("SELECT message_id, traceparent FROM outbox", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!(kept, ("m".to_owned(), None));
    }
}
