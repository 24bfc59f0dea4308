//! Leases: one instance at a time runs a periodic job (the tag cloud rebuild).
//! `_id` = lease name.

use async_trait::async_trait;
use blog_actors::ports::StoreError;
use chrono::{DateTime, Utc};
use mongodb::bson::doc;
use mongodb::options::ReturnDocument;

use super::codec::{now, to_bson_time};
use super::db::{failed, is_duplicate_key};
use super::schema::LEASES;
use super::MongoStore;
use crate::store::Leases;

#[async_trait]
impl Leases for MongoStore {
    #[tracing::instrument(level = "debug", skip(self))]
    async fn try_lease(&self, name: &str, holder: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
        self.db.within("try_lease", async {
            // One atomic step: matches when the lease is free (expired) or already ours;
            // when it is missing, the upsert creates it. When another holder has it, the
            // filter misses and the upsert's insert hits the `_id`: a duplicate key on
            // MongoDB, so exactly one of two racing instances wins.
            let filter = doc! {
                "_id": name,
                "$or": [ { "until": { "$lt": to_bson_time(now()) } }, { "holder": holder } ],
            };
            // A replacement rather than `$set`: the nx-27017 stand-in stores dates written
            // by `$set` as strings, which would then not compare with `now` above.
            let lease = doc! { "_id": name, "holder": holder, "until": to_bson_time(until) };
            let taken = self
                .db
                .main(LEASES)
                .find_one_and_replace(filter, lease)
                .upsert(true)
                .return_document(ReturnDocument::After)
                .await;
            match taken {
                Ok(Some(lease)) => Ok(lease.get_str("holder").is_ok_and(|h| h == holder)),
                // MongoDB always returns the document here (upsert, after); the stand-in
                // answers nothing, instead of a duplicate key, when another holder has it.
                Ok(None) => Ok(false),
                Err(e) if is_duplicate_key(&e) => Ok(false),
                Err(e) => Err(failed("try_lease", e)),
            }
        })
        .await
    }
}
