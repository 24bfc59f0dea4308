//! The store and mail traits the workers need. The service implements them
//! for its embedded store, MongoDB and SMTP; the workers only see these.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The underlying error a [`StoreError`] keeps (shared, so the error stays `Clone`).
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store call failed. Each kind asks for a different answer: a client gets
/// 503, 500 or 409 for it, a worker retries, parks or retries.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached, is busy, or did not finish: worth retrying.
    #[error("store unavailable: {context}: {source}")]
    Unavailable { context: String, #[source] source: Cause },
    /// What is stored cannot be what it claims (a damaged or foreign row or
    /// document): retrying will not help, an operator must look.
    #[error("store data corrupt: {context}: {source}")]
    Corrupt { context: String, #[source] source: Cause },
    /// The write contradicts what is stored (a unique key is taken).
    #[error("store conflict: {context}: {source}")]
    Conflict { context: String, #[source] source: Cause },
    /// Our own code failed inside a store call (a panic in a write): a defect.
    #[error("store defect: {context}: {source}")]
    Defect { context: String, #[source] source: Cause },
}

impl StoreError {
    pub fn unavailable(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Unavailable { context: context.into(), source: std::sync::Arc::new(source) }
    }

    pub fn corrupt(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Corrupt { context: context.into(), source: std::sync::Arc::new(source) }
    }

    pub fn conflict(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Conflict { context: context.into(), source: std::sync::Arc::new(source) }
    }

    pub fn defect(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Defect { context: context.into(), source: std::sync::Arc::new(source) }
    }
}

/// A reason without an error type of its own (e.g. "the writer thread is gone").
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Reason(pub &'static str);

/// Outcome of an idempotent write: whether it changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// The same or a newer version was there already.
    Unchanged,
}

/// A tag and how many posts carry it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TagCount {
    pub tag: String,
    pub posts_count: i64,
}

/// What a full rebuild found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RebuildReport {
    pub posts: u64,
    pub tags: u64,
    pub took_ms: u64,
}

/// The tag cloud and the per-post bookkeeping that keeps it exact under redelivery.
#[async_trait]
pub trait TagCloudStore: Send + Sync {
    /// Records that post `post_id` carries `tags` at `version` (`None`: deleted) and
    /// moves the counts by the difference, in one atomic step. Does nothing when the
    /// same or a newer version was applied already, so redelivery and reordering
    /// cannot skew the counts.
    async fn apply_post_tags(
        &self,
        post_id: Uuid,
        version: i64,
        tags: Option<&[String]>,
    ) -> Result<Applied, StoreError>;

    /// Recomputes the whole cloud from the posts with the store's own aggregation,
    /// and resets the per-post bookkeeping to match.
    async fn rebuild_tag_cloud(&self) -> Result<RebuildReport, StoreError>;
}

/// A lease that lets one instance at a time run a periodic job.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes or renews `name` for `holder` until `until`; false when another holder has it.
    async fn try_lease(&self, name: &str, holder: &str, until: DateTime<Utc>) -> Result<bool, StoreError>;
}

/// The de-normalized post the read endpoints serve.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostView {
    pub id: Uuid,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub excerpt: String,
    pub tags: Vec<String>,
    pub word_count: u32,
    pub reading_time_minutes: u32,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The read model in the queries database.
#[async_trait]
pub trait ReadModelStore: Send + Sync {
    /// Stores the view unless the same or a newer version (or a deletion) is there.
    async fn upsert_post_view(&self, view: &PostView) -> Result<Applied, StoreError>;
    /// Removes the view and remembers the deletion's version, so an older event
    /// arriving late cannot bring the post back.
    async fn remove_post_view(&self, post_id: Uuid, version: i64) -> Result<Applied, StoreError>;
}

/// Whether an order's mail may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailClaim {
    /// The claim is ours: send, then call [`EmailLog::mark_order_mailed`].
    Send,
    /// It was sent before; sending again would be a duplicate.
    AlreadySent,
    /// Another instance claimed it recently and may be sending right now: ask again later.
    HeldElsewhere,
}

/// The log that keeps at most one mail per order.
#[async_trait]
pub trait EmailLog: Send + Sync {
    /// Claims the order's mail for `holder` (one per process). A claim by another
    /// holder blocks for `stale_after`, then counts as abandoned (its holder died
    /// mid-send) and can be taken over: at most one sender at a time, and a crash
    /// never leaves an order unmailed for good.
    async fn claim_order_mail(&self, order_id: &str, holder: &str, stale_after: Duration) -> Result<MailClaim, StoreError>;
    async fn mark_order_mailed(&self, order_id: &str, recipient: &str, message_id: &str) -> Result<(), StoreError>;
    /// Gives up `holder`'s claim on an order that was not mailed (the attempt failed,
    /// panicked or ran out of time), so the next attempt, here or on another
    /// instance, need not wait for it to go stale. A sent order stays sent.
    async fn release_order_mail(&self, order_id: &str, holder: &str) -> Result<(), StoreError>;
}

/// A rendered email, ready for a transport.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMail {
    /// Stable per order, so a receiver can spot a duplicate and a file name repeats.
    pub message_id: String,
    pub to_name: String,
    pub to_email: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
}

/// Why a mail was not sent.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum MailError {
    /// Worth trying again later (server busy, 4xx, connection lost).
    #[error("mail temporarily not sent: {0}")]
    Transient(String),
    /// Will never work for this message (bad address, 5xx for the recipient).
    #[error("mail rejected: {0}")]
    Rejected(String),
}

/// Sends mail: .eml files in the embedded mode, SMTP in production.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError>;
}
