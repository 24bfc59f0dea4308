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

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::super::testing::store;
    use super::*;

    #[tokio::test]
    async fn a_lease_held_by_another_instance_is_refused_until_it_expires() {
        let (_dir, store) = store().await;
        let soon = Utc::now() + Duration::minutes(5);
        assert!(store.try_lease("rebuild", "a", soon).await.unwrap());
        assert!(!store.try_lease("rebuild", "b", soon).await.unwrap());
        assert!(store.try_lease("rebuild", "a", soon + Duration::minutes(5)).await.unwrap(), "the holder renews");
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over() {
        let (_dir, store) = store().await;
        assert!(store.try_lease("rebuild", "a", Utc::now() - Duration::seconds(1)).await.unwrap());
        assert!(store.try_lease("rebuild", "b", Utc::now() + Duration::minutes(5)).await.unwrap());
        assert!(!store.try_lease("rebuild", "a", Utc::now() + Duration::minutes(5)).await.unwrap());
    }

    #[tokio::test]
    async fn leases_with_different_names_do_not_interfere() {
        let (_dir, store) = store().await;
        let soon = Utc::now() + Duration::minutes(5);
        assert!(store.try_lease("rebuild", "a", soon).await.unwrap());
        assert!(store.try_lease("cleanup", "b", soon).await.unwrap());
    }
}
