//! The read model in `blog_queries.sqlite`: one de-normalized view per post.
//!
//! A deleted post stays as a tombstone row (deleted = 1) carrying the
//! deletion's version, so a late, older event cannot bring it back.

use async_trait::async_trait;
use blog_actors::ports::{Applied, PostView, ReadModelStore, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::codec::{from_ms, id_text, parse_id, parse_tags, tags_json, to_ms, to_u32};
use super::db::DbResult;
use super::SqliteStore;
use crate::store::ReadModelBulk;

/// The columns [`view_from_row`] reads, in its order.
pub(super) const VIEW_COLUMNS: &str = "v.id, v.slug, v.title, v.description, v.excerpt, v.tags, v.word_count, \
     v.reading_time_minutes, v.version, v.created_at, v.updated_at";

#[async_trait]
impl ReadModelStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(id = %view.id, version = view.version))]
    async fn upsert_post_view(&self, view: &PostView) -> Result<Applied, StoreError> {
        let view = view.clone();
        self.queries.write("upsert_post_view", move |tx| upsert(tx, &view)).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn remove_post_view(&self, post_id: Uuid, version: i64) -> Result<Applied, StoreError> {
        self.queries
            .write("remove_post_view", move |tx| {
                let id = id_text(post_id);
                let stored = stored(tx, &id)?;
                if stored.is_some_and(|(v, _)| v >= version) {
                    return Ok(Applied::Unchanged);
                }
                // The deletion may arrive before the creation: the tombstone row is made from defaults then.
                tx.prepare_cached(
                    "INSERT INTO post_views (id, version, deleted) VALUES (?1, ?2, 1)
                     ON CONFLICT (id) DO UPDATE SET version = excluded.version, deleted = 1",
                )?
                .execute(params![id, version])?;
                if let Some((_, live)) = stored {
                    drop_tags(tx, &id, live)?;
                }
                Ok(Applied::Changed)
            })
            .await
    }
}

#[async_trait]
impl ReadModelBulk for SqliteStore {
    /// One transaction per call: the caller's batch size is the commit size.
    #[tracing::instrument(level = "debug", skip_all, fields(count = views.len()))]
    async fn upsert_post_views(&self, views: Vec<PostView>) -> Result<u64, StoreError> {
        self.queries
            .write("upsert_post_views", move |tx| {
                let mut changed = 0;
                for view in &views {
                    if upsert(tx, view)? == Applied::Changed {
                        changed += 1;
                    }
                }
                Ok(changed)
            })
            .await
    }
}

/// Stores `view` unless the same or a newer version is there, inside the caller's transaction.
fn upsert(tx: &Connection, view: &PostView) -> DbResult<Applied> {
    let id = id_text(view.id);
    let stored = stored(tx, &id)?;
    if stored.is_some_and(|(v, _)| v >= view.version) {
        return Ok(Applied::Unchanged);
    }
    tx.prepare_cached(
        "INSERT INTO post_views (id, slug, title, description, excerpt, tags, word_count,
             reading_time_minutes, version, created_at, updated_at, deleted)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0)
         ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, title = excluded.title,
             description = excluded.description, excerpt = excluded.excerpt, tags = excluded.tags,
             word_count = excluded.word_count, reading_time_minutes = excluded.reading_time_minutes,
             version = excluded.version, created_at = excluded.created_at,
             updated_at = excluded.updated_at, deleted = 0",
    )?
    .execute(params![
        id,
        view.slug,
        view.title,
        view.description,
        view.excerpt,
        tags_json(&view.tags)?,
        view.word_count,
        view.reading_time_minutes,
        view.version,
        to_ms(view.created_at),
        to_ms(view.updated_at)
    ])?;
    if let Some((_, live)) = stored {
        drop_tags(tx, &id, live)?;
    }
    let mut insert =
        tx.prepare_cached("INSERT OR IGNORE INTO post_view_tags (post_id, tag, created_at) VALUES (?1, ?2, ?3)")?;
    for tag in &view.tags {
        if insert.execute(params![id, tag, to_ms(view.created_at)])? > 0 {
            count(tx, tag, 1)?;
        }
    }
    count(tx, "", 1)?;
    Ok(Applied::Changed)
}

/// Removes a view's tag rows and takes it out of the counts (`live`: it was counted).
fn drop_tags(tx: &Connection, id: &str, live: bool) -> DbResult<()> {
    let tags: Vec<String> = tx
        .prepare_cached("DELETE FROM post_view_tags WHERE post_id = ?1 RETURNING tag")?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for tag in &tags {
        count(tx, tag, -1)?;
    }
    if live {
        count(tx, "", -1)?;
    }
    Ok(())
}

/// Moves the live count of `tag` ('' for all) by `by`; a count that reaches 0 goes.
fn count(tx: &Connection, tag: &str, by: i64) -> DbResult<()> {
    tx.prepare_cached(
        "INSERT INTO post_view_counts (tag, n) VALUES (?1, ?2) ON CONFLICT (tag) DO UPDATE SET n = n + excluded.n",
    )?
    .execute(params![tag, by])?;
    if by < 0 {
        tx.prepare_cached("DELETE FROM post_view_counts WHERE tag = ?1 AND tag <> '' AND n <= 0")?.execute([tag])?;
    }
    Ok(())
}

/// The version stored for a post, and whether it is live (not a tombstone).
fn stored(conn: &Connection, id: &str) -> DbResult<Option<(i64, bool)>> {
    Ok(conn
        .prepare_cached("SELECT version, deleted = 0 FROM post_views WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Reads a row selected with [`VIEW_COLUMNS`].
pub(super) fn view_from_row(r: &Row<'_>) -> DbResult<PostView> {
    Ok(PostView {
        id: parse_id(&r.get::<_, String>(0)?)?,
        slug: r.get(1)?,
        title: r.get(2)?,
        description: r.get(3)?,
        excerpt: r.get(4)?,
        tags: parse_tags(&r.get::<_, String>(5)?)?,
        word_count: to_u32(r.get(6)?, "word_count")?,
        reading_time_minutes: to_u32(r.get(7)?, "reading_time_minutes")?,
        version: r.get(8)?,
        created_at: from_ms(r.get(9)?)?,
        updated_at: from_ms(r.get(10)?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{store, view};
    use super::*;
    use crate::store::QueryStore;

    #[tokio::test]
    async fn a_view_is_stored_only_when_newer_than_what_is_there() {
        let (_dir, store) = store().await;
        let id = Uuid::new_v4();
        assert_eq!(store.upsert_post_view(&view(id, 1, 0, &["a"])).await.unwrap(), Applied::Changed);
        assert_eq!(store.upsert_post_view(&view(id, 1, 0, &["a"])).await.unwrap(), Applied::Unchanged);
        assert_eq!(store.upsert_post_view(&view(id, 3, 0, &["b"])).await.unwrap(), Applied::Changed);
        assert_eq!(store.upsert_post_view(&view(id, 2, 0, &["c"])).await.unwrap(), Applied::Unchanged);
        assert_eq!(store.get_post_view(id).await.unwrap(), Some(view(id, 3, 0, &["b"])));
        assert_eq!(store.list_posts(Some("c"), 1, 10).await.unwrap().total, 0);
    }

    #[tokio::test]
    async fn a_removed_view_cannot_come_back_with_an_older_or_equal_version() {
        let (_dir, store) = store().await;
        let id = Uuid::new_v4();
        store.upsert_post_view(&view(id, 2, 0, &["a"])).await.unwrap();
        assert_eq!(store.remove_post_view(id, 3).await.unwrap(), Applied::Changed);
        assert_eq!(store.remove_post_view(id, 3).await.unwrap(), Applied::Unchanged);
        assert_eq!(store.upsert_post_view(&view(id, 2, 0, &["a"])).await.unwrap(), Applied::Unchanged);
        assert_eq!(store.upsert_post_view(&view(id, 3, 0, &["a"])).await.unwrap(), Applied::Unchanged);
        assert_eq!(store.get_post_view(id).await.unwrap(), None);
        let page = store.list_posts(None, 1, 10).await.unwrap();
        assert_eq!((page.items.len(), page.total), (0, 0));
        assert_eq!(store.list_posts(Some("a"), 1, 10).await.unwrap().total, 0);
    }

    #[tokio::test]
    async fn a_deletion_arriving_before_the_creation_leaves_a_tombstone() {
        let (_dir, store) = store().await;
        let id = Uuid::new_v4();
        assert_eq!(store.remove_post_view(id, 2).await.unwrap(), Applied::Changed);
        assert_eq!(store.upsert_post_view(&view(id, 1, 0, &["a"])).await.unwrap(), Applied::Unchanged);
        assert_eq!(store.get_post_view(id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn removing_an_older_version_than_the_view_changes_nothing() {
        let (_dir, store) = store().await;
        let id = Uuid::new_v4();
        store.upsert_post_view(&view(id, 4, 0, &[])).await.unwrap();
        assert_eq!(store.remove_post_view(id, 4).await.unwrap(), Applied::Unchanged);
        assert_eq!(store.get_post_view(id).await.unwrap(), Some(view(id, 4, 0, &[])));
    }
}
