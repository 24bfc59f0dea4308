//! The outbox: events waiting for the relay, written in the same transaction
//! as the change that caused them.

use async_trait::async_trait;
use blog_actors::event::Envelope;
use blog_actors::ports::StoreError;
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::codec::{id_text, now, parse_id, to_ms};
use super::db::DbResult;
use super::SqliteStore;
use crate::store::{Outbox, OutboxEntry};

/// Sent rows are kept this long, for looking into what went out recently, then
/// deleted so the table does not grow forever.
const KEEP_SENT_MS: i64 = 60 * 60 * 1000;

/// Adds `envelope` to the outbox inside the caller's transaction.
pub(super) fn insert_event(conn: &Connection, envelope: &Envelope) -> DbResult<()> {
    insert(conn, &envelope.event_type, envelope.id, &envelope.to_bytes(), envelope.correlation_id.as_deref())
}

fn insert(
    conn: &Connection,
    routing_key: &str,
    message_id: Uuid,
    body: &[u8],
    correlation_id: Option<&str>,
) -> DbResult<()> {
    conn.prepare_cached(
        "INSERT INTO outbox (message_id, routing_key, body, correlation_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id_text(message_id), routing_key, body, correlation_id, to_ms(now())])?;
    Ok(())
}

#[async_trait]
impl Outbox for SqliteStore {
    #[tracing::instrument(level = "debug", skip(self, body, correlation_id))]
    async fn enqueue(
        &self,
        routing_key: &str,
        message_id: Uuid,
        body: Vec<u8>,
        correlation_id: Option<String>,
    ) -> Result<(), StoreError> {
        let routing_key = routing_key.to_owned();
        self.main
            .write("outbox enqueue", move |tx| insert(tx, &routing_key, message_id, &body, correlation_id.as_deref()))
            .await
    }

    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.main
            .read("outbox pending", move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT seq, message_id, routing_key, body, correlation_id FROM outbox
                     WHERE sent_at IS NULL ORDER BY seq LIMIT ?1",
                )?;
                let rows = stmt.query_map([limit], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?;
                rows.map(|row| {
                    let (seq, message_id, routing_key, body, correlation_id) = row?;
                    Ok(OutboxEntry { seq, message_id: parse_id(&message_id)?, routing_key, body, correlation_id })
                })
                .collect()
            })
            .await
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
        self.main
            .read("outbox backlog", |conn| {
                let n: i64 = conn.query_row("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL", [], |r| r.get(0))?;
                Ok(n.max(0) as u64)
            })
            .await
    }
}
