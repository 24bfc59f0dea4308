//! The feed writer's entries in the queries database: one document per post in
//! `feed_entries`, replaced only by a newer version ([`super::versioned`]); a
//! deleted post stays as a tombstone (`deleted: true`, no tags) with its
//! deletion's version. `entry_id` repeats `_id` as the sort's tie-breaker (the
//! stand-in cannot index `_id` inside a compound index; see `read_model.rs`).

use std::collections::HashSet;

use async_trait::async_trait;
use blog_actors::feed_writer::{entry_of, FeedChange, FeedEntry, FeedStore};
use blog_actors::ports::{Applied, RebuildReport, StoreError};
use futures::TryStreamExt;
use mongodb::bson::{self, doc, Document};
use mongodb::Collection;
use serde::Deserialize;

use super::codec::{decode, from_bson_time, id_text, parse_id, tag_array, to_bson_time};
use super::db::{failed, DbResult};
use super::posts::snapshot;
use super::schema::{FEED_ENTRIES, POSTS, POST_TOMBSTONES};
use super::versioned::upsert_if_newer;
use super::MongoStore;

#[async_trait]
impl FeedStore for MongoStore {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn apply_feed_change(&self, change: FeedChange) -> Result<Applied, StoreError> {
        self.db.within("apply_feed_change", async {
            apply(&self.feed_entries(), "apply_feed_change", &change).await
        })
        .await
    }

    async fn feed_entries(&self, tag: Option<&str>, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        self.db.within("feed_entries", async {
            let op = "feed_entries";
            // `$in` rather than `{tags: tag}`: the same on MongoDB, and the form the stand-in matches everywhere.
            let mut filter = doc! { "deleted": false };
            if let Some(tag) = tag {
                filter.insert("tags", doc! { "$in": [tag] });
            }
            if limit == 0 {
                return Ok(Vec::new()); // `limit(0)` would mean no limit to the server.
            }
            let entries = self.feed_entries();
            let docs = self.db.scan(op, entries.find(filter).sort(doc! { "published": -1, "entry_id": -1 }).limit(i64::from(limit))).await?;
            docs.into_iter().map(entry_from_doc).collect::<DbResult<Vec<_>>>().map_err(|e| failed(op, e))
        })
        .await
    }

    /// Post by post, version-guarded like the events, so a change committed
    /// meanwhile is never undone; then every remembered deletion.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn rebuild_feed_entries(&self) -> Result<RebuildReport, StoreError> {
        let op = "rebuild_feed_entries";
        let started = std::time::Instant::now();
        let entries = self.feed_entries();
        let (mut posts, mut tags) = (0u64, HashSet::new());
        let mut cursor = self.db.main(POSTS).find(doc! {}).await.map_err(|e| failed(op, e))?;
        while let Some(doc) = cursor.try_next().await.map_err(|e| failed(op, e))? {
            let post = snapshot(doc).map_err(|e| failed(op, e))?;
            posts += 1;
            tags.extend(post.tags.iter().cloned());
            apply(&entries, op, &FeedChange::Upsert(entry_of(&post))).await?;
        }
        let mut cursor = self.db.main(POST_TOMBSTONES).find(doc! {}).await.map_err(|e| failed(op, e))?;
        while let Some(doc) = cursor.try_next().await.map_err(|e| failed(op, e))? {
            let tombstone: StoredTombstone = decode(doc).map_err(|e| failed(op, e))?;
            let id = parse_id(&tombstone.id).map_err(|e| failed(op, e))?;
            apply(&entries, op, &FeedChange::Delete { id, version: tombstone.version }).await?;
        }
        let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(RebuildReport { posts, tags: tags.len() as u64, took_ms })
    }
}

impl MongoStore {
    fn feed_entries(&self) -> Collection<Document> {
        self.db.queries.collection(FEED_ENTRIES)
    }
}

async fn apply(entries: &Collection<Document>, op: &str, change: &FeedChange) -> Result<Applied, StoreError> {
    match change {
        FeedChange::Upsert(e) => {
            let fields = doc! {
                "entry_id": id_text(e.id),
                "version": e.version,
                "deleted": false,
                "title": &e.title,
                "summary": &e.summary,
                "tags": tag_array(&e.tags),
                "published": to_bson_time(e.published),
                "updated": to_bson_time(e.updated),
            };
            upsert_if_newer(entries, op, e.id, e.version, fields).await
        }
        FeedChange::Delete { id, version } => {
            // Without tags the tombstone drops out of tag feeds; `deleted` keeps it out of the rest.
            let fields = doc! { "entry_id": id_text(*id), "version": version, "deleted": true, "tags": [] };
            upsert_if_newer(entries, op, *id, *version, fields).await
        }
    }
}

/// A `post_tombstones` document: a deletion and its version.
#[derive(Deserialize)]
struct StoredTombstone {
    #[serde(rename = "_id")]
    id: String,
    version: i64,
}

/// A live entry document as stored.
#[derive(Deserialize)]
struct StoredEntry {
    #[serde(rename = "_id")]
    id: String,
    title: String,
    summary: String,
    tags: Vec<String>,
    published: bson::DateTime,
    updated: bson::DateTime,
    version: i64,
}

fn entry_from_doc(doc: Document) -> DbResult<FeedEntry> {
    // Destructured, so a stored field that is not carried over does not compile.
    let StoredEntry { id, title, summary, tags, published, updated, version } = decode(doc)?;
    let (published, updated) = (from_bson_time(published), from_bson_time(updated));
    Ok(FeedEntry { id: parse_id(&id)?, title, summary, tags, published, updated, version })
}
