//! What the read endpoints ask: pages of post views (queries database) and
//! the tag cloud (main database). Reads only, on the read-only connections.

use async_trait::async_trait;
use bytes::Bytes;
use blog_actors::ports::{PostView, StoreError, TagCount};
use rusqlite::{params, Connection, OptionalExtension, ToSql};
use uuid::Uuid;

use super::codec::id_text;
use super::db::DbResult;
use super::read_model::{view_from_row, COUNT_ROW, VIEW_COLUMNS};
use super::SqliteStore;
use crate::store::{PostPage, QueryStore};

#[async_trait]
impl QueryStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_posts(&self, tag: Option<&str>, page: u32, per_page: u32) -> Result<PostPage, StoreError> {
        let tag = tag.map(str::to_owned);
        let page = page.max(1);
        self.queries
            .read("list_posts", move |conn| {
                let offset = i64::from(page - 1) * i64::from(per_page);
                // One snapshot, so the total agrees with the items.
                let tx = conn.unchecked_transaction()?;
                let (items, total) = match &tag {
                    None => (
                        views(
                            &tx,
                            &format!(
                                "SELECT {VIEW_COLUMNS} FROM post_views v WHERE v.deleted = 0
                                 ORDER BY v.created_at DESC, v.id DESC LIMIT ?1 OFFSET ?2"
                            ),
                            params![per_page, offset],
                        )?,
                        total(&tx, "")?,
                    ),
                    // A tombstone has no tag rows, so the join alone leaves deleted posts out;
                    // the deleted test guards against a row that somehow kept them.
                    Some(tag) => (
                        views(
                            &tx,
                            &format!(
                                "SELECT {VIEW_COLUMNS} FROM tagged_views t JOIN post_views v ON v.id = t.post_id
                                 WHERE t.tag = ?1 AND t.created_at < ?4 AND v.deleted = 0
                                 ORDER BY t.created_at DESC, t.post_id DESC LIMIT ?2 OFFSET ?3"
                            ),
                            params![tag, per_page, offset, COUNT_ROW],
                        )?,
                        total(&tx, tag)?,
                    ),
                };
                tx.finish()?;
                Ok(PostPage { items, page, per_page, total })
            })
            .await
    }

    async fn get_post_view(&self, id: Uuid) -> Result<Option<PostView>, StoreError> {
        self.queries
            .read("get_post_view", move |conn| {
                let sql = format!("SELECT {VIEW_COLUMNS} FROM post_views v WHERE v.id = ?1 AND v.deleted = 0");
                Ok(views(conn, &sql, params![id_text(id)])?.pop())
            })
            .await
    }

    /// Kept between changes; see [`super::cloud_cache`].
    async fn tag_cloud_json(&self, limit: Option<u32>) -> Result<Bytes, StoreError> {
        if let Some(json) = self.cloud.get(limit) {
            return Ok(json);
        }
        let generation = self.cloud.generation();
        let cloud = self.tag_cloud(limit).await?;
        let json = Bytes::from(serde_json::to_vec(&cloud).map_err(|e| StoreError(format!("tag cloud JSON: {e}")))?);
        self.cloud.put(limit, generation, json.clone());
        Ok(json)
    }

    async fn tag_cloud(&self, limit: Option<u32>) -> Result<Vec<TagCount>, StoreError> {
        // SQLite reads a negative LIMIT as no limit.
        let limit = limit.map_or(-1, i64::from);
        self.main
            .read("tag_cloud", move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT tag, posts_count FROM tag_cloud WHERE posts_count > 0
                     ORDER BY posts_count DESC, tag ASC LIMIT ?1",
                )?;
                let rows = stmt.query_map([limit], |r| Ok(TagCount { tag: r.get(0)?, posts_count: r.get(1)? }))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }
}

fn views(conn: &Connection, sql: &str, args: &[&dyn ToSql]) -> DbResult<Vec<PostView>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(view_from_row(row)?);
    }
    Ok(out)
}

/// Live views with `tag` ('' for all), as the read model counts them in each write.
fn total(conn: &Connection, tag: &str) -> DbResult<u64> {
    let n: Option<i64> = conn
        .prepare_cached("SELECT n FROM tagged_views WHERE tag = ?1 AND created_at = ?2 AND post_id = ''")?
        .query_row(params![tag, COUNT_ROW], |r| r.get(0))
        .optional()?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use blog_actors::ports::ReadModelStore;

    use super::super::testing::{store, view};
    use super::*;

    fn ids(page: &PostPage) -> Vec<Uuid> {
        page.items.iter().map(|v| v.id).collect()
    }

    #[tokio::test]
    async fn posts_are_listed_newest_first_in_pages() {
        let (_dir, store) = store().await;
        let posted: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        for (minute, id) in posted.iter().enumerate() {
            store.upsert_post_view(&view(*id, 1, minute as i64, &[])).await.unwrap();
        }
        let newest_first: Vec<Uuid> = posted.iter().rev().copied().collect();
        let first = store.list_posts(None, 1, 2).await.unwrap();
        assert_eq!((first.page, first.per_page, first.total), (1, 2, 5));
        assert_eq!(ids(&first), newest_first[..2]);
        assert_eq!(ids(&store.list_posts(None, 2, 2).await.unwrap()), newest_first[2..4]);
        assert_eq!(ids(&store.list_posts(None, 3, 2).await.unwrap()), newest_first[4..]);
        assert!(store.list_posts(None, 4, 2).await.unwrap().items.is_empty());
        assert_eq!(store.list_posts(None, 0, 2).await.unwrap().page, 1, "pages count from 1");
    }

    #[tokio::test]
    async fn a_tag_filter_lists_only_live_posts_with_that_tag() {
        let (_dir, store) = store().await;
        let (a, b, c, d) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        store.upsert_post_view(&view(a, 1, 1, &["rust", "web"])).await.unwrap();
        store.upsert_post_view(&view(b, 1, 2, &["web"])).await.unwrap();
        store.upsert_post_view(&view(c, 1, 3, &["rust"])).await.unwrap();
        store.upsert_post_view(&view(d, 1, 4, &["rust"])).await.unwrap();
        store.remove_post_view(d, 2).await.unwrap();
        // b gains the tag by an update, a loses it.
        store.upsert_post_view(&view(b, 2, 2, &["web", "rust"])).await.unwrap();
        store.upsert_post_view(&view(a, 2, 1, &["web"])).await.unwrap();

        let rust = store.list_posts(Some("rust"), 1, 10).await.unwrap();
        assert_eq!((ids(&rust), rust.total), (vec![c, b], 2));
        let second = store.list_posts(Some("rust"), 2, 1).await.unwrap();
        assert_eq!((ids(&second), second.total), (vec![b], 2));
        assert_eq!(store.list_posts(Some("nope"), 1, 10).await.unwrap().total, 0);
    }

    #[tokio::test]
    async fn a_view_reads_back_exactly_as_stored() {
        let (_dir, store) = store().await;
        let id = Uuid::new_v4();
        let stored = view(id, 7, 42, &["x", "y"]);
        store.upsert_post_view(&stored).await.unwrap();
        assert_eq!(store.get_post_view(id).await.unwrap(), Some(stored.clone()));
        assert_eq!(store.list_posts(None, 1, 1).await.unwrap().items, vec![stored]);
        assert_eq!(store.get_post_view(Uuid::new_v4()).await.unwrap(), None);
    }
}
