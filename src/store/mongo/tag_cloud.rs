//! The tag cloud: kept current event by event, and rebuilt from the posts.
//!
//! `tag_cloud` holds `{_id: tag, posts_count}`. `tag_cloud_applied` remembers,
//! per post, the version and tags the counts reflect (`deleted` for a
//! deletion). An event moves the counts by the difference to what was applied,
//! and only if it is newer, all in one transaction, so redelivered or
//! reordered events leave the counts exact.

use std::collections::BTreeSet;
use std::time::Instant;

use async_trait::async_trait;
use blog_actors::ports::{Applied, RebuildReport, StoreError, TagCloudStore};
use futures::{FutureExt, TryStreamExt};
use mongodb::bson::{doc, Bson, Document};
use mongodb::ClientSession;
use serde::Deserialize;
use uuid::Uuid;

use super::codec::{decode, id_text, tag_array};
use super::db::{Db, DbResult};
use super::schema::{POSTS, POST_TOMBSTONES, TAG_CLOUD, TAG_CLOUD_APPLIED};
use super::MongoStore;

/// A `tag_cloud_applied` document as stored.
#[derive(Deserialize)]
struct AppliedDoc {
    version: i64,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    deleted: bool,
}

/// A post's id, version and tags, as the rebuild reads them.
#[derive(Deserialize)]
struct PostTags {
    #[serde(rename = "_id")]
    id: String,
    version: i64,
    #[serde(default)]
    tags: Vec<String>,
}

/// One `$group` result: a tag and how many posts carry it.
#[derive(Deserialize)]
struct TagGroup {
    #[serde(rename = "_id")]
    tag: String,
    posts_count: i64,
}

#[async_trait]
impl TagCloudStore for MongoStore {
    #[tracing::instrument(level = "debug", skip(self, tags), fields(deleted = tags.is_none()))]
    async fn apply_post_tags(&self, post_id: Uuid, version: i64, tags: Option<&[String]>) -> Result<Applied, StoreError> {
        self.db.transaction("apply_post_tags", tags, |s, db, tags| apply(s, db, post_id, version, *tags).boxed()).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn rebuild_tag_cloud(&self) -> Result<RebuildReport, StoreError> {
        let started = Instant::now();
        // One transaction, so no event is counted twice or lost while the cloud is
        // replaced. MongoDB aborts a transaction older than
        // `transactionLifetimeLimitSeconds` (60 s by default): a store whose rebuild
        // takes longer needs that limit raised, or the rebuild fails and is retried.
        // Longer than one store call may take: the rebuild's own deadline bounds it.
        let (posts, tags) = self.db.long_transaction("rebuild_tag_cloud", (), |s, db, ()| rebuild(s, db).boxed()).await?;
        Ok(RebuildReport { posts, tags, took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX) })
    }
}

/// One event's effect, inside the caller's transaction.
async fn apply(
    s: &mut ClientSession,
    db: &Db,
    post_id: Uuid,
    version: i64,
    tags: Option<&[String]>,
) -> DbResult<Applied> {
    let id = id_text(post_id);
    let applied = db.main(TAG_CLOUD_APPLIED);
    let before: Option<AppliedDoc> =
        applied.find_one(doc! { "_id": &id }).session(&mut *s).await?.map(decode).transpose()?;
    let old: BTreeSet<String> = match before {
        Some(b) if b.version >= version => return Ok(Applied::Unchanged),
        Some(b) if !b.deleted => b.tags.into_iter().collect(),
        _ => BTreeSet::new(),
    };
    let new: BTreeSet<String> = tags.into_iter().flatten().cloned().collect();

    let cloud = db.main(TAG_CLOUD);
    for tag in old.difference(&new) {
        cloud.update_one(doc! { "_id": tag }, doc! { "$inc": { "posts_count": -1_i64 } }).session(&mut *s).await?;
        cloud.delete_one(doc! { "_id": tag, "posts_count": { "$lte": 0 } }).session(&mut *s).await?;
    }
    for tag in new.difference(&old) {
        cloud
            .update_one(doc! { "_id": tag }, doc! { "$inc": { "posts_count": 1_i64 } })
            .upsert(true)
            .session(&mut *s)
            .await?;
    }

    let stored: Vec<String> = new.into_iter().collect();
    let record = doc! { "_id": &id, "version": version, "tags": tag_array(&stored), "deleted": tags.is_none() };
    applied.replace_one(doc! { "_id": &id }, record).upsert(true).session(&mut *s).await?;
    Ok(Applied::Changed)
}

/// Recomputes the cloud with the server's aggregation and resets the per-post
/// bookkeeping to match, like the SQLite store; answers (posts, tags).
async fn rebuild(s: &mut ClientSession, db: &Db) -> DbResult<(u64, u64)> {
    let pipeline = [
        // The leading `$match` is for the nx-27017 stand-in: a pipeline that starts with
        // `$unwind` there ignores every stage after `$group`. Nothing follows it here, but
        // this keeps a stage added later honoured. On MongoDB an empty match is a no-op.
        // (Narrowing it to `{"tags.0": {$exists: true}}` would match nothing on the stand-in.)
        doc! { "$match": {} },
        doc! { "$unwind": "$tags" },
        doc! { "$group": { "_id": "$tags", "posts_count": { "$sum": 1 } } },
    ];
    // The delete comes first for the nx-27017 stand-in: it opens a transaction only
    // on a command it knows sessions for, and `aggregate` is not one. On MongoDB the
    // order makes no difference (one snapshot).
    db.main(TAG_CLOUD).delete_many(doc! {}).session(&mut *s).await?;
    let groups: Vec<Document> =
        db.main(POSTS).aggregate(pipeline).session(&mut *s).await?.stream(&mut *s).try_collect().await?;
    let cloud: Vec<Document> = groups
        .into_iter()
        .map(|g| decode::<TagGroup>(g).map(|g| doc! { "_id": g.tag, "posts_count": g.posts_count }))
        .collect::<DbResult<_>>()?;
    let tag_count = cloud.len() as u64;
    if !cloud.is_empty() {
        db.main(TAG_CLOUD).insert_many(cloud).session(&mut *s).await?;
    }

    // Every post and tombstone gets a record at its current version, so the events
    // already reflected (and any late ones) count nothing. Deletion records for
    // posts this store never had stay, as in the SQLite store. The posts are
    // streamed and rewritten a batch at a time: memory and each command stay
    // small however many posts there are (all ids in one `$in` overran the
    // 48 MB message limit at 1M posts).
    let applied = db.main(TAG_CLOUD_APPLIED);
    applied.delete_many(doc! { "deleted": { "$ne": true } }).session(&mut *s).await?;
    let (posts, tombstones) = (db.main(POSTS), db.main(POST_TOMBSTONES));
    let cursor = posts.find(doc! {}).projection(doc! { "_id": 1, "version": 1, "tags": 1 }).session(&mut *s).await?;
    let posts_seen = reset_applied(s, db, cursor, false).await?;
    let cursor = tombstones.find(doc! {}).session(&mut *s).await?;
    reset_applied(s, db, cursor, true).await?;
    Ok((posts_seen, tag_count))
}

/// Posts (or tombstones, `deleted`) read at once and written back in one command each.
pub(super) const RESET_BATCH: usize = 2_000;

/// Replaces the `tag_cloud_applied` record of every post the cursor yields with
/// one at its current version; answers how many there were.
async fn reset_applied(
    s: &mut ClientSession,
    db: &Db,
    mut cursor: mongodb::SessionCursor<Document>,
    deleted: bool,
) -> DbResult<u64> {
    let applied = db.main(TAG_CLOUD_APPLIED);
    let mut seen = 0;
    loop {
        let mut batch: Vec<PostTags> = Vec::with_capacity(RESET_BATCH);
        while batch.len() < RESET_BATCH {
            match cursor.next(&mut *s).await.transpose()? {
                Some(document) => batch.push(decode(document)?),
                None => break,
            }
        }
        if batch.is_empty() {
            return Ok(seen);
        }
        seen += batch.len() as u64;
        let ids: Vec<Bson> = batch.iter().map(|p| Bson::String(p.id.clone())).collect();
        applied.delete_many(doc! { "_id": { "$in": ids } }).session(&mut *s).await?;
        let records: Vec<Document> = batch
            .iter()
            .map(|p| {
                let tags = if deleted { Vec::new() } else { p.tags.clone() };
                doc! { "_id": &p.id, "version": p.version, "tags": tag_array(&tags), "deleted": deleted }
            })
            .collect();
        applied.insert_many(records).session(&mut *s).await?;
    }
}
