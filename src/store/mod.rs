//! The store: posts (write model) with their outbox, the tag cloud, the read
//! model (queries database) and the email log. One trait, two adapters: the
//! embedded SQLite store and MongoDB.

#[cfg(test)]
mod contract;
pub mod mongo;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use blog_actors::event::PostSnapshot;
use blog_actors::feed_writer::FeedStore;
pub use blog_actors::ports::Leases;
use blog_actors::ports::{EmailLog, PostView, ReadModelStore, StoreError, TagCloudStore, TagCount};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::post::ValidPost;
use crate::transport::OutgoingMessage;

/// A message waiting in the outbox to be published.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// Increasing; the relay publishes in this order.
    pub seq: i64,
    /// The message as the transport takes it; its trace context is the write's, so
    /// the relay's publish span is that write's child.
    pub message: OutgoingMessage,
}

/// What changed a post: returned to the API caller, and the event already sits in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub enum PostWrite {
    Done(PostSnapshot),
    NotFound,
    /// `If-Match` named a version that is not the current one.
    VersionConflict { current: i64 },
}

/// A post brought in by `blog load`: stored at version 1 as it comes, with no
/// outbox event (see `crate::load` for why an import bypasses the outbox).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedPost {
    /// Kept when the source had one, so a re-run of the same file imports nothing twice.
    pub id: Uuid,
    pub post: ValidPost,
    /// Also its `updated_at`.
    pub created_at: DateTime<Utc>,
}

impl ImportedPost {
    /// The post as stored by an import: version 1, never updated.
    pub fn snapshot(&self) -> PostSnapshot {
        PostSnapshot {
            id: self.id,
            title: self.post.title.clone(),
            description: self.post.description.clone(),
            tags: self.post.tags.clone(),
            created_at: self.created_at,
            updated_at: self.created_at,
            version: 1,
        }
    }
}

/// One page of posts from the read model.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PostPage {
    pub items: Vec<PostView>,
    pub page: u32,
    pub per_page: u32,
    pub total: u64,
}

impl PostPage {
    /// The page as `GET /posts` answers it.
    pub fn json(&self) -> Result<bytes::Bytes, StoreError> {
        serde_json::to_vec(self).map(bytes::Bytes::from).map_err(|e| StoreError::defect("posts page JSON", e))
    }
}

/// A post view as `GET /posts/{id}` answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewJson {
    /// The view's version: its ETag.
    pub version: i64,
    /// The view serialised, shared with every response that serves it.
    pub json: bytes::Bytes,
}

impl ViewJson {
    /// `view` serialised once, to be served as it is.
    pub fn of(view: &PostView) -> Result<ViewJson, StoreError> {
        let json = serde_json::to_vec(view).map_err(|e| StoreError::defect("post view JSON", e))?;
        Ok(ViewJson { version: view.version, json: json.into() })
    }
}

/// The write side of posts. Each write stores the post and its event in the
/// outbox atomically, so a crash cannot separate them.
#[async_trait]
pub trait PostRepository: Send + Sync {
    /// Creates a post at version 1 and enqueues `post.created`.
    async fn create_post(&self, post: ValidPost, correlation_id: Option<String>) -> Result<PostSnapshot, StoreError>;
    /// Replaces a post, bumping its version, and enqueues `post.updated` with the previous tags.
    async fn update_post(&self, id: Uuid, post: ValidPost, expected_version: Option<i64>, correlation_id: Option<String>) -> Result<PostWrite, StoreError>;
    /// Deletes a post and enqueues `post.deleted` (version = last version + 1).
    async fn delete_post(&self, id: Uuid, correlation_id: Option<String>) -> Result<PostWrite, StoreError>;
    /// The post as written (not the projection).
    async fn get_post(&self, id: Uuid) -> Result<Option<PostSnapshot>, StoreError>;
    /// How many posts exist.
    async fn count_posts(&self) -> Result<u64, StoreError>;
    /// Stores a batch of posts at version 1 in one go, with no outbox events; an id
    /// that exists (or was deleted) is left alone. Answers how many were stored.
    /// For bulk loads only: the caller brings the tag cloud and the read model up
    /// to date afterwards (`rebuild_tag_cloud`, `upsert_post_views`).
    async fn import_posts(&self, posts: Vec<ImportedPost>) -> Result<u64, StoreError>;
}

/// The read model written in bulk: the projection of an import.
#[async_trait]
pub trait ReadModelBulk: Send + Sync {
    /// Stores each view unless the same or a newer version (or a deletion) is
    /// there, as `upsert_post_view` does one by one, in batches. Answers how many changed.
    async fn upsert_post_views(&self, views: Vec<PostView>) -> Result<u64, StoreError>;
}

/// The outbox the relay drains.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Enqueues a message that did not come from a post write (e.g. `POST /events`),
    /// with the trace context of the span that is current.
    async fn enqueue(&self, routing_key: &str, message_id: Uuid, body: Vec<u8>, correlation_id: Option<String>) -> Result<(), StoreError>;
    /// The oldest unsent entries, at most `limit`.
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Marks entries sent (after the transport confirmed them).
    async fn mark_sent(&self, seqs: &[i64]) -> Result<(), StoreError>;
    /// Woken after every commit that may have added entries (a post write, an
    /// enqueue), so the relay publishes at once instead of at its next poll.
    fn written(&self) -> Arc<tokio::sync::Notify>;
    /// Entries not yet sent.
    async fn backlog(&self) -> Result<u64, StoreError>;
}

/// The read side: the queries database and the tag cloud.
#[async_trait]
pub trait QueryStore: Send + Sync {
    /// Posts newest first, optionally only those with `tag`; pages count from 1.
    async fn list_posts(&self, tag: Option<&str>, page: u32, per_page: u32) -> Result<PostPage, StoreError>;
    async fn get_post_view(&self, id: Uuid) -> Result<Option<PostView>, StoreError>;
    /// [`QueryStore::list_posts`] as the JSON `GET /posts` answers. A store that
    /// knows when its read model changes may keep it between changes.
    async fn list_posts_json(&self, tag: Option<&str>, page: u32, per_page: u32) -> Result<bytes::Bytes, StoreError> {
        self.list_posts(tag, page, per_page).await?.json()
    }
    /// [`QueryStore::get_post_view`] as the JSON `GET /posts/{id}` answers, with its
    /// version (the ETag); kept between changes like [`QueryStore::list_posts_json`].
    async fn get_post_view_json(&self, id: Uuid) -> Result<Option<ViewJson>, StoreError> {
        self.get_post_view(id).await?.as_ref().map(ViewJson::of).transpose()
    }
    /// The cloud, most used first (ties by tag name), tags with no posts left out.
    async fn tag_cloud(&self, limit: Option<u32>) -> Result<Vec<TagCount>, StoreError>;
    /// [`QueryStore::tag_cloud`] as the JSON `GET /tags` answers. A store that
    /// knows when its cloud changes may keep it between changes.
    async fn tag_cloud_json(&self, limit: Option<u32>) -> Result<bytes::Bytes, StoreError> {
        let cloud = self.tag_cloud(limit).await?;
        serde_json::to_vec(&cloud).map(bytes::Bytes::from).map_err(|e| StoreError::defect("tag cloud JSON", e))
    }
}


/// Everything the service needs from a store.
#[async_trait]
pub trait Store:
    PostRepository
    + Outbox
    + QueryStore
    + TagCloudStore
    + ReadModelStore
    + ReadModelBulk
    + EmailLog
    + Leases
    + FeedStore
    + Send
    + Sync
    + 'static
{
    /// Answers when the store can serve (for `/health/ready`).
    async fn ping(&self) -> Result<(), StoreError>;
}
