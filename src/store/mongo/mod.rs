//! The production store: MongoDB through the `mongodb` crate.
//!
//! - the write database (default `blog`): `posts`, `outbox`, `counters`,
//!   `tag_cloud`, `tag_cloud_applied`, `post_tombstones`, `email_log`, `leases`;
//! - the queries database (default `blog_queries`): `post_views`, the read
//!   model, kept apart as the design's CQRS split.
//!
//! Same semantics as the embedded SQLite store, one concern per file: [`db`]
//! client and transactions, [`schema`] collections and indexes, [`posts`]
//! writes with their outbox events, [`outbox`], [`tag_cloud`], [`read_model`],
//! [`queries`], [`email_log`], [`leases`]; [`versioned`] writes guarded by a version;
//! [`retag`] upgrades an old store's tags at connect.
//!
//! Needs a replica set (transactions); see [`db`]. The tests run against the
//! `nx-27017` stand-in, which differs from MongoDB 7 in places: queries are
//! written so that both agree, with a comment where it matters.

mod codec;
mod collections;
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
mod versioned;
#[cfg(test)]
mod tests;

use std::time::Duration;

use async_trait::async_trait;
use blog_actors::ports::StoreError;
use mongodb::options::{Acknowledgment, ClientOptions, WriteConcern};
use mongodb::Client;

use self::db::{failed, Db};
use super::Store;

/// How long one store call may take unless the settings say otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The MongoDB store; cheap to clone (the client and its pool are shared).
#[derive(Clone)]
pub struct MongoStore {
    db: Db,
    /// Told after each commit that added outbox entries (see [`crate::store::Outbox::written`]).
    outbox_written: std::sync::Arc<tokio::sync::Notify>,
}

impl MongoStore {
    /// Connects to `url` (`mongodb://…`), using database `db` for the write side
    /// and `queries_db` for the read model, and creates the missing collections
    /// and indexes, with the default [`DEFAULT_TIMEOUT`] per call.
    pub async fn connect(url: &str, db: &str, queries_db: &str) -> Result<MongoStore, StoreError> {
        Self::connect_with(url, db, queries_db, DEFAULT_TIMEOUT).await
    }

    /// As [`MongoStore::connect`], each call bounded by `timeout`
    /// (`BLOG_STORE_TIMEOUT`): connecting and choosing a server too, unless the
    /// URL sets `connectTimeoutMS` / `serverSelectionTimeoutMS` itself.
    #[tracing::instrument(level = "debug", skip(url))]
    pub async fn connect_with(url: &str, db: &str, queries_db: &str, timeout: Duration) -> Result<MongoStore, StoreError> {
        let mut options = ClientOptions::parse(url).await.map_err(|e| failed("connect", e))?;
        options.connect_timeout.get_or_insert(timeout);
        options.server_selection_timeout.get_or_insert(timeout);
        // Every write, in a transaction or not (the email log's "sent", the read
        // model, the tag cloud), is acknowledged only once a majority journaled
        // it: what a worker acks after survives a power cut or a failover,
        // whatever the server's default or the URL says.
        options.write_concern = Some(WriteConcern::builder().w(Acknowledgment::Majority).journal(true).build());
        let turn = db::turn_of(&format!("{:?}", options.hosts));
        let client = Client::with_options(options).map_err(|e| failed("connect", e))?;
        let db = Db::new(client, db, queries_db, timeout, turn);
        schema::ensure(&db).await?;
        let store = MongoStore { db, outbox_written: Default::default() };
        retag::upgrade(&store).await?;
        Ok(store)
    }
}

#[async_trait]
impl Store for MongoStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await
    }
}
