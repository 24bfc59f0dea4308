//! The read model in `blog_queries.sqlite`: one de-normalized view per post.
//!
//! A deleted post stays as a tombstone row (deleted = 1) carrying the
//! deletion's version, so a late, older event cannot bring it back. A live
//! view has a row per tag in `tagged_views`, beside each tag's count (see the
//! schema); all of a view's rows change in the write that changes the view.

use async_trait::async_trait;
use blog_actors::ports::{Applied, PostView, ReadModelStore, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
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
        self.write_views("upsert_post_view", move |tx| upsert(tx, &view)).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn remove_post_view(&self, post_id: Uuid, version: i64) -> Result<Applied, StoreError> {
        self.write_views("remove_post_view", move |tx| {
            let id = id_text(post_id);
            let stored = stored(tx, &id)?;
            if stored.as_ref().is_some_and(|s| s.version >= version) {
                return Ok(Applied::Unchanged);
            }
            // The deletion may arrive before the creation: the tombstone row is made from defaults then.
            tx.prepare_cached(
                "INSERT INTO post_views (id, version, deleted) VALUES (?1, ?2, 1)
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, deleted = 1",
            )?
            .execute(params![id, version])?;
            if let Some(stored) = stored {
                drop_tags(tx, &id, &stored)?;
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
        self.write_views("upsert_post_views", move |tx| {
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

impl SqliteStore {
    /// A write to the read model. Once it returns, committed or of unknown outcome,
    /// the read cache's answers are stale (see [`super::view_cache`]).
    async fn write_views<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        F: FnMut(&Transaction<'_>) -> DbResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let out = self.queries.write(op, f).await;
        self.views.invalidate();
        out
    }
}

/// `created_at` of a tag's count row in `tagged_views`: above every real time,
/// so the row sorts just before the tag's newest view (see the schema).
pub(super) const COUNT_ROW: i64 = i64::MAX;

/// Stores `view` unless the same or a newer version is there, inside the caller's transaction.
fn upsert(tx: &Connection, view: &PostView) -> DbResult<Applied> {
    let id = id_text(view.id);
    let stored = stored(tx, &id)?;
    if stored.as_ref().is_some_and(|s| s.version >= view.version) {
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
    if let Some(stored) = stored {
        drop_tags(tx, &id, &stored)?;
    }
    let mut insert = tx.prepare_cached("INSERT OR IGNORE INTO tagged_views (tag, created_at, post_id) VALUES (?1, ?2, ?3)")?;
    for tag in &view.tags {
        if insert.execute(params![tag, to_ms(view.created_at), id])? > 0 {
            count(tx, tag, 1)?;
        }
    }
    count(tx, "", 1)?;
    Ok(Applied::Changed)
}

/// Gives a view new tags in place, moving its tag rows and the counts (the tag upgrade at open).
pub(super) fn retag(tx: &Connection, id: &str, tags: &[String]) -> DbResult<()> {
    let Some(stored) = stored(tx, id)? else { return Ok(()) };
    if !stored.live {
        return Ok(());
    }
    drop_tags(tx, id, &stored)?;
    tx.prepare_cached("UPDATE post_views SET tags = ?2 WHERE id = ?1")?.execute(params![id, tags_json(tags)?])?;
    let mut insert = tx.prepare_cached("INSERT OR IGNORE INTO tagged_views (tag, created_at, post_id) VALUES (?1, ?2, ?3)")?;
    for tag in tags {
        if insert.execute(params![tag, stored.created_at, id])? > 0 {
            count(tx, tag, 1)?;
        }
    }
    count(tx, "", 1)
}

/// Removes a live view's tag rows and takes it out of the counts (a tombstone has neither).
fn drop_tags(tx: &Connection, id: &str, stored: &Stored) -> DbResult<()> {
    if !stored.live {
        return Ok(());
    }
    let mut delete = tx.prepare_cached("DELETE FROM tagged_views WHERE tag = ?1 AND created_at = ?2 AND post_id = ?3")?;
    for tag in &stored.tags {
        if delete.execute(params![tag, stored.created_at, id])? > 0 {
            count(tx, tag, -1)?;
        }
    }
    count(tx, "", -1)
}

/// Moves the live count of `tag` ('' for all) by `by`; a count that reaches 0 goes.
fn count(tx: &Connection, tag: &str, by: i64) -> DbResult<()> {
    tx.prepare_cached(
        "INSERT INTO tagged_views (tag, created_at, post_id, n) VALUES (?1, ?3, '', ?2)
         ON CONFLICT (tag, created_at, post_id) DO UPDATE SET n = n + excluded.n",
    )?
    .execute(params![tag, by, COUNT_ROW])?;
    if by < 0 {
        tx.prepare_cached("DELETE FROM tagged_views WHERE tag = ?1 AND created_at = ?2 AND post_id = '' AND tag <> '' AND n <= 0")?
            .execute(params![tag, COUNT_ROW])?;
    }
    Ok(())
}

/// What the read model holds of a post before a change.
struct Stored {
    version: i64,
    /// Not a tombstone: its tags are counted.
    live: bool,
    tags: Vec<String>,
    created_at: i64,
}

/// The row of post `id`, if there is one (live or a tombstone).
fn stored(conn: &Connection, id: &str) -> DbResult<Option<Stored>> {
    let row = conn
        .prepare_cached("SELECT version, deleted = 0, tags, created_at FROM post_views WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?, r.get(3)?)))
        .optional()?;
    row.map(|(version, live, tags, created_at)| Ok(Stored { version, live, tags: parse_tags(&tags)?, created_at })).transpose()
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
    use super::*;
    use crate::store::contract::view;
    use crate::store::QueryStore;

    #[tokio::test]
    async fn a_file_made_with_post_view_tags_moves_its_rows_and_counts_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        {
            // The tables as the version before tagged_views made them.
            let conn = Connection::open(dir.path().join(super::super::QUERIES_FILE)).unwrap();
            conn.execute_batch(
                "CREATE TABLE post_views (id TEXT PRIMARY KEY, slug TEXT NOT NULL DEFAULT '', title TEXT NOT NULL DEFAULT '',
                     description TEXT NOT NULL DEFAULT '', excerpt TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '[]',
                     word_count INTEGER NOT NULL DEFAULT 0, reading_time_minutes INTEGER NOT NULL DEFAULT 0,
                     version INTEGER NOT NULL, created_at INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL DEFAULT 0,
                     deleted INTEGER NOT NULL DEFAULT 0);
                 CREATE TABLE post_view_tags (post_id TEXT NOT NULL REFERENCES post_views(id) ON DELETE CASCADE,
                     tag TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (post_id, tag)) WITHOUT ROWID;
                 CREATE INDEX post_view_tags_by_tag ON post_view_tags(tag, created_at DESC, post_id DESC);
                 CREATE TABLE post_view_counts (tag TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;",
            )
            .unwrap();
            for (id, minute, tags, deleted) in [(a, 1, vec!["x", "y"], 0), (b, 2, vec!["x"], 0), (c, 3, vec![], 1)] {
                let v = view(id, 1, minute, &tags);
                conn.execute(
                    "INSERT INTO post_views (id, slug, title, tags, version, created_at, updated_at, deleted)
                     VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5, ?6)",
                    params![id_text(id), v.slug, v.title, tags_json(&v.tags).unwrap(), to_ms(v.created_at), deleted],
                )
                .unwrap();
                for tag in &v.tags {
                    conn.execute(
                        "INSERT INTO post_view_tags (post_id, tag, created_at) VALUES (?1, ?2, ?3)",
                        params![id_text(id), tag, to_ms(v.created_at)],
                    )
                    .unwrap();
                }
            }
            conn.execute_batch("INSERT INTO post_view_counts VALUES ('', 2), ('x', 2), ('y', 1)").unwrap();
        }
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let listed = |page: crate::store::PostPage| (page.items.iter().map(|v| v.id).collect::<Vec<_>>(), page.total);
        assert_eq!(listed(store.list_posts(Some("x"), 1, 10).await.unwrap()), (vec![b, a], 2));
        assert_eq!(listed(store.list_posts(Some("y"), 1, 10).await.unwrap()), (vec![a], 1));
        assert_eq!(listed(store.list_posts(None, 1, 10).await.unwrap()), (vec![b, a], 2));
        // The moved rows are the ones a change finds: a leaves x.
        store.upsert_post_view(&view(a, 2, 1, &["y"])).await.unwrap();
        assert_eq!(listed(store.list_posts(Some("x"), 1, 10).await.unwrap()), (vec![b], 1));
        let old_tables: i64 = store
            .queries
            .read("old tables", |conn| {
                let sql = "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('post_view_tags', 'post_view_counts')";
                Ok(conn.query_row(sql, [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(old_tables, 0);
    }
}
