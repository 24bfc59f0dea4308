//! Leases: one instance at a time runs a periodic job (the tag cloud rebuild).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::codec::{now, to_ms};
use super::SqliteStore;
use crate::store::Leases;
use blog_actors::ports::StoreError;

#[async_trait]
impl Leases for SqliteStore {
    #[tracing::instrument(level = "debug", skip(self))]
    async fn try_lease(&self, name: &str, holder: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.main
            .write("try_lease", move |tx| {
                let current: Option<(String, i64)> = tx
                    .prepare_cached("SELECT holder, until FROM leases WHERE name = ?1")?
                    .query_row([&name], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let free = match current {
                    None => true,
                    Some((by, expires)) => by == holder || expires < to_ms(now()),
                };
                if free {
                    tx.prepare_cached(
                        "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?3)
                         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until",
                    )?
                    .execute(params![name, holder, to_ms(until)])?;
                }
                Ok(free)
            })
            .await
    }
}
