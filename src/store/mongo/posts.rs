//! Posts (the write model). Each write also puts its event in the outbox in
//! the same transaction, so the change and its event commit or vanish together.

use async_trait::async_trait;
use blog_actors::event::PostSnapshot;
use blog_actors::ports::StoreError;
use blog_actors::trace_context::TraceContext;
use futures::{FutureExt, TryStreamExt};
use mongodb::bson::{self, doc, Document};
use mongodb::ClientSession;
use serde::Deserialize;
use uuid::Uuid;

use super::codec::{decode, from_bson_time, id_text, now, parse_id, tag_array, to_bson_time};
use super::db::{failed, insert_new, Db, DbResult};
use super::outbox::insert_event;
use super::schema::{POSTS, POST_TOMBSTONES};
use super::MongoStore;
use crate::domain::post::ValidPost;
use crate::domain::post_write::{self, Deletion, PostChange, Update};
use crate::store::{ImportedPost, PostRepository, PostWrite};

#[async_trait]
impl PostRepository for MongoStore {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn create_post(&self, post: ValidPost, correlation_id: Option<String>) -> Result<PostSnapshot, StoreError> {
        // Built outside the body, so a retried attempt enqueues the same event id
        // (update and delete build theirs inside: their data depends on what they read).
        let PostChange { post: snapshot, event: envelope } =
            post_write::create(post, now(), correlation_id).map_err(|e| failed("create_post", e))?;
        let trace = TraceContext::current();
        self.transaction_with_event("create_post", (&snapshot, &envelope, &trace), |s, db, (snapshot, envelope, trace)| {
            async move {
                db.main(POSTS).insert_one(post_doc(snapshot)).session(&mut *s).await?;
                insert_event(s, db, envelope, trace.as_ref()).await
            }
            .boxed()
        })
        .await?;
        Ok(snapshot)
    }

    #[tracing::instrument(level = "debug", skip(self, post, correlation_id))]
    async fn update_post(&self, id: Uuid, post: ValidPost, expected_version: Option<i64>, correlation_id: Option<String>) -> Result<PostWrite, StoreError> {
        let trace = TraceContext::current();
        self.transaction_with_event("update_post", (&post, &correlation_id, &trace), |s, db, (post, correlation_id, trace)| {
            async move {
                let Some(before) = load(s, db, id).await? else { return Ok(PostWrite::NotFound) };
                let previous_version = before.version;
                let PostChange { post: after, event } =
                    match post_write::update(before, (*post).clone(), expected_version, now(), (*correlation_id).clone())? {
                        Update::Conflict { current } => return Ok(PostWrite::VersionConflict { current }),
                        Update::Apply(change) => *change,
                    };
                // A whole-document replace rather than `$set`: the nx-27017 stand-in
                // stores dates written by `$set` as strings. The version in the filter
                // is belt and braces: the transaction's write conflict already stops
                // a concurrent update.
                db.main(POSTS)
                    .replace_one(doc! { "_id": id_text(id), "version": previous_version }, post_doc(&after))
                    .session(&mut *s)
                    .await?;
                insert_event(s, db, &event, trace.as_ref()).await?;
                Ok(PostWrite::Done(after))
            }
            .boxed()
        })
        .await
    }

    /// Answers `Done` with the post as it was last stored.
    #[tracing::instrument(level = "debug", skip(self, correlation_id))]
    async fn delete_post(&self, id: Uuid, correlation_id: Option<String>) -> Result<PostWrite, StoreError> {
        let trace = TraceContext::current();
        self.transaction_with_event("delete_post", (correlation_id, trace), |s, db, (correlation_id, trace)| {
            async move {
                let Some(last) = load(s, db, id).await? else { return Ok(PostWrite::NotFound) };
                let Deletion { version, event } = post_write::delete(&last, correlation_id.clone())?;
                db.main(POSTS).delete_one(doc! { "_id": id_text(id) }).session(&mut *s).await?;
                leave_tombstone(s, db, id, version).await?;
                insert_event(s, db, &event, trace.as_ref()).await?;
                Ok(PostWrite::Done(last))
            }
            .boxed()
        })
        .await
    }

    async fn get_post(&self, id: Uuid) -> Result<Option<PostSnapshot>, StoreError> {
        self.db.within("get_post", async {
            let found =
                self.db.main(POSTS).find_one(doc! { "_id": id_text(id) }).await.map_err(|e| failed("get_post", e))?;
            found.map(snapshot).transpose().map_err(|e| failed("get_post", e))
        })
        .await
    }

    async fn count_posts(&self) -> Result<u64, StoreError> {
        self.db.within("count_posts", async {
            self.db.main(POSTS).count_documents(doc! {}).await.map_err(|e| failed("count_posts", e))
        })
        .await
    }

    /// One unordered `insert_many` per call, no transaction: there is no outbox entry
    /// to keep in step, and a re-run skips what the first run stored (duplicate `_id`).
    #[tracing::instrument(level = "debug", skip_all, fields(count = posts.len()))]
    async fn import_posts(&self, posts: Vec<ImportedPost>) -> Result<u64, StoreError> {
        let op = "import_posts";
        // A deleted id stays deleted: its tombstone keeps late events out, and so must an import.
        let ids: Vec<String> = posts.iter().map(|p| id_text(p.id)).collect();
        let deleted: Vec<Document> = self
            .db
            .main(POST_TOMBSTONES)
            .find(doc! { "_id": { "$in": &ids } })
            .projection(doc! { "_id": 1 })
            .await
            .map_err(|e| failed(op, e))?
            .try_collect()
            .await
            .map_err(|e| failed(op, e))?;
        let deleted: std::collections::HashSet<&str> = deleted.iter().filter_map(|d| d.get_str("_id").ok()).collect();
        let docs: Vec<Document> = posts
            .iter()
            .filter(|p| !deleted.contains(id_text(p.id).as_str()))
            .map(|p| post_doc(&p.snapshot()))
            .collect();
        insert_new(&self.db.main(POSTS), docs).await.map_err(|e| failed(op, e))
    }
}

/// The post with `id`, read inside the caller's transaction.
async fn load(session: &mut ClientSession, db: &Db, id: Uuid) -> DbResult<Option<PostSnapshot>> {
    let found = db.main(POSTS).find_one(doc! { "_id": id_text(id) }).session(session).await?;
    found.map(snapshot).transpose()
}

fn post_doc(post: &PostSnapshot) -> Document {
    doc! {
        "_id": id_text(post.id),
        "title": &post.title,
        "description": &post.description,
        "tags": tag_array(&post.tags),
        "created_at": to_bson_time(post.created_at),
        "updated_at": to_bson_time(post.updated_at),
        "version": post.version,
    }
}

/// Remembers a deleted post's last version, so a rebuild can mark it deleted in the
/// tag cloud's bookkeeping.
async fn leave_tombstone(session: &mut ClientSession, db: &Db, id: Uuid, version: i64) -> DbResult<()> {
    db.main(POST_TOMBSTONES)
        .replace_one(doc! { "_id": id_text(id) }, doc! { "_id": id_text(id), "version": version, "deleted_at": to_bson_time(now()) })
        .upsert(true)
        .session(session)
        .await?;
    Ok(())
}

/// A post document as stored.
#[derive(Deserialize)]
struct StoredPost {
    #[serde(rename = "_id")]
    id: String,
    title: String,
    description: String,
    tags: Vec<String>,
    created_at: bson::DateTime,
    updated_at: bson::DateTime,
    version: i64,
}

pub(super) fn snapshot(doc: Document) -> DbResult<PostSnapshot> {
    // Destructured, so a stored field that is not carried over does not compile.
    let StoredPost { id, title, description, tags, created_at, updated_at, version } = decode(doc)?;
    let (created_at, updated_at) = (from_bson_time(created_at), from_bson_time(updated_at));
    Ok(PostSnapshot { id: parse_id(&id)?, title, description, tags, created_at, updated_at, version })
}
