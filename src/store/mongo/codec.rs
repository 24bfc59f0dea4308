//! How Rust values are stored in documents and read back.
//!
//! Times are BSON DateTime (milliseconds since the epoch), so they sort and
//! compare natively; posts are stamped at millisecond precision, so what a
//! write returns equals what a later read gives. Ids are hyphenated UUID
//! strings used as `_id`: simple, readable in the shell, and equal to the
//! text the events and the SQLite store carry.

use chrono::{DateTime, Utc};
use mongodb::bson::{self, Bson, Document};
use uuid::Uuid;

use super::db::{DbError, DbResult};

/// Now, cut to the millisecond: the precision stored.
pub(super) fn now() -> DateTime<Utc> {
    from_bson_time(to_bson_time(Utc::now()))
}

pub(super) fn to_bson_time(t: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_millis(t.timestamp_millis())
}

pub(super) fn from_bson_time(t: bson::DateTime) -> DateTime<Utc> {
    // A BSON date is an i64 of milliseconds; only absurd values fall outside chrono's range.
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub(super) fn id_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

pub(super) fn parse_id(text: &str) -> DbResult<Uuid> {
    Uuid::parse_str(text).map_err(|e| DbError::Data(format!("id {text:?}: {e}")))
}

/// Tags as a BSON array.
pub(super) fn tag_array(tags: &[String]) -> Bson {
    Bson::Array(tags.iter().cloned().map(Bson::String).collect())
}

/// Decodes a stored document into its typed form.
pub(super) fn decode<T: serde::de::DeserializeOwned>(doc: Document) -> DbResult<T> {
    Ok(bson::from_document(doc)?)
}

/// A stored non-negative count as the u32 the API uses.
pub(super) fn to_u32(value: i64, what: &str) -> DbResult<u32> {
    u32::try_from(value).map_err(|_| DbError::Data(format!("{what} {value} is not a u32")))
}
