//! The email log: at most one mail per order.
//!
//! A claim (holder, time) is written before sending and turned into `sent`
//! after, so a redelivered `order.fulfilled` finds `sent` and is not mailed
//! again, and a concurrent one on another instance finds a fresh claim and
//! waits. A claim that never became `sent` (its holder died mid-send) goes stale
//! and the next attempt sends: the only choice when the mail server is not transactional.

use std::time::Duration;

use async_trait::async_trait;
use blog_actors::ports::{EmailLog, MailClaim, StoreError};
use rusqlite::{params, OptionalExtension};

use super::codec::{now, to_ms};
use super::SqliteStore;

#[async_trait]
impl EmailLog for SqliteStore {
    #[tracing::instrument(level = "debug", skip(self))]
    async fn claim_order_mail(&self, order_id: &str, holder: &str, stale_after: Duration) -> Result<MailClaim, StoreError> {
        let (order_id, holder) = (order_id.to_owned(), holder.to_owned());
        let stale_ms = i64::try_from(stale_after.as_millis()).unwrap_or(i64::MAX);
        self.main
            .write("claim_order_mail", move |tx| {
                let existing: Option<(String, String, i64)> = tx
                    .prepare_cached("SELECT status, claimed_by, claimed_at FROM email_log WHERE order_id = ?1")?
                    .query_row([&order_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                let stamp = to_ms(now());
                match existing {
                    Some((status, _, _)) if status == "sent" => return Ok(MailClaim::AlreadySent),
                    Some((_, by, at)) if by != holder && stamp.saturating_sub(at) < stale_ms => {
                        return Ok(MailClaim::HeldElsewhere)
                    }
                    _ => {}
                }
                tx.prepare_cached(
                    "INSERT INTO email_log (order_id, status, claimed_by, claimed_at) VALUES (?1, 'claimed', ?2, ?3)
                     ON CONFLICT (order_id) DO UPDATE SET claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at",
                )?
                .execute(params![order_id, holder, stamp])?;
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

    #[tracing::instrument(level = "debug", skip(self))]
    async fn release_order_mail(&self, order_id: &str, holder: &str) -> Result<(), StoreError> {
        let (order_id, holder) = (order_id.to_owned(), holder.to_owned());
        self.main
            .write("release_order_mail", move |tx| {
                // Only our own unsent claim: a sent entry, or a claim another holder took over, stays.
                tx.prepare_cached("DELETE FROM email_log WHERE order_id = ?1 AND status = 'claimed' AND claimed_by = ?2")?
                    .execute(params![order_id, holder])?;
                Ok(())
            })
            .await
    }
}
