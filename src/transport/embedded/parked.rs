//! The parking lot: messages a worker gave up on (or that no worker takes),
//! kept with the reason until an admin replays or deletes them.

use blog_actors::trace_context::TraceContext;
use blog_actors::worker::Workers;
use chrono::DateTime;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use uuid::Uuid;

use super::db::immediate;
use super::deliveries::{insert_delivery, trace_columns, Message};
use crate::transport::ParkedMessage;

/// The worker name of messages whose type no worker subscribes to.
pub(super) const UNROUTED: &str = "unrouted";

const INSERT: &str = "
INSERT INTO parked (id, worker, routing_key, message_id, correlation_id, body, reason, attempts, parked_at,
                    traceparent, tracestate)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// Copies the delivery row itself, so the settler needs to carry nothing but its id.
const PARK_DELIVERY: &str = "
INSERT INTO parked (id, worker, routing_key, message_id, correlation_id, body, reason, attempts, parked_at,
                    traceparent, tracestate)
SELECT ?1, worker, routing_key, message_id, correlation_id, body, ?2, ?3, ?4, traceparent, tracestate
FROM deliveries WHERE id = ?5";

pub(super) const COLUMNS: &str =
    "id, worker, routing_key, message_id, correlation_id, body, reason, attempts, parked_at, traceparent, tracestate";

pub(super) fn unrouted_reason(routing_key: &str) -> String {
    format!("no worker subscribes to event type \"{routing_key}\"")
}

/// A message about to be parked.
pub(super) struct NewParked<'a> {
    pub worker: &'a str,
    pub message: &'a Message<'a>,
    pub reason: &'a str,
    pub attempts: u32,
}

pub(super) fn insert(conn: &Connection, p: &NewParked<'_>, now: i64) -> rusqlite::Result<()> {
    let m = p.message;
    conn.prepare_cached(INSERT)?.execute(params![
        Uuid::new_v4().to_string(),
        p.worker,
        m.routing_key,
        m.message_id,
        m.correlation_id,
        m.body,
        p.reason,
        p.attempts,
        now,
        m.trace.map(|t| &t.traceparent),
        m.trace.and_then(|t| t.tracestate.as_ref())
    ])?;
    Ok(())
}

/// Moves a delivery to the parking lot, atomically.
pub(super) fn park_delivery(
    conn: &mut Connection,
    id: i64,
    reason: &str,
    attempts: u32,
    now: i64,
) -> rusqlite::Result<()> {
    let tx = immediate(conn)?;
    tx.execute(PARK_DELIVERY, params![Uuid::new_v4().to_string(), reason, attempts, now, id])?;
    tx.execute("DELETE FROM deliveries WHERE id = ?1", [id])?;
    tx.commit()
}

/// A parked row as stored.
pub(super) struct Parked {
    id: String,
    worker: String,
    routing_key: String,
    message_id: Option<String>,
    correlation_id: Option<String>,
    body: Vec<u8>,
    reason: String,
    attempts: u32,
    parked_at: i64,
    trace: Option<TraceContext>,
}

impl Parked {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            worker: row.get(1)?,
            routing_key: row.get(2)?,
            message_id: row.get(3)?,
            correlation_id: row.get(4)?,
            body: row.get(5)?,
            reason: row.get(6)?,
            attempts: row.get(7)?,
            parked_at: row.get(8)?,
            trace: trace_columns(row, 9)?,
        })
    }

    pub(super) fn into_message(self) -> ParkedMessage {
        let body = serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&self.body).into_owned()));
        let mut headers = std::collections::BTreeMap::new();
        if let Some(trace) = self.trace {
            headers.insert("traceparent".to_owned(), trace.traceparent);
            if let Some(state) = trace.tracestate {
                headers.insert("tracestate".to_owned(), state);
            }
        }
        ParkedMessage {
            id: self.id,
            worker: self.worker,
            routing_key: self.routing_key,
            message_id: self.message_id,
            correlation_id: self.correlation_id,
            body,
            reason: self.reason,
            attempts: self.attempts,
            parked_at: DateTime::from_timestamp_millis(self.parked_at).unwrap_or_default(),
            headers,
        }
    }
}

/// The oldest parked messages first.
pub(super) fn list(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<ParkedMessage>> {
    let sql = format!("SELECT {COLUMNS} FROM parked ORDER BY parked_at, rowid LIMIT ?1");
    let mut select = conn.prepare_cached(&sql)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = select.query_map([limit], Parked::from_row)?;
    rows.map(|row| row.map(Parked::into_message)).collect()
}

/// What a replay did.
#[derive(Debug, PartialEq)]
pub(super) enum Replay {
    NotFound,
    Requeued,
    /// Still no worker takes its type: it stays parked, unchanged.
    StillUnrouted,
}

/// Sends a parked message back as a first attempt, atomically: to the worker that
/// parked it, or, for an unrouted message (or a worker that no longer exists), to
/// whoever subscribes to its type now.
pub(super) fn replay(conn: &mut Connection, registered: &Workers, id: &str, now: i64) -> rusqlite::Result<Replay> {
    let tx = immediate(conn)?;
    let replay = replay_in(&tx, registered, id, now)?;
    if replay == Replay::Requeued {
        tx.commit()?;
    }
    Ok(replay)
}

/// `replay` inside a transaction the caller commits (a bulk replay commits a batch at once).
pub(super) fn replay_in(tx: &Transaction<'_>, registered: &Workers, id: &str, now: i64) -> rusqlite::Result<Replay> {
    let sql = format!("SELECT {COLUMNS} FROM parked WHERE id = ?1");
    let Some(p) = tx.query_row(&sql, [id], Parked::from_row).optional()? else {
        return Ok(Replay::NotFound);
    };
    let workers = registered.find(&p.worker).map_or_else(|| registered.subscribers(&p.routing_key), |worker| vec![worker]);
    if workers.is_empty() {
        return Ok(Replay::StillUnrouted);
    }
    let message = Message {
        routing_key: &p.routing_key,
        message_id: p.message_id.as_deref(),
        correlation_id: p.correlation_id.as_deref(),
        trace: p.trace.as_ref(),
        body: &p.body,
    };
    for worker in workers {
        insert_delivery(tx, worker, &message, now)?;
    }
    tx.execute("DELETE FROM parked WHERE id = ?1", [id])?;
    Ok(Replay::Requeued)
}

pub(super) fn delete(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM parked WHERE id = ?1", [id])? > 0)
}

pub(super) fn count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COUNT(*) FROM parked", [], |row| row.get(0))
}
