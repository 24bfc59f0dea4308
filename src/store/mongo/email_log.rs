//! The email log: at most one mail per order, `_id` = order id.
//!
//! A claim (holder, token, time) is written before sending and turned into
//! `sent` after, so a redelivered `order.fulfilled` finds `sent` and is not
//! mailed again, and a concurrent one on another instance finds a fresh claim
//! and waits. A claim that never became `sent` (its holder died mid-send) goes
//! stale and the next attempt sends: the only choice when the mail server is not transactional.

use std::time::Duration;

use async_trait::async_trait;
use blog_actors::ports::{EmailLog, MailClaim, StoreError};
use mongodb::bson::doc;
use uuid::Uuid;

use super::codec::{from_bson_time, now, to_bson_time};
use super::db::{failed, is_duplicate_key};
use super::schema::EMAIL_LOG;
use super::MongoStore;

#[async_trait]
impl EmailLog for MongoStore {
    #[tracing::instrument(level = "debug", skip(self))]
    async fn claim_order_mail(&self, order_id: &str, holder: &str, stale_after: Duration) -> Result<MailClaim, StoreError> {
        self.db.within("claim_order_mail", async {
            let op = "claim_order_mail";
            let log = self.db.main(EMAIL_LOG);
            // Each claim has a token of its own, so a take-over replaces exactly the
            // claim it judged stale (compare-and-swap), never a newer one.
            let claim = |token: &str| {
                doc! { "_id": order_id, "status": "claimed", "claimed_by": holder, "claim": token, "claimed_at": to_bson_time(now()) }
            };
            // Insert first: the common case (a new order) is one round trip, and the
            // `_id` decides between racing claims.
            match log.insert_one(claim(&Uuid::new_v4().to_string())).await {
                Ok(_) => return Ok(MailClaim::Send),
                Err(e) if is_duplicate_key(&e) => {}
                Err(e) => return Err(failed(op, e)),
            }
            let Some(entry) = log.find_one(doc! { "_id": order_id }).await.map_err(|e| failed(op, e))? else {
                return Ok(MailClaim::HeldElsewhere);
            };
            if entry.get_str("status").is_ok_and(|s| s == "sent") {
                return Ok(MailClaim::AlreadySent);
            }
            let by = entry.get_str("claimed_by").unwrap_or_default();
            let age = entry
                .get_datetime("claimed_at")
                .map(|at| now().signed_duration_since(from_bson_time(*at)))
                .ok()
                .and_then(|age| age.to_std().ok())
                .unwrap_or(Duration::MAX);
            if by != holder && age < stale_after {
                return Ok(MailClaim::HeldElsewhere);
            }
            let token = entry.get_str("claim").unwrap_or_default().to_owned();
            let taken = log
                .replace_one(doc! { "_id": order_id, "status": "claimed", "claim": &token }, claim(&Uuid::new_v4().to_string()))
                .await
                .map_err(|e| failed(op, e))?;
            Ok(if taken.matched_count == 1 { MailClaim::Send } else { MailClaim::HeldElsewhere })
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self, recipient))]
    async fn mark_order_mailed(&self, order_id: &str, recipient: &str, message_id: &str) -> Result<(), StoreError> {
        self.db.within("mark_order_mailed", async {
            let op = "mark_order_mailed";
            let log = self.db.main(EMAIL_LOG);
            let stamp = to_bson_time(now());
            // Keeps the claim's time when there is one. A whole-document upsert rather
            // than `$set` (the nx-27017 stand-in stores dates written by `$set` as
            // strings); it also works when the claim is missing.
            let claimed_at = log
                .find_one(doc! { "_id": order_id })
                .await
                .map_err(|e| failed(op, e))?
                .and_then(|d| d.get_datetime("claimed_at").ok().copied())
                .unwrap_or(stamp);
            let entry = doc! {
                "_id": order_id,
                "status": "sent",
                "recipient": recipient,
                "message_id": message_id,
                "claimed_at": claimed_at,
                "sent_at": stamp,
            };
            log.replace_one(doc! { "_id": order_id }, entry).upsert(true).await.map_err(|e| failed(op, e))?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn release_order_mail(&self, order_id: &str, holder: &str) -> Result<(), StoreError> {
        self.db.within("release_order_mail", async {
            // Only our own unsent claim: a sent entry, or a claim another holder took over, stays.
            let mine = doc! { "_id": order_id, "status": "claimed", "claimed_by": holder };
            self.db.main(EMAIL_LOG).delete_one(mine).await.map_err(|e| failed("release_order_mail", e))?;
            Ok(())
        })
        .await
    }
}
