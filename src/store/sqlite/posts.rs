//! Posts (the write model). Each write also puts its event in the outbox in
//! the same transaction, so the change and its event commit or vanish together.

use async_trait::async_trait;
use blog_actors::event::{Envelope, PostDeleted, PostSnapshot, PostUpdated, POST_CREATED, POST_DELETED, POST_UPDATED};
use blog_actors::ports::StoreError;
use blog_actors::trace_context::TraceContext;
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::codec::{from_ms, id_text, now, parse_id, parse_tags, tags_json, to_ms};
use super::db::DbResult;
use super::outbox::insert_event;
use super::SqliteStore;
use crate::domain::post::ValidPost;
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
                let stamp = now();
                let snapshot = PostSnapshot {
                    // Time-ordered (v7): new keys land at the end of the id indexes instead of on random pages.
                    id: Uuid::now_v7(),
                    title: post.title.clone(),
                    description: post.description.clone(),
                    tags: post.tags.clone(),
                    created_at: stamp,
                    updated_at: stamp,
                    version: 1,
                };
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
                let data = serde_json::to_value(&snapshot)?;
                insert_event(tx, &Envelope::new(POST_CREATED, data, correlation_id.clone()), trace.as_ref())?;
                Ok(snapshot)
            })
            .await
    }

    #[tracing::instrument(level = "debug", skip(self, post, correlation_id))]
    async fn update_post(
        &self,
        id: Uuid,
        post: ValidPost,
        expected_version: Option<i64>,
        correlation_id: Option<String>,
    ) -> Result<PostWrite, StoreError> {
        let trace = TraceContext::current();
        self.main
            .write("update_post", move |tx| {
                let Some(before) = load(tx, id)? else { return Ok(PostWrite::NotFound) };
                if expected_version.is_some_and(|v| v != before.version) {
                    return Ok(PostWrite::VersionConflict { current: before.version });
                }
                let after = PostSnapshot {
                    id,
                    title: post.title.clone(),
                    description: post.description.clone(),
                    tags: post.tags.clone(),
                    created_at: before.created_at,
                    // Never earlier than the last stamp, even if the clock stepped back.
                    updated_at: now().max(before.updated_at),
                    version: before.version + 1,
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
                let data = serde_json::to_value(PostUpdated { post: after.clone(), previous_tags: before.tags })?;
                insert_event(tx, &Envelope::new(POST_UPDATED, data, correlation_id.clone()), trace.as_ref())?;
                Ok(PostWrite::Done(after))
            })
            .await
    }

    /// Answers `Done` with the post as it was last stored.
    #[tracing::instrument(level = "debug", skip(self, correlation_id))]
    async fn delete_post(&self, id: Uuid, correlation_id: Option<String>) -> Result<PostWrite, StoreError> {
        let trace = TraceContext::current();
        self.main
            .write("delete_post", move |tx| {
                let Some(last) = load(tx, id)? else { return Ok(PostWrite::NotFound) };
                let version = last.version + 1;
                tx.prepare_cached("DELETE FROM post_tags WHERE post_id = ?1")?.execute([id_text(id)])?;
                tx.prepare_cached("DELETE FROM posts WHERE id = ?1")?.execute([id_text(id)])?;
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO post_tombstones (id, version, deleted_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![id_text(id), version, to_ms(now())])?;
                let data = serde_json::to_value(PostDeleted { id, version, tags: last.tags.clone() })?;
                insert_event(tx, &Envelope::new(POST_DELETED, data, correlation_id.clone()), trace.as_ref())?;
                Ok(PostWrite::Done(last))
            })
            .await
    }

    async fn get_post(&self, id: Uuid) -> Result<Option<PostSnapshot>, StoreError> {
        self.main.read("get_post", move |conn| load(conn, id)).await
    }

    async fn count_posts(&self) -> Result<u64, StoreError> {
        self.main
            .read("count_posts", |conn| {
                let n: i64 = conn.query_row("SELECT COUNT(*) FROM posts", [], |r| r.get(0))?;
                Ok(n.max(0) as u64)
            })
            .await
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

fn load(conn: &Connection, id: Uuid) -> DbResult<Option<PostSnapshot>> {
    let raw = conn.prepare_cached(SELECT_POST)?.query_row([id_text(id)], RawPost::from_row).optional()?;
    raw.map(RawPost::into_snapshot).transpose()
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

/// A row as stored, before its text is parsed.
struct RawPost {
    id: String,
    title: String,
    description: String,
    tags: String,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

impl RawPost {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            title: r.get(1)?,
            description: r.get(2)?,
            tags: r.get(3)?,
            created_at: r.get(4)?,
            updated_at: r.get(5)?,
            version: r.get(6)?,
        })
    }

    fn into_snapshot(self) -> DbResult<PostSnapshot> {
        Ok(PostSnapshot {
            id: parse_id(&self.id)?,
            title: self.title,
            description: self.description,
            tags: parse_tags(&self.tags)?,
            created_at: from_ms(self.created_at)?,
            updated_at: from_ms(self.updated_at)?,
            version: self.version,
        })
    }
}

#[cfg(test)]
mod tests {
    use blog_actors::event::Event;

    use super::super::testing::{outbox_events, post, store, tags};
    use super::*;
    use crate::store::Outbox;

    #[tokio::test]
    async fn creating_a_post_stores_version_one_and_enqueues_post_created() {
        let (_dir, store) = store().await;
        let created = store.create_post(post("Hello", &["rust", "sqlite"]), Some("req-1".into())).await.unwrap();
        assert_eq!(created.version, 1);
        assert_eq!(store.get_post(created.id).await.unwrap(), Some(created.clone()));
        let events = outbox_events(&store).await;
        assert_eq!(events.len(), 1);
        let (envelope, event) = &events[0];
        assert_eq!(envelope.event_type, POST_CREATED);
        assert_eq!(envelope.correlation_id.as_deref(), Some("req-1"));
        assert_eq!(event, &Event::PostCreated(created));
    }

    #[tokio::test]
    async fn updating_a_post_bumps_its_version_and_enqueues_the_previous_tags() {
        let (_dir, store) = store().await;
        let created = store.create_post(post("One", &["a", "b"]), None).await.unwrap();
        let PostWrite::Done(updated) =
            store.update_post(created.id, post("Two", &["b", "c"]), Some(1), None).await.unwrap()
        else {
            panic!("update refused")
        };
        assert_eq!(updated.version, 2);
        assert_eq!(updated.created_at, created.created_at);
        assert_eq!(store.get_post(created.id).await.unwrap(), Some(updated.clone()));
        let events = outbox_events(&store).await;
        assert_eq!(events[1].1, Event::PostUpdated(PostUpdated { post: updated, previous_tags: tags(&["a", "b"]) }));
    }

    #[tokio::test]
    async fn an_update_naming_a_stale_version_conflicts_and_enqueues_nothing() {
        let (_dir, store) = store().await;
        let created = store.create_post(post("One", &[]), None).await.unwrap();
        store.update_post(created.id, post("Two", &[]), None, None).await.unwrap();
        let answer = store.update_post(created.id, post("Three", &[]), Some(1), None).await.unwrap();
        assert_eq!(answer, PostWrite::VersionConflict { current: 2 });
        assert_eq!(store.backlog().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn writing_a_missing_post_answers_not_found() {
        let (_dir, store) = store().await;
        let id = Uuid::new_v4();
        assert_eq!(store.update_post(id, post("X", &[]), None, None).await.unwrap(), PostWrite::NotFound);
        assert_eq!(store.delete_post(id, None).await.unwrap(), PostWrite::NotFound);
        assert_eq!(store.backlog().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn deleting_a_post_enqueues_post_deleted_with_the_next_version_and_its_tags() {
        let (_dir, store) = store().await;
        let created = store.create_post(post("Gone", &["x", "y"]), None).await.unwrap();
        store.update_post(created.id, post("Gone", &["y"]), None, None).await.unwrap();
        assert!(matches!(store.delete_post(created.id, Some("c".into())).await.unwrap(), PostWrite::Done(_)));
        assert_eq!(store.get_post(created.id).await.unwrap(), None);
        assert_eq!(store.count_posts().await.unwrap(), 0);
        let (envelope, event) = outbox_events(&store).await.pop().unwrap();
        assert_eq!(envelope.correlation_id.as_deref(), Some("c"));
        assert_eq!(event, Event::PostDeleted(PostDeleted { id: created.id, version: 3, tags: tags(&["y"]) }));
    }

    #[tokio::test]
    async fn an_import_stores_new_posts_once_without_events_and_its_views_in_bulk() {
        use blog_actors::projector::view_of;

        use crate::store::{ImportedPost, QueryStore, ReadModelBulk};

        let (_dir, store) = store().await;
        let gone = store.create_post(post("Gone", &["a"]), None).await.unwrap();
        store.delete_post(gone.id, None).await.unwrap();
        let stamp = chrono::DateTime::from_timestamp_millis(1_704_067_200_000).unwrap();
        let imported = |id: Uuid, title: &str| ImportedPost { id, post: post(title, &["a", "b"]), created_at: stamp };
        let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
        let batch = vec![imported(one, "One"), imported(two, "Two"), imported(gone.id, "Back")];
        assert_eq!(store.import_posts(batch.clone()).await.unwrap(), 2, "the deleted id stays deleted");
        assert_eq!(store.import_posts(batch.clone()).await.unwrap(), 0, "a second run stores nothing");
        assert_eq!(store.backlog().await.unwrap(), 2, "only the create and delete above");
        assert_eq!(store.get_post(one).await.unwrap(), Some(batch[0].snapshot()));

        let views: Vec<_> = batch[..2].iter().map(|p| view_of(&p.snapshot())).collect();
        assert_eq!(store.upsert_post_views(views.clone()).await.unwrap(), 2);
        assert_eq!(store.upsert_post_views(views.clone()).await.unwrap(), 0);
        let mut newer = views[0].clone();
        newer.version = 2;
        newer.title = "One again".into();
        assert_eq!(store.upsert_post_views(vec![newer.clone(), views[1].clone()]).await.unwrap(), 1);
        assert_eq!(store.get_post_view(one).await.unwrap(), Some(newer));
        assert_eq!(store.list_posts(Some("b"), 1, 10).await.unwrap().total, 2);
    }
}
