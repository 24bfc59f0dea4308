//! The read model in the queries database: one de-normalized view per post
//! in `post_views`.
//!
//! A deleted post stays as a tombstone (`deleted: true`, no tags) carrying the
//! deletion's version, so a late, older event cannot bring it back.
//!
//! Each write is one conditional upsert on `_id` ([`super::versioned`]): only
//! an older view (or none) is replaced.
//!
//! `post_id` repeats `_id` as the listing's tie-breaker: the stand-in cannot
//! index `_id` inside a compound index (inserts then fail), so the sort and its
//! index use this copy, which orders the same.

use async_trait::async_trait;
use blog_actors::ports::{Applied, PostView, ReadModelStore, StoreError};
use futures::TryStreamExt;
use mongodb::bson::{self, doc, Document};
use serde::Deserialize;
use uuid::Uuid;

use super::codec::{decode, from_bson_time, id_text, parse_id, tag_array, to_bson_time, to_u32};
use super::db::{failed, insert_new, DbResult};
use super::versioned::upsert_if_newer;
use super::MongoStore;
use crate::store::ReadModelBulk;

#[async_trait]
impl ReadModelStore for MongoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(id = %view.id, version = view.version))]
    async fn upsert_post_view(&self, view: &PostView) -> Result<Applied, StoreError> {
        self.db.within("upsert_post_view", async {
            upsert_if_newer(&self.db.post_views(), "upsert_post_view", view.id, view.version, view_fields(view)).await
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn remove_post_view(&self, post_id: Uuid, version: i64) -> Result<Applied, StoreError> {
        self.db.within("remove_post_view", async {
            // Without tags the tombstone drops out of tag queries; `deleted` keeps it out of the rest.
            let fields = doc! { "post_id": id_text(post_id), "version": version, "deleted": true, "tags": [] };
            upsert_if_newer(&self.db.post_views(), "remove_post_view", post_id, version, fields).await
        })
        .await
    }
}

#[async_trait]
impl ReadModelBulk for MongoStore {
    /// New views go in with one unordered `insert_many`; those whose `_id` is
    /// taken (a view or tombstone exists) fall back to the one-by-one conditional upsert.
    #[tracing::instrument(level = "debug", skip_all, fields(count = views.len()))]
    async fn upsert_post_views(&self, views: Vec<PostView>) -> Result<u64, StoreError> {
        let op = "upsert_post_views";
        let docs = views
            .iter()
            .map(|v| {
                let mut d = doc! { "_id": id_text(v.id) };
                d.extend(view_fields(v));
                d
            })
            .collect();
        let inserted = insert_new(&self.db.post_views(), docs).await.map_err(|e| failed(op, e))?;
        if inserted == views.len() as u64 {
            return Ok(inserted);
        }
        let mut changed = inserted;
        let ids: Vec<String> = views.iter().map(|v| id_text(v.id)).collect();
        let stored: Vec<Document> = self
            .db
            .post_views()
            .find(doc! { "_id": { "$in": ids } })
            .projection(doc! { "_id": 1, "version": 1 })
            .await
            .map_err(|e| failed(op, e))?
            .try_collect()
            .await
            .map_err(|e| failed(op, e))?;
        let stored: std::collections::HashMap<String, i64> = stored
            .iter()
            .filter_map(|d| Some((d.get_str("_id").ok()?.to_owned(), d.get_i64("version").ok()?)))
            .collect();
        for view in &views {
            // Inserted just now, or as new as what is there: nothing to do.
            if stored.get(&id_text(view.id)).is_some_and(|v| *v >= view.version) {
                continue;
            }
            if upsert_if_newer(&self.db.post_views(), op, view.id, view.version, view_fields(view)).await? == Applied::Changed {
                changed += 1;
            }
        }
        Ok(changed)
    }
}

/// The stored fields of a live view (all but `_id`).
fn view_fields(view: &PostView) -> Document {
    doc! {
        "post_id": id_text(view.id),
        "slug": &view.slug,
        "title": &view.title,
        "description": &view.description,
        "excerpt": &view.excerpt,
        "tags": tag_array(&view.tags),
        "word_count": i64::from(view.word_count),
        "reading_time_minutes": i64::from(view.reading_time_minutes),
        "version": view.version,
        "created_at": to_bson_time(view.created_at),
        "updated_at": to_bson_time(view.updated_at),
        "deleted": false,
    }
}

/// A live view document as stored.
#[derive(Deserialize)]
struct StoredView {
    #[serde(rename = "_id")]
    id: String,
    slug: String,
    title: String,
    description: String,
    excerpt: String,
    tags: Vec<String>,
    word_count: i64,
    reading_time_minutes: i64,
    version: i64,
    created_at: bson::DateTime,
    updated_at: bson::DateTime,
}

/// Reads a live view (the queries filter tombstones out before this).
pub(super) fn view_from_doc(doc: Document) -> DbResult<PostView> {
    // Destructured, so a stored field that is not carried over does not compile.
    let StoredView { id, slug, title, description, excerpt, tags, word_count, reading_time_minutes, version, created_at, updated_at } =
        decode(doc)?;
    Ok(PostView {
        id: parse_id(&id)?,
        slug,
        title,
        description,
        excerpt,
        tags,
        word_count: to_u32(word_count, "word_count")?,
        reading_time_minutes: to_u32(reading_time_minutes, "reading_time_minutes")?,
        version,
        created_at: from_bson_time(created_at),
        updated_at: from_bson_time(updated_at),
    })
}
