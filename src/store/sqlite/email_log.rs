//! The email log: at most one mail per order.
//!
//! A claim is written before sending and turned into `sent` after, so a
//! redelivered `order.fulfilled` finds `sent` and is not mailed again. A claim
//! that never became `sent` (the process died mid-send) lets the next attempt
//! send: at-least-once, the only choice when the mail server is not transactional.

use async_trait::async_trait;
use blog_actors::ports::{EmailLog, MailClaim, StoreError};
use rusqlite::{params, OptionalExtension};

use super::codec::{now, to_ms};
use super::SqliteStore;

#[async_trait]
impl EmailLog for SqliteStore {
    #[tracing::instrument(level = "debug", skip(self))]
    async fn claim_order_mail(&self, order_id: &str) -> Result<MailClaim, StoreError> {
        let order_id = order_id.to_owned();
        self.main
            .write("claim_order_mail", move |tx| {
                let status: Option<String> = tx
                    .prepare_cached("SELECT status FROM email_log WHERE order_id = ?1")?
                    .query_row([&order_id], |r| r.get(0))
                    .optional()?;
                if status.as_deref() == Some("sent") {
                    return Ok(MailClaim::AlreadySent);
                }
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO email_log (order_id, status, claimed_at) VALUES (?1, 'claimed', ?2)",
                )?
                .execute(params![order_id, to_ms(now())])?;
                Ok(MailClaim::Send)
            })
            .await
    }

    #[tracing::instrument(level = "debug", skip(self, recipient))]
    async fn mark_order_mailed(&self, order_id: &str, recipient: &str, message_id: &str) -> Result<(), StoreError> {
        let (order_id, recipient, message_id) = (order_id.to_owned(), recipient.to_owned(), message_id.to_owned());
        self.main
            .write("mark_order_mailed", move |tx| {
                let stamp = to_ms(now());
                // An upsert, so marking works even if the claim row is missing.
                tx.prepare_cached(
                    "INSERT INTO email_log (order_id, status, recipient, message_id, claimed_at, sent_at)
                     VALUES (?1, 'sent', ?2, ?3, ?4, ?4)
                     ON CONFLICT (order_id) DO UPDATE SET status = 'sent', recipient = excluded.recipient,
                         message_id = excluded.message_id, sent_at = excluded.sent_at",
                )?
                .execute(params![order_id, recipient, message_id, stamp])?;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::store;
    use super::*;

    #[tokio::test]
    async fn an_order_is_sendable_until_it_is_marked_mailed() {
        let (_dir, store) = store().await;
        assert_eq!(store.claim_order_mail("A-1").await.unwrap(), MailClaim::Send);
        // A redelivery before the mark (the send failed or crashed) may try again.
        assert_eq!(store.claim_order_mail("A-1").await.unwrap(), MailClaim::Send);
        store.mark_order_mailed("A-1", "ada@example.com", "<a-1@blog>").await.unwrap();
        assert_eq!(store.claim_order_mail("A-1").await.unwrap(), MailClaim::AlreadySent);
    }

    #[tokio::test]
    async fn orders_are_logged_independently() {
        let (_dir, store) = store().await;
        store.claim_order_mail("A-1").await.unwrap();
        store.mark_order_mailed("A-1", "ada@example.com", "<a-1@blog>").await.unwrap();
        assert_eq!(store.claim_order_mail("A-2").await.unwrap(), MailClaim::Send);
    }

    #[tokio::test]
    async fn marking_without_a_claim_still_records_the_mail() {
        let (_dir, store) = store().await;
        store.mark_order_mailed("B-7", "bob@example.com", "<b-7@blog>").await.unwrap();
        assert_eq!(store.claim_order_mail("B-7").await.unwrap(), MailClaim::AlreadySent);
    }
}
