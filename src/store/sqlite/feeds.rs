//! The feed writer's entries in `blog_queries.sqlite`: one row per post in
//! `feed_entries` (a deleted post stays as a tombstone carrying its deletion's
//! version), and a row per live entry and tag in `feed_entry_tags`.

use std::collections::HashSet;

use async_trait::async_trait;
use blog_actors::feed_writer::{entry_of, FeedChange, FeedEntry, FeedStore};
use blog_actors::ports::{Applied, RebuildReport, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::codec::{from_ms, id_text, parse_id, parse_tags, tags_json, to_ms};
use super::db::DbResult;
use super::posts::posts_after;
use super::SqliteStore;

/// Posts read from the write model per step of a rebuild: bounds its memory.
const REBUILD_BATCH: u32 = 1000;
const ENTRY_COLUMNS: &str = "e.id, e.title, e.summary, e.tags, e.published, e.updated, e.version";

#[async_trait]
impl FeedStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn apply_feed_change(&self, change: FeedChange) -> Result<Applied, StoreError> {
        self.queries.write("apply_feed_change", move |tx| apply(tx, &change)).await
    }

    async fn feed_entries(&self, tag: Option<&str>, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        let tag = tag.map(str::to_owned);
        self.queries
            .read("feed_entries", move |conn| {
                match &tag {
                    None => {
                        let sql = format!(
                            "SELECT {ENTRY_COLUMNS} FROM feed_entries e WHERE e.deleted = 0
                             ORDER BY e.published DESC, e.id DESC LIMIT ?1"
                        );
                        conn.prepare_cached(&sql)?.query_and_then(params![limit], entry_from_row)?.collect()
                    }
                    Some(tag) => {
                        let sql = format!(
                            "SELECT {ENTRY_COLUMNS} FROM feed_entry_tags t JOIN feed_entries e ON e.id = t.id
                             WHERE t.tag = ?1 ORDER BY t.published DESC, t.id DESC LIMIT ?2"
                        );
                        conn.prepare_cached(&sql)?.query_and_then(params![tag, limit], entry_from_row)?.collect()
                    }
                }
            })
            .await
    }

    /// In steps of [`REBUILD_BATCH`] posts, each one write: version-guarded like
    /// the events, so a change committed meanwhile is never undone.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn rebuild_feed_entries(&self) -> Result<RebuildReport, StoreError> {
        let started = std::time::Instant::now();
        let (mut posts, mut tags, mut after) = (0u64, HashSet::new(), String::new());
        loop {
            let from = after.clone();
            let batch = self.main.read("rebuild_feed_entries", move |conn| posts_after(conn, &from, REBUILD_BATCH)).await?;
            let Some(last) = batch.last() else { break };
            after = id_text(last.id);
            posts += batch.len() as u64;
            tags.extend(batch.iter().flat_map(|p| p.tags.iter().cloned()));
            let changes: Vec<FeedChange> = batch.iter().map(|p| FeedChange::Upsert(entry_of(p))).collect();
            // Into the other file only what would survive a power cut in this one (see db.rs).
            self.main.durable().await?;
            self.queries.write("rebuild_feed_entries", move |tx| changes.iter().try_for_each(|c| apply(tx, c).map(drop))).await?;
        }
        let deletions = self.main.read("rebuild_feed_entries", tombstones).await?;
        self.main.durable().await?;
        self.queries.write("rebuild_feed_entries", move |tx| deletions.iter().try_for_each(|c| apply(tx, c).map(drop))).await?;
        let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(RebuildReport { posts, tags: tags.len() as u64, took_ms })
    }
}

/// Applies `change` unless the same or a newer version is stored, inside the caller's transaction.
fn apply(tx: &Connection, change: &FeedChange) -> DbResult<Applied> {
    let (id, version) = match change {
        FeedChange::Upsert(e) => (id_text(e.id), e.version),
        FeedChange::Delete { id, version } => (id_text(*id), *version),
    };
    let stored: Option<(i64, i64, String, i64)> = tx
        .prepare_cached("SELECT version, deleted, tags, published FROM feed_entries WHERE id = ?1")?
        .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    if let Some((stored_version, deleted, tags, published)) = stored {
        if stored_version >= version {
            return Ok(Applied::Unchanged);
        }
        if deleted == 0 {
            let mut drop_tag = tx.prepare_cached("DELETE FROM feed_entry_tags WHERE tag = ?1 AND published = ?2 AND id = ?3")?;
            for tag in parse_tags(&tags)? {
                drop_tag.execute(params![tag, published, id])?;
            }
        }
    }
    match change {
        FeedChange::Upsert(e) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO feed_entries (id, version, deleted, title, summary, tags, published, updated)
                 VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![id, e.version, e.title, e.summary, tags_json(&e.tags)?, to_ms(e.published), to_ms(e.updated)])?;
            let mut add_tag = tx.prepare_cached("INSERT OR IGNORE INTO feed_entry_tags (tag, published, id) VALUES (?1, ?2, ?3)")?;
            for tag in &e.tags {
                add_tag.execute(params![tag, to_ms(e.published), id])?;
            }
        }
        FeedChange::Delete { version, .. } => {
            tx.prepare_cached("INSERT OR REPLACE INTO feed_entries (id, version, deleted) VALUES (?1, ?2, 1)")?
                .execute(params![id, version])?;
        }
    }
    Ok(Applied::Changed)
}

/// Every deletion the write model remembers.
fn tombstones(conn: &Connection) -> DbResult<Vec<FeedChange>> {
    let mut stmt = conn.prepare_cached("SELECT id, version FROM post_tombstones")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    rows.map(|row| {
        let (id, version) = row?;
        Ok(FeedChange::Delete { id: parse_id(&id)?, version })
    })
    .collect()
}

/// Reads a row selected with `ENTRY_COLUMNS`.
fn entry_from_row(r: &Row<'_>) -> DbResult<FeedEntry> {
    Ok(FeedEntry {
        id: parse_id(&r.get::<_, String>(0)?)?,
        title: r.get(1)?,
        summary: r.get(2)?,
        tags: parse_tags(&r.get::<_, String>(3)?)?,
        published: from_ms(r.get(4)?)?,
        updated: from_ms(r.get(5)?)?,
        version: r.get(6)?,
    })
}
