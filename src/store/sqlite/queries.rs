//! What the read endpoints ask: pages of post views (queries database) and
//! the tag cloud (main database). Reads only, on the read-only connections; the
//! answers as JSON are kept between changes ([`super::view_cache`], [`super::cloud_cache`]).

use async_trait::async_trait;
use bytes::Bytes;
use blog_actors::ports::{PostView, StoreError, TagCount};
use rusqlite::{params, Connection, OptionalExtension, ToSql};
use uuid::Uuid;

use super::codec::id_text;
use super::db::DbResult;
use super::read_model::{view_from_row, COUNT_ROW, VIEW_COLUMNS};
use super::view_cache::Answer;
use super::SqliteStore;
use crate::store::{PostPage, QueryStore, ViewJson};

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

    /// The first pages kept between changes; see [`super::view_cache`].
    async fn list_posts_json(&self, tag: Option<&str>, page: u32, per_page: u32) -> Result<Bytes, StoreError> {
        let key = Answer::page(tag, page, per_page);
        if let Some(kept) = key.as_ref().and_then(|key| self.views.get(key)) {
            return Ok(kept.json);
        }
        let generation = self.views.generation();
        let json = self.list_posts(tag, page, per_page).await?.json()?;
        if let Some(key) = key {
            self.views.put(key, generation, ViewJson { version: 0, json: json.clone() });
        }
        Ok(json)
    }

    /// Kept between changes; see [`super::view_cache`].
    async fn get_post_view_json(&self, id: Uuid) -> Result<Option<ViewJson>, StoreError> {
        let key = Answer::Post(id);
        if let Some(kept) = self.views.get(&key) {
            return Ok(Some(kept));
        }
        let generation = self.views.generation();
        let Some(view) = self.get_post_view(id).await? else { return Ok(None) };
        let answer = ViewJson::of(&view)?;
        self.views.put(key, generation, answer.clone());
        Ok(Some(answer))
    }

    /// Kept between changes; see [`super::cloud_cache`].
    async fn tag_cloud_json(&self, limit: Option<u32>) -> Result<Bytes, StoreError> {
        if let Some(json) = self.cloud.get(limit) {
            return Ok(json);
        }
        let generation = self.cloud.generation();
        let cloud = self.tag_cloud(limit).await?;
        let json = Bytes::from(serde_json::to_vec(&cloud).map_err(|e| StoreError::defect("tag cloud JSON", e))?);
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
