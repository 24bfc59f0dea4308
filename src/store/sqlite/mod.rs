//! The embedded store: SQLite compiled in, two files in the data dir.
//!
//! - `blog.sqlite`: posts and their tags, the outbox, the tag cloud with its
//!   per-post bookkeeping, the email log and the leases (the write side).
//! - `blog_queries.sqlite`: the read model (post views), kept apart as the
//!   design's queries database, so read traffic never contends with writes.
//!
//! One concern per file: [`db`] connections, [`schema`] tables, [`posts`]
//! writes with their outbox events, [`outbox`], [`tag_cloud`], [`read_model`],
//! [`queries`] (their answers kept in [`view_cache`]), [`email_log`], [`leases`];
//! [`retag`] upgrades an old store's tags at open.

mod cloud_cache;
mod codec;
mod db;
mod email_log;
mod feeds;
mod leases;
mod outbox;
mod posts;
mod queries;
mod read_model;
mod retag;
mod schema;
mod tag_cloud;
#[cfg(test)]
mod testing;
mod view_cache;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use blog_actors::ports::StoreError;

use self::db::Db;
use super::Store;

/// The write model's file name inside the data dir.
pub const MAIN_FILE: &str = "blog.sqlite";
/// The read model's file name inside the data dir.
pub const QUERIES_FILE: &str = "blog_queries.sqlite";
/// Bytes of read answers kept by default (`BLOG_READ_CACHE_BYTES`): the hot posts and
/// tag pages of a big blog fit (about 1 KB a post, 20 KB a page).
pub const DEFAULT_READ_CACHE_BYTES: u64 = 16 << 20;

/// The embedded store; cheap to clone (the connections are shared).
#[derive(Clone)]
pub struct SqliteStore {
    /// `blog.sqlite`: the write side.
    main: Db,
    /// `blog_queries.sqlite`: the read model.
    queries: Db,
    /// `GET /tags`'s answers between changes.
    cloud: Arc<cloud_cache::CloudCache>,
    /// `GET /posts/{id}`'s and the first list pages' answers between changes of the read model.
    views: Arc<view_cache::ViewCache>,
    /// Told after each commit that added outbox entries (see [`crate::store::Outbox::written`]).
    outbox_written: Arc<tokio::sync::Notify>,
}

impl SqliteStore {
    /// Opens both files in `data_dir`, creating the dir, the files and their
    /// tables when missing; keeps [`DEFAULT_READ_CACHE_BYTES`] of read answers.
    pub async fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_with_read_cache(data_dir, DEFAULT_READ_CACHE_BYTES).await
    }

    /// As [`SqliteStore::open`], keeping at most `read_cache_bytes` of read answers (0: none).
    #[tracing::instrument(level = "debug", skip_all, fields(data_dir = %data_dir.display()))]
    pub async fn open_with_read_cache(data_dir: &Path, read_cache_bytes: u64) -> Result<SqliteStore, StoreError> {
        let dir = data_dir.to_path_buf();
        let opened = tokio::task::spawn_blocking(move || {
            crate::durable_dir::create_durable_dir(&dir)
                .map_err(|e| StoreError::unavailable(format!("sqlite open: cannot create data dir {}", dir.display()), e))?;
            let open = |file: &str, label: &'static str, schema: &schema::Schema| {
                let path = dir.join(file);
                Db::open(&path, label, schema).map_err(|e| e.named(format!("sqlite open {}", path.display())))
            };
            let main = open(MAIN_FILE, "blog.sqlite", &schema::MAIN)?;
            let queries = open(QUERIES_FILE, "blog_queries.sqlite", &schema::QUERIES)?;
            let views = Arc::new(view_cache::ViewCache::new(read_cache_bytes));
            let path = dir.join(QUERIES_FILE);
            view_cache::ViewCache::watch(&views, &path).map_err(|e| e.named(format!("sqlite open {}: read cache watch", path.display())))?;
            Ok(SqliteStore { main, queries, cloud: Arc::default(), views, outbox_written: Arc::default() })
        })
        .await;
        let store = opened.map_err(|e| StoreError::defect("sqlite open: the blocking task failed", e))??;
        store.main.write("outbox upgrade", |tx| outbox::upgrade(tx)).await?;
        retag::upgrade(&store).await?;
        Ok(store)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let one = |conn: &rusqlite::Connection| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?);
        self.main.read("ping", one).await?;
        self.queries.read("ping", one).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::testing::store;
    use crate::store::contract::post;
    use super::*;
    use crate::store::PostRepository;

    #[tokio::test]
    async fn opening_creates_the_data_dir_and_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested/data");
        let store = SqliteStore::open(&data).await.unwrap();
        store.ping().await.unwrap();
        assert!(data.join(MAIN_FILE).exists());
        assert!(data.join(QUERIES_FILE).exists());
    }

    #[tokio::test]
    async fn opening_an_existing_store_again_keeps_its_data() {
        let (dir, store) = store().await;
        let post = store.create_post(post("Kept", &["a"]), None).await.unwrap();
        drop(store);
        let again = SqliteStore::open(dir.path()).await.unwrap();
        assert_eq!(again.get_post(post.id).await.unwrap(), Some(post));
    }
}
