//! Writes guarded by a version: a document is replaced only by a newer one, so a
//! redelivered or late event changes nothing (the read model, the feeds).

use blog_actors::ports::{Applied, StoreError};
use mongodb::bson::{doc, Document};
use mongodb::Collection;
use uuid::Uuid;

use super::codec::id_text;
use super::db::{failed, is_duplicate_key};

/// Stores `fields` as the document `id` of `collection` if the one stored is older
/// than `version` (or there is none), in one conditional upsert, no transaction:
/// the filter `{_id, version: {$lt: v}}` matches only an older document; when a
/// same or newer one is there, the upsert tries to insert a second document with
/// that `_id` and the server refuses it with a duplicate key. It replaces the whole
/// document rather than `$set`ting fields: the nx-27017 stand-in stores dates
/// written by `$set` as strings.
pub(super) async fn upsert_if_newer(
    collection: &Collection<Document>,
    op: &str,
    id: Uuid,
    version: i64,
    fields: Document,
) -> Result<Applied, StoreError> {
    let filter = doc! { "_id": id_text(id), "version": { "$lt": version } };
    let mut replacement = doc! { "_id": id_text(id) };
    replacement.extend(fields);
    // A duplicate key has two causes: a same or newer version is stored (final), or a
    // concurrent first write inserted the document between our match and our insert.
    // Trying again tells them apart: the document now exists, so the second answer is final.
    let mut attempts = 0;
    loop {
        attempts += 1;
        match collection.replace_one(filter.clone(), &replacement).upsert(true).await {
            Ok(r) if r.matched_count > 0 || r.upserted_id.is_some() => return Ok(Applied::Changed),
            // Not reached on MongoDB (a failed match upserts); kept so no answer is misread.
            Ok(_) => return Ok(Applied::Unchanged),
            Err(e) if is_duplicate_key(&e) && attempts < 2 => continue,
            Err(e) if is_duplicate_key(&e) => return Ok(Applied::Unchanged),
            Err(e) => return Err(failed(op, e)),
        }
    }
}
