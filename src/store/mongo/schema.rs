//! The collections and indexes created at connect (their names are in
//! `collections.rs`, re-exported here for the files that use both).
//!
//! Everything here is idempotent, so every instance runs it at start. Keys
//! that must be unique are `_id`s (order id in the email log, lease name,
//! tag, post id), unique by construction, which is what makes the handlers
//! idempotent without extra indexes.

use mongodb::bson::{doc, Document};
use mongodb::error::ErrorKind;
use mongodb::options::IndexOptions;
use mongodb::IndexModel;

use super::db::{failed, Db};
use blog_actors::ports::StoreError;

pub(super) use super::collections::*;

const MAIN_COLLECTIONS: [&str; 8] =
    [POSTS, OUTBOX, TAG_CLOUD, TAG_CLOUD_APPLIED, POST_TOMBSTONES, EMAIL_LOG, LEASES, COUNTERS];

/// The server's code for "collection already exists".
const NAMESPACE_EXISTS: i32 = 48;

/// Creates the collections and indexes that are missing.
pub(super) async fn ensure(db: &Db) -> Result<(), StoreError> {
    // Created up front: a transaction may create a collection implicitly on
    // MongoDB 4.4+, but two transactions doing so at once conflict, and a
    // sharded cluster does not allow it at all.
    for name in MAIN_COLLECTIONS {
        create_collection(&db.main, name).await?;
    }
    create_collection(&db.queries, POST_VIEWS).await?;
    create_collection(&db.queries, FEED_ENTRIES).await?;

    let posts = db.main(POSTS);
    // Multikey: which posts carry a tag (the rebuild scans all, but lookups by tag stay cheap).
    posts.create_index(index(doc! { "tags": 1 }, "tags")).await.map_err(|e| failed("create posts index", e))?;
    let outbox = db.main(OUTBOX);
    // The relay's query: unsent (sent_at null) in seq order, straight off the index.
    outbox
        .create_indexes([
            index(doc! { "sent_at": 1, "seq": 1 }, "unsent_by_seq"),
            unique(doc! { "seq": 1 }, "seq_unique"),
        ])
        .await
        .map_err(|e| failed("create outbox indexes", e))?;
    db.post_views()
        .create_indexes([
            index(doc! { "tags": 1 }, "tags"),
            // list_posts without a tag: newest first, ties by id. `post_id` is a copy of
            // `_id`: the nx-27017 stand-in fails every insert once `_id` is in a compound index.
            index(doc! { "created_at": -1, "post_id": -1 }, "newest"),
            // list_posts with a tag.
            index(doc! { "tags": 1, "created_at": -1, "post_id": -1 }, "tag_newest"),
        ])
        .await
        .map_err(|e| failed("create post_views indexes", e))?;
    db.queries
        .collection::<Document>(FEED_ENTRIES)
        .create_indexes([
            // The feed of every post, newest first; `entry_id` copies `_id` (as `post_id` above).
            index(doc! { "deleted": 1, "published": -1, "entry_id": -1 }, "newest"),
            // A tag's feed.
            index(doc! { "tags": 1, "published": -1, "entry_id": -1 }, "tag_newest"),
        ])
        .await
        .map_err(|e| failed("create feed_entries indexes", e))?;
    Ok(())
}

async fn create_collection(db: &mongodb::Database, name: &str) -> Result<(), StoreError> {
    match db.create_collection(name).await {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.kind.as_ref(), ErrorKind::Command(c) if c.code == NAMESPACE_EXISTS) => Ok(()),
        Err(e) => Err(failed(&format!("create collection {}.{name}", db.name()), e)),
    }
}

fn index(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder().keys(keys).options(IndexOptions::builder().name(name.to_owned()).build()).build()
}

fn unique(keys: Document, name: &str) -> IndexModel {
    let options = IndexOptions::builder().name(name.to_owned()).unique(true).build();
    IndexModel::builder().keys(keys).options(options).build()
}
