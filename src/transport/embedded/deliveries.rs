//! A message as the embedded queue stores it (in `deliveries` and `parked`),
//! and how one delivery row is queued for a worker: shared by publishing,
//! consuming and the dead-letter replay.

use blog_actors::trace_context::TraceContext;
use blog_actors::worker::WorkerKind;
use rusqlite::{params, Connection};

const INSERT_DELIVERY: &str = "
INSERT INTO deliveries (worker, routing_key, message_id, correlation_id, traceparent, tracestate, body, attempt,
                        available_at, enqueued_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8)";

/// A message as it is stored, whichever table it comes from.
pub(super) struct Message<'a> {
    pub routing_key: &'a str,
    pub message_id: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
    /// The W3C trace context it travels with; retries, parking and replay keep it.
    pub trace: Option<&'a TraceContext>,
    pub body: &'a [u8],
}

/// The trace context kept in the `traceparent` and `tracestate` columns from `first` on,
/// checked again as it is read (the file is shared with other processes).
pub(super) fn trace_columns(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Option<TraceContext>> {
    let traceparent: Option<String> = row.get(first)?;
    let tracestate: Option<String> = row.get(first + 1)?;
    Ok(traceparent.and_then(|tp| TraceContext::parse(&tp, tracestate.as_deref())))
}

/// Queues `message` for `worker` as a first attempt, due now.
pub(super) fn insert_delivery(
    conn: &Connection,
    worker: WorkerKind,
    message: &Message<'_>,
    now: i64,
) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(INSERT_DELIVERY)?;
    insert.execute(params![
        worker.name(),
        message.routing_key,
        message.message_id,
        message.correlation_id,
        message.trace.map(|t| &t.traceparent),
        message.trace.and_then(|t| t.tracestate.as_ref()),
        message.body,
        now
    ])?;
    Ok(())
}
