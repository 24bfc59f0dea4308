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

#[cfg(test)]
mod tests {
    use super::super::testing::store;
    use super::*;

    #[tokio::test]
    async fn pending_gives_the_oldest_unsent_entries_in_order() {
        let (_dir, store) = store().await;
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        for (i, id) in ids.iter().enumerate() {
            store.enqueue("order.fulfilled", *id, format!("{i}").into_bytes(), Some(format!("c{i}"))).await.unwrap();
        }
        let first_two = store.pending(2).await.unwrap();
        assert_eq!(first_two.iter().map(|e| e.message_id).collect::<Vec<_>>(), ids[..2]);
        assert_eq!(first_two[1].body, b"1");
        assert_eq!(first_two[1].correlation_id.as_deref(), Some("c1"));
        assert!(first_two[0].seq < first_two[1].seq);
    }

    #[tokio::test]
    async fn marked_entries_leave_the_backlog() {
        let (_dir, store) = store().await;
        for _ in 0..3 {
            store.enqueue("order.fulfilled", Uuid::new_v4(), b"{}".to_vec(), None).await.unwrap();
        }
        let pending = store.pending(10).await.unwrap();
        store.mark_sent(&[pending[0].seq, pending[1].seq]).await.unwrap();
        assert_eq!(store.backlog().await.unwrap(), 1);
        let left = store.pending(10).await.unwrap();
        assert_eq!(left, vec![pending[2].clone()]);
    }
}
