//! The console's view of the embedded parking lot: filtered pages with their
//! groups, bulk replay and delete, and the per-worker and per-retry counts.
//! The filter runs over the small columns only; bodies are read for the page.

use blog_actors::worker::Workers;
use chrono::DateTime;
use rusqlite::Connection;

use super::db::immediate;
use super::parked::{replay_in, Parked, Replay, COLUMNS, UNROUTED};
use crate::transport::parked_query::{Grouper, ParkedFilter, ParkedPage};
use crate::transport::RetryLevelCount;

/// Parked messages deleted per transaction: short write locks beside the workers.
const DELETE_BATCH: usize = 500;

/// The ids `filter` matches, oldest first, each added to `grouper`.
fn matching(conn: &Connection, filter: &ParkedFilter, grouper: &mut Grouper) -> rusqlite::Result<Vec<String>> {
    let mut select = conn.prepare_cached("SELECT id, worker, routing_key, reason, parked_at FROM parked ORDER BY parked_at, rowid")?;
    let mut rows = select.query([])?;
    let mut ids = Vec::new();
    while let Some(row) = rows.next()? {
        let (worker, event_type, reason): (String, String, String) = (row.get(1)?, row.get(2)?, row.get(3)?);
        let parked_at = DateTime::from_timestamp_millis(row.get(4)?).unwrap_or_default();
        if filter.matches(&worker, &event_type, &reason, parked_at) {
            grouper.add(&worker, &reason, parked_at);
            ids.push(row.get(0)?);
        }
    }
    Ok(ids)
}

pub(super) fn query(conn: &Connection, filter: &ParkedFilter, offset: usize, limit: usize) -> rusqlite::Result<ParkedPage> {
    let mut grouper = Grouper::default();
    let ids = matching(conn, filter, &mut grouper)?;
    let sql = format!("SELECT {COLUMNS} FROM parked WHERE id = ?1");
    let mut select = conn.prepare_cached(&sql)?;
    let mut items = Vec::new();
    for id in ids.iter().skip(offset).take(limit) {
        items.push(select.query_row([id], Parked::from_row)?.into_message());
    }
    Ok(grouper.page(items, offset))
}

/// The ids a bulk action will act on, fixed before it starts: messages parked
/// again while it runs (a replayed one failing anew) are not taken twice.
pub(super) fn ids(conn: &Connection, filter: &ParkedFilter) -> rusqlite::Result<Vec<String>> {
    matching(conn, filter, &mut Grouper::default())
}

/// Replays one batch in one transaction; how many went back to a worker.
pub(super) fn replay_batch(conn: &mut Connection, workers: &Workers, ids: &[String], now: i64) -> rusqlite::Result<u64> {
    let tx = immediate(conn)?;
    let mut requeued = 0;
    for id in ids {
        if replay_in(&tx, workers, id, now)? == Replay::Requeued {
            requeued += 1;
        }
    }
    tx.commit()?;
    Ok(requeued)
}

pub(super) fn delete(conn: &mut Connection, ids: &[String]) -> rusqlite::Result<u64> {
    let mut deleted = 0;
    for batch in ids.chunks(DELETE_BATCH) {
        let tx = immediate(conn)?;
        for id in batch {
            deleted += tx.execute("DELETE FROM parked WHERE id = ?1", [id])? as u64;
        }
        tx.commit()?;
    }
    Ok(deleted)
}

/// Every registered worker's lot and `unrouted`, with 0 for an empty one.
pub(super) fn by_worker(conn: &Connection, workers: &Workers) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut counts: Vec<(String, u64)> =
        workers.iter().map(|w| w.name().to_owned()).chain([UNROUTED.to_owned()]).map(|w| (w, 0)).collect();
    let mut select = conn.prepare_cached("SELECT worker, COUNT(*) FROM parked GROUP BY worker")?;
    let rows = select.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, u64>(1)?)))?;
    for row in rows {
        let (worker, count) = row?;
        match counts.iter_mut().find(|(w, _)| *w == worker) {
            Some(slot) => slot.1 = count,
            None => counts.push((worker, count)),
        }
    }
    Ok(counts)
}

/// Deliveries waiting for their next attempt (not the first, not handed out), per worker and attempt.
pub(super) fn waiting_for_retry(conn: &Connection) -> rusqlite::Result<Vec<RetryLevelCount>> {
    let sql = "SELECT worker, attempt, COUNT(*) FROM deliveries WHERE attempt > 1 AND leased = 0 GROUP BY worker, attempt ORDER BY worker, attempt";
    let mut select = conn.prepare_cached(sql)?;
    let rows = select.query_map([], |row| {
        Ok(RetryLevelCount { worker: row.get(0)?, level: format!("attempt {}", row.get::<_, i64>(1)?), waiting: row.get(2)? })
    })?;
    rows.collect()
}
