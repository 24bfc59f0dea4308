//! The feed writer: keeps the entries of the Atom feeds (the newest posts, and
//! the newest posts of each tag) current on every post change; rebuilt from the
//! posts by the admin rebuild. Version-guarded like the projector, so a
//! redelivered or late event changes nothing.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::event::{Envelope, Event, PostChange, PostSnapshot};
use crate::messages::HandlerError;
use crate::post_change::apply_post_change;
use crate::ports::{Applied, RebuildReport, StoreError};
use crate::projector::excerpt;
use crate::supervision::Worker;
use crate::worker::WorkerSpec;

/// Entries in one feed: the newest posts, by publication.
pub const FEED_ENTRIES: u32 = 50;

/// A post as its feed entries show it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEntry {
    pub id: Uuid,
    pub title: String,
    /// The opening of the post, cut at a word.
    pub summary: String,
    /// One feed per tag lists the entry.
    pub tags: Vec<String>,
    /// When the post was created; the feeds list the newest first.
    pub published: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub version: i64,
}

/// What a post change does to the feeds.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedChange {
    /// The post, at its version, in every feed it belongs to.
    Upsert(FeedEntry),
    /// The post out of every feed, for good: an older version cannot bring it back.
    Delete { id: Uuid, version: i64 },
}

/// Where the feed entries are kept.
#[async_trait]
pub trait FeedStore: Send + Sync {
    /// Applies the change unless the same or a newer version (or a deletion) is stored.
    async fn apply_feed_change(&self, change: FeedChange) -> Result<Applied, StoreError>;
    /// The newest `limit` live entries, newest first (ties by id, descending), of
    /// every post or only of those tagged `tag`.
    async fn feed_entries(&self, tag: Option<&str>, limit: u32) -> Result<Vec<FeedEntry>, StoreError>;
    /// Brings every entry up to the posts and deletions in the write model; `posts`
    /// counts the live posts, `tags` the tag feeds.
    async fn rebuild_feed_entries(&self) -> Result<RebuildReport, StoreError>;
}

/// Keeps the feeds' entries.
pub struct FeedWriter {
    /// Where the entries are kept; it refuses versions older than what it holds.
    pub store: Arc<dyn FeedStore>,
}

impl Worker for FeedWriter {
    const SPEC: &'static WorkerSpec = &WorkerSpec::on_post_events("feed_writer");

    fn handle(&self, _: Arc<Envelope>, event: Event) -> impl std::future::Future<Output = Result<(), HandlerError>> + 'static {
        apply_post_change(self.store.clone(), event, async |store, change| {
            let change = match change {
                PostChange::Upserted(p) => FeedChange::Upsert(entry_of(p)),
                PostChange::Deleted(d) => FeedChange::Delete { id: d.id, version: d.version },
            };
            store.apply_feed_change(change).await
        })
    }

    fn rebuild(&self) -> Option<impl std::future::Future<Output = Result<RebuildReport, StoreError>> + 'static> {
        let store = self.store.clone();
        Some(async move { store.rebuild_feed_entries().await })
    }
}

/// The feed entry of a post.
pub fn entry_of(post: &PostSnapshot) -> FeedEntry {
    FeedEntry {
        id: post.id,
        title: post.title.clone(),
        summary: excerpt(&post.description),
        tags: post.tags.clone(),
        published: post.created_at,
        updated: post.updated_at,
        version: post.version,
    }
}
