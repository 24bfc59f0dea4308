//! How Rust values are stored in columns and read back.

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use uuid::Uuid;

use super::db::{DbError, DbResult};

/// Now, cut to the millisecond: the precision stored, so what a write returns
/// equals what a later read gives.
pub(super) fn now() -> DateTime<Utc> {
    from_ms(Utc::now().timestamp_millis()).unwrap_or_else(|_| Utc::now())
}

pub(super) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn from_ms(ms: i64) -> DbResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| DbError::Data(format!("timestamp {ms} ms is out of range")))
}

/// The one count a `SELECT COUNT(*) ...` answers.
pub(super) fn count(conn: &Connection, sql: &str) -> DbResult<u64> {
    let n: i64 = conn.query_row(sql, [], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

pub(super) fn id_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

pub(super) fn parse_id(text: &str) -> DbResult<Uuid> {
    Uuid::parse_str(text).map_err(|e| DbError::Data(format!("id {text:?}: {e}")))
}

pub(super) fn tags_json(tags: &[String]) -> DbResult<String> {
    Ok(serde_json::to_string(tags)?)
}

pub(super) fn parse_tags(json: &str) -> DbResult<Vec<String>> {
    Ok(serde_json::from_str(json)?)
}

/// A stored non-negative count as the u32 the API uses.
pub(super) fn to_u32(value: i64, what: &str) -> DbResult<u32> {
    u32::try_from(value).map_err(|_| DbError::Data(format!("{what} {value} is not a u32")))
}
