//! Posts (the write model). Each write also puts its event in the outbox in
//! the same transaction, so the change and its event commit or vanish together.

use async_trait::async_trait;
use blog_actors::event::PostSnapshot;
use blog_actors::ports::StoreError;
use blog_actors::trace_context::TraceContext;
use rusqlite::{params, Connection, Row};
use uuid::Uuid;

use super::codec::{count, from_ms, id_text, now, parse_id, parse_tags, tags_json, to_ms};
use super::db::DbResult;
use super::outbox::insert_event;
use super::SqliteStore;
use crate::domain::post::ValidPost;
use crate::domain::post_write::{self, Deletion, PostChange, Update};
use crate::store::{ImportedPost, PostRepository, PostWrite};

const SELECT_POST: &str =
    "SELECT id, title, description, tags, created_at, updated_at, version FROM posts WHERE id = ?1";

#[async_trait]
impl PostRepository for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn create_post(&self, post: ValidPost, correlation_id: Option<String>) -> Result<PostSnapshot, StoreError> {
        let trace = TraceContext::current();
        self.main
            .write("create_post", move |tx| {
                let PostChange { post: snapshot, event } = post_write::create(post.clone(), now(), correlation_id.clone())?;
                tx.prepare_cached(
                    "INSERT INTO posts (id, title, description, tags, created_at, updated_at, version)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    id_text(snapshot.id),
                    snapshot.title,
                    snapshot.description,
                    tags_json(&snapshot.tags)?,
                    to_ms(snapshot.created_at),
                    to_ms(snapshot.updated_at),
                    snapshot.version
                ])?;
                replace_tags(tx, snapshot.id, &snapshot.tags)?;
                insert_event(tx, &event, trace.as_ref())?;
                Ok(snapshot)
            })
            .await
            .inspect(|_| self.outbox_written.notify_one())
    }

    #[tracing::instrument(level = "debug", skip(self, post, correlation_id))]
    async fn update_post(&self, id: Uuid, post: ValidPost, expected_version: Option<i64>, correlation_id: Option<String>) -> Result<PostWrite, StoreError> {
        let trace = TraceContext::current();
        self.main
            .write("update_post", move |tx| {
                let Some(before) = load(tx, id)? else { return Ok(PostWrite::NotFound) };
                let PostChange { post: after, event } =
                    match post_write::update(before, post.clone(), expected_version, now(), correlation_id.clone())? {
                        Update::Conflict { current } => return Ok(PostWrite::VersionConflict { current }),
                        Update::Apply(change) => *change,
                    };
                tx.prepare_cached(
                    "UPDATE posts SET title = ?2, description = ?3, tags = ?4, updated_at = ?5, version = ?6 WHERE id = ?1",
                )?
                .execute(params![
                    id_text(id),
                    after.title,
                    after.description,
                    tags_json(&after.tags)?,
                    to_ms(after.updated_at),
                    after.version
                ])?;
                replace_tags(tx, id, &after.tags)?;
                insert_event(tx, &event, trace.as_ref())?;
                Ok(PostWrite::Done(after))
            })
            .await
            .inspect(|_| self.outbox_written.notify_one())
    }

    /// Answers `Done` with the post as it was last stored.
    #[tracing::instrument(level = "debug", skip(self, correlation_id))]
    async fn delete_post(&self, id: Uuid, correlation_id: Option<String>) -> Result<PostWrite, StoreError> {
        let trace = TraceContext::current();
        self.main
            .write("delete_post", move |tx| {
                let Some(last) = load(tx, id)? else { return Ok(PostWrite::NotFound) };
                let Deletion { version, event } = post_write::delete(&last, correlation_id.clone())?;
                tx.prepare_cached("DELETE FROM post_tags WHERE post_id = ?1")?.execute([id_text(id)])?;
                tx.prepare_cached("DELETE FROM posts WHERE id = ?1")?.execute([id_text(id)])?;
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO post_tombstones (id, version, deleted_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![id_text(id), version, to_ms(now())])?;
                insert_event(tx, &event, trace.as_ref())?;
                Ok(PostWrite::Done(last))
            })
            .await
            .inspect(|_| self.outbox_written.notify_one())
    }

    async fn get_post(&self, id: Uuid) -> Result<Option<PostSnapshot>, StoreError> {
        self.main.read("get_post", move |conn| load(conn, id)).await
    }

    async fn count_posts(&self) -> Result<u64, StoreError> {
        self.main.read("count_posts", |conn| count(conn, "SELECT COUNT(*) FROM posts")).await
    }

    /// One transaction per call: the caller's batch size is the commit size.
    #[tracing::instrument(level = "debug", skip_all, fields(count = posts.len()))]
    async fn import_posts(&self, posts: Vec<ImportedPost>) -> Result<u64, StoreError> {
        self.main
            .write("import_posts", move |tx| {
                // A deleted id stays deleted: its tombstone keeps late events out, and so must an import.
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO posts (id, title, description, tags, created_at, updated_at, version)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?5, 1 WHERE NOT EXISTS (SELECT 1 FROM post_tombstones WHERE id = ?1)",
                )?;
                let mut tag = tx.prepare_cached("INSERT OR IGNORE INTO post_tags (post_id, tag) VALUES (?1, ?2)")?;
                let mut stored = 0;
                for p in &posts {
                    let id = id_text(p.id);
                    let created_at = to_ms(p.created_at);
                    if insert.execute(params![id, p.post.title, p.post.description, tags_json(&p.post.tags)?, created_at])? == 0 {
                        continue;
                    }
                    stored += 1;
                    for t in &p.post.tags {
                        tag.execute(params![id, t])?;
                    }
                }
                Ok(stored)
            })
            .await
    }
}

/// The next `limit` posts after the id `after`, in id order (for rebuilds that read every post in steps).
pub(super) fn posts_after(conn: &Connection, after: &str, limit: u32) -> DbResult<Vec<PostSnapshot>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, title, description, tags, created_at, updated_at, version FROM posts WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_and_then(params![after, limit], snapshot_from_row)?;
    rows.collect()
}

fn load(conn: &Connection, id: Uuid) -> DbResult<Option<PostSnapshot>> {
    conn.prepare_cached(SELECT_POST)?.query_and_then([id_text(id)], snapshot_from_row)?.next().transpose()
}

/// Keeps `post_tags` equal to the post's tags (what the rebuild aggregates).
fn replace_tags(conn: &Connection, id: Uuid, tags: &[String]) -> DbResult<()> {
    conn.prepare_cached("DELETE FROM post_tags WHERE post_id = ?1")?.execute([id_text(id)])?;
    let mut insert = conn.prepare_cached("INSERT OR IGNORE INTO post_tags (post_id, tag) VALUES (?1, ?2)")?;
    for tag in tags {
        insert.execute(params![id_text(id), tag])?;
    }
    Ok(())
}

/// Reads a row of `id, title, description, tags, created_at, updated_at, version`.
fn snapshot_from_row(r: &Row<'_>) -> DbResult<PostSnapshot> {
    Ok(PostSnapshot {
        id: parse_id(&r.get::<_, String>(0)?)?,
        title: r.get(1)?,
        description: r.get(2)?,
        tags: parse_tags(&r.get::<_, String>(3)?)?,
        created_at: from_ms(r.get(4)?)?,
        updated_at: from_ms(r.get(5)?)?,
        version: r.get(6)?,
    })
}
