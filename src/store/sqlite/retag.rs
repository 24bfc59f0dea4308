//! Brings the tags of a store made before tags were NFKC-normalised and
//! case-folded (until 2026-12) to their canonical form, once, at open: each
//! post's tags re-normalised and de-duplicated (spellings of one tag merge),
//! each read-model view likewise, then the tag cloud rebuilt from the posts, so
//! the counts of merged tags add up and the rebuild equals what the incremental
//! updates keep from then on. Each file is upgraded in one transaction of its
//! own and marked; a crash between the steps is finished at the next open.

use blog_actors::ports::{StoreError, TagCloudStore};
use blog_actors::rules::tag;
use rusqlite::{params, Transaction};

use super::codec::{parse_tags, tags_json};
use super::db::DbResult;
use super::{read_model, SqliteStore};

/// The marker's key and the form it records.
const TAG_FORM_KEY: &str = "tag_form";
const TAG_FORM: &str = "nfkc-casefold-1";
/// Set in the write file while the cloud rebuild that follows a retag has not run.
const REBUILD_PENDING_KEY: &str = "tag_form_rebuild_pending";

/// Runs what is left of the upgrade; on a new or upgraded store it only reads the markers.
pub(super) async fn upgrade(store: &SqliteStore) -> Result<(), StoreError> {
    let rebuild_pending = store.main.write("retag_posts", retag_posts).await?;
    store.queries.write("retag_views", retag_views).await?;
    if rebuild_pending {
        store.rebuild_tag_cloud().await?;
        store.main.write("retag_rebuilt", |tx| Ok(tx.execute("DELETE FROM meta WHERE key = ?1", [REBUILD_PENDING_KEY])?)).await?;
    }
    Ok(())
}

/// Retags the posts unless marked; answers whether a cloud rebuild is (still) due.
fn retag_posts(tx: &Transaction<'_>) -> DbResult<bool> {
    if marked(tx)? {
        return Ok(tx.query_row("SELECT 1 FROM meta WHERE key = ?1", [REBUILD_PENDING_KEY], |_| Ok(())).is_ok());
    }
    let changed = changed_rows(tx, "SELECT id, tags FROM posts")?;
    for (id, tags) in &changed {
        tx.prepare_cached("UPDATE posts SET tags = ?2 WHERE id = ?1")?.execute(params![id, tags_json(tags)?])?;
        tx.prepare_cached("DELETE FROM post_tags WHERE post_id = ?1")?.execute([id])?;
        let mut insert = tx.prepare_cached("INSERT OR IGNORE INTO post_tags (post_id, tag) VALUES (?1, ?2)")?;
        for tag in tags {
            insert.execute(params![id, tag])?;
        }
    }
    if !changed.is_empty() {
        tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, 'yes')", [REBUILD_PENDING_KEY])?;
    }
    mark(tx)?;
    Ok(!changed.is_empty())
}

/// Retags the live views unless marked, moving their tag rows and counts.
fn retag_views(tx: &Transaction<'_>) -> DbResult<()> {
    if marked(tx)? {
        return Ok(());
    }
    for (id, tags) in changed_rows(tx, "SELECT id, tags FROM post_views WHERE deleted = 0")? {
        read_model::retag(tx, &id, &tags)?;
    }
    mark(tx)
}

/// The rows `select` (id, tags JSON) gives whose tags are not canonical, with their canonical tags.
fn changed_rows(tx: &Transaction<'_>, select: &str) -> DbResult<Vec<(String, Vec<String>)>> {
    let mut changed = Vec::new();
    let mut statement = tx.prepare(select)?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let (id, stored): (String, String) = (row.get(0)?, row.get(1)?);
        let before = parse_tags(&stored)?;
        let after = tag::canonical_list(&before);
        if after != before {
            changed.push((id, after));
        }
    }
    Ok(changed)
}

fn marked(tx: &Transaction<'_>) -> DbResult<bool> {
    tx.execute_batch("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;")?;
    let form: Option<String> = tx.query_row("SELECT value FROM meta WHERE key = ?1", [TAG_FORM_KEY], |r| r.get(0)).ok();
    Ok(form.as_deref() == Some(TAG_FORM))
}

fn mark(tx: &Transaction<'_>) -> DbResult<()> {
    tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![TAG_FORM_KEY, TAG_FORM])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::store;
    use crate::store::contract::post;
    use super::*;
    use crate::store::{PostRepository, QueryStore};
    use blog_actors::ports::{PostView, ReadModelStore};

    /// Writes tags the way a store before the upgrade could hold them, under every table's feet.
    fn write_old_tags(dir: &std::path::Path, id: &str, tags: &[&str]) {
        let json = serde_json::to_string(tags).unwrap();
        let main = rusqlite::Connection::open(dir.join(super::super::MAIN_FILE)).unwrap();
        main.execute("UPDATE posts SET tags = ?2 WHERE id = ?1", params![id, json]).unwrap();
        main.execute("DELETE FROM post_tags WHERE post_id = ?1", [id]).unwrap();
        for tag in tags {
            main.execute("INSERT INTO post_tags (post_id, tag) VALUES (?1, ?2)", params![id, tag]).unwrap();
        }
        main.execute("DELETE FROM meta", []).unwrap();
        let queries = rusqlite::Connection::open(dir.join(super::super::QUERIES_FILE)).unwrap();
        queries.execute("DELETE FROM meta", []).unwrap();
    }

    fn view_of(p: &blog_actors::event::PostSnapshot, tags: &[&str]) -> PostView {
        PostView {
            id: p.id,
            slug: "s".into(),
            title: p.title.clone(),
            description: p.description.clone(),
            excerpt: String::new(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            word_count: 1,
            reading_time_minutes: 1,
            version: p.version,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }

    #[tokio::test]
    async fn an_old_store_gets_canonical_tags_merged_counts_and_a_matching_rebuild_at_open() {
        let (dir, store) = store().await;
        let a = store.create_post(post("A", &["rust"]), None).await.unwrap();
        let b = store.create_post(post("B", &["strasse"]), None).await.unwrap();
        store.upsert_post_view(&view_of(&a, &["ｒｕｓｔ", "straße"])).await.unwrap();
        store.upsert_post_view(&view_of(&b, &["strasse"])).await.unwrap();
        store.apply_post_tags(a.id, a.version, Some(&["ｒｕｓｔ".into(), "straße".into()])).await.unwrap();
        store.apply_post_tags(b.id, b.version, Some(&["strasse".into()])).await.unwrap();
        drop(store);
        write_old_tags(dir.path(), &a.id.to_string(), &["ｒｕｓｔ", "straße"]);

        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert_eq!(store.get_post(a.id).await.unwrap().unwrap().tags, vec!["rust", "strasse"]);
        let cloud: Vec<(String, i64)> = store.tag_cloud(Some(10)).await.unwrap().into_iter().map(|t| (t.tag, t.posts_count)).collect();
        assert_eq!(cloud, vec![("strasse".to_owned(), 2), ("rust".to_owned(), 1)]);
        let page = store.list_posts(Some("strasse"), 1, 10).await.unwrap();
        assert_eq!(page.total, 2);
        assert_eq!(store.list_posts(Some("straße"), 1, 10).await.unwrap().total, 0);
        store.rebuild_tag_cloud().await.unwrap();
        let rebuilt: Vec<(String, i64)> = store.tag_cloud(Some(10)).await.unwrap().into_iter().map(|t| (t.tag, t.posts_count)).collect();
        assert_eq!(rebuilt, cloud, "the rebuild equals the upgraded cloud");
        drop(store);
        let again = SqliteStore::open(dir.path()).await.unwrap();
        assert_eq!(again.list_posts(Some("strasse"), 1, 10).await.unwrap().total, 2, "a second open changes nothing");
    }
}
