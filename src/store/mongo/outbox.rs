//! The outbox: events waiting for the relay, written in the same transaction
//! as the change that caused them.
//!
//! `seq` comes from a counter document incremented inside that transaction.
//! Every outbox write touches the counter, so concurrent writers conflict and
//! one retries: seqs are handed out in commit order, and the relay, reading in
//! seq order, never sees a lower seq appear behind one it already published.

use async_trait::async_trait;
use blog_actors::event::Envelope;
use blog_actors::ports::StoreError;
use blog_actors::trace_context::TraceContext;
use futures::future::BoxFuture;
use futures::FutureExt;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, Document};
use mongodb::options::ReturnDocument;
use mongodb::ClientSession;
use serde::Deserialize;
use uuid::Uuid;

use super::codec::{decode, id_text, now, parse_id, to_bson_time};
use super::db::{failed, Db, DbError, DbResult};
use super::schema::{COUNTERS, OUTBOX};
use super::MongoStore;
use crate::store::{Outbox, OutboxEntry};
use crate::transport::OutgoingMessage;

/// Sent entries are kept this long, for looking into what went out recently,
/// then deleted so the collection does not grow forever.
const KEEP_SENT_MS: i64 = 60 * 60 * 1000;

impl MongoStore {
    /// Runs a transaction whose `body` puts an event in the outbox (with [`insert_event`]),
    /// then, once it committed, wakes the relay instead of leaving the event to its next poll.
    pub(super) async fn transaction_with_event<T, C, F>(&self, op: &'static str, ctx: C, body: F) -> Result<T, StoreError>
    where
        T: Send,
        C: Send + Sync,
        F: for<'s> FnMut(&'s mut ClientSession, &'s Db, &'s C) -> BoxFuture<'s, DbResult<T>> + Send,
    {
        let out = self.db.transaction(op, ctx, body).await?;
        self.outbox_written.notify_one();
        Ok(out)
    }
}

/// Adds `envelope` to the outbox inside the caller's transaction, with the trace context of the write.
pub(super) async fn insert_event(
    session: &mut ClientSession,
    db: &Db,
    envelope: &Envelope,
    trace: Option<&TraceContext>,
) -> DbResult<()> {
    let cause = (envelope.correlation_id.as_deref(), trace);
    insert(session, db, &envelope.event_type, envelope.id, envelope.to_bytes(), cause).await
}

/// `cause`: the correlation id and the trace context the event travels with.
async fn insert(
    session: &mut ClientSession,
    db: &Db,
    routing_key: &str,
    message_id: Uuid,
    body: Vec<u8>,
    (correlation_id, trace): (Option<&str>, Option<&TraceContext>),
) -> DbResult<()> {
    let seq = next_seq(session, db).await?;
    let text = |value: Option<&String>| value.map_or(Bson::Null, |v| Bson::String(v.clone()));
    let entry = doc! {
        "seq": seq,
        "message_id": id_text(message_id),
        "routing_key": routing_key,
        "body": Binary { subtype: BinarySubtype::Generic, bytes: body },
        "correlation_id": correlation_id.map_or(Bson::Null, |c| Bson::String(c.to_owned())),
        "traceparent": text(trace.map(|t| &t.traceparent)),
        "tracestate": text(trace.and_then(|t| t.tracestate.as_ref())),
        "created_at": to_bson_time(now()),
        // Stored as null (not left out) so the unsent query matches on the index's key.
        "sent_at": Bson::Null,
    };
    db.main(OUTBOX).insert_one(entry).session(&mut *session).await?;
    Ok(())
}

/// The next outbox seq: 1, 2, 3, …
async fn next_seq(session: &mut ClientSession, db: &Db) -> DbResult<i64> {
    let counter = db
        .main(COUNTERS)
        .find_one_and_update(doc! { "_id": "outbox_seq" }, doc! { "$inc": { "value": 1_i64 } })
        .upsert(true)
        .return_document(ReturnDocument::After)
        .session(&mut *session)
        .await?
        .ok_or_else(|| DbError::Data("the outbox counter upsert returned nothing".into()))?;
    counter_value(&counter)
}

fn counter_value(counter: &Document) -> DbResult<i64> {
    match counter.get("value") {
        Some(Bson::Int64(n)) => Ok(*n),
        Some(Bson::Int32(n)) => Ok(i64::from(*n)),
        other => Err(DbError::Data(format!("outbox counter value {other:?}"))),
    }
}

/// An outbox document as stored.
#[derive(Deserialize)]
struct StoredEntry {
    seq: i64,
    message_id: String,
    routing_key: String,
    body: Binary,
    correlation_id: Option<String>,
    /// Absent from entries written before trace contexts were kept.
    #[serde(default)]
    traceparent: Option<String>,
    #[serde(default)]
    tracestate: Option<String>,
}

#[async_trait]
impl Outbox for MongoStore {
    #[tracing::instrument(level = "debug", skip(self, body, correlation_id))]
    async fn enqueue(&self, routing_key: &str, message_id: Uuid, body: Vec<u8>, correlation_id: Option<String>) -> Result<(), StoreError> {
        let ctx = (routing_key, body, correlation_id, TraceContext::current());
        self.transaction_with_event("outbox enqueue", ctx, |s, db, (key, body, corr, trace)| {
            insert(s, db, key, message_id, body.clone(), (corr.as_deref(), trace.as_ref())).boxed()
        })
        .await
    }

    fn written(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.outbox_written.clone()
    }

    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.db.within("pending", async {
            let op = "outbox pending";
            if limit == 0 {
                return Ok(Vec::new()); // `limit(0)` would mean no limit to the server.
            }
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let outbox = self.db.main(OUTBOX);
            let docs = self.db.scan(op, outbox.find(doc! { "sent_at": { "$eq": Bson::Null } }).sort(doc! { "seq": 1 }).limit(limit)).await?;
            docs.into_iter().map(|d| entry(d).map_err(|e| failed(op, e))).collect()
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(count = seqs.len()))]
    async fn mark_sent(&self, seqs: &[i64]) -> Result<(), StoreError> {
        self.db.within("mark_sent", async {
            let op = "outbox mark_sent";
            let outbox = self.db.main(OUTBOX);
            let sent_at = now();
            // No transaction needed: marking is idempotent, and the clean-up only
            // touches entries marked an hour ago.
            if !seqs.is_empty() {
                outbox
                    .update_many(
                        doc! { "seq": { "$in": seqs }, "sent_at": { "$eq": Bson::Null } },
                        doc! { "$set": { "sent_at": to_bson_time(sent_at) } },
                    )
                    .await
                    .map_err(|e| failed(op, e))?;
            }
            // Entries sent and created over an hour ago go. By `created_at`, not `sent_at`:
            // the nx-27017 stand-in stores dates written by `$set` as strings, which then
            // do not compare with a date; `created_at` was inserted, so it is a real date.
            let cutoff = mongodb::bson::DateTime::from_millis(sent_at.timestamp_millis() - KEEP_SENT_MS);
            outbox
                .delete_many(doc! { "sent_at": { "$ne": Bson::Null }, "created_at": { "$lt": cutoff } })
                .await
                .map_err(|e| failed(op, e))?;
            Ok(())
        })
        .await
    }

    async fn backlog(&self) -> Result<u64, StoreError> {
        self.db.within("backlog", async {
            self.db
                .main(OUTBOX)
                .count_documents(doc! { "sent_at": { "$eq": Bson::Null } })
                .max_time(self.db.timeout())
                .await
                .map_err(|e| failed("outbox backlog", e))
        })
        .await
    }
}

fn entry(doc: Document) -> DbResult<OutboxEntry> {
    let stored: StoredEntry = decode(doc)?;
    let message = OutgoingMessage {
        message_id: parse_id(&stored.message_id)?,
        routing_key: stored.routing_key,
        body: stored.body.bytes,
        correlation_id: stored.correlation_id,
        trace: stored.traceparent.and_then(|tp| TraceContext::parse(&tp, stored.tracestate.as_deref())),
    };
    Ok(OutboxEntry { seq: stored.seq, message })
}
