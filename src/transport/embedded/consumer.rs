//! Consuming: one task per worker claims due rows, never more than its prefetch
//! unsettled at once, and feeds them into the reader's channel.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use blog_actors::delivery::{Delivery, TransportError};
use blog_actors::pause::Feed;
use blog_actors::trace_context::TraceContext;
use blog_actors::worker::WorkerKind;
use rusqlite::{params, Connection, Row};
use tokio::sync::futures::Notified;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::db::{immediate, now_ms, Db};
use super::deliveries::trace_columns;
use super::settle::EmbeddedSettler;
use super::Shared;

/// Most rows claimed in one transaction.
const CLAIM_BATCH: usize = 32;
/// A publish from another process (the `publish` CLI) wakes nobody here, so the
/// file is looked at this often anyway.
const POLL: Duration = Duration::from_millis(250);

/// `RETURNING` order is unspecified; callers sort by id.
const CLAIM: &str = "
UPDATE deliveries SET leased = 1
WHERE id IN (SELECT id FROM deliveries
             WHERE worker = ?1 AND leased = 0 AND available_at <= ?2
             ORDER BY id LIMIT ?3)
RETURNING id, routing_key, correlation_id, body, attempt, redelivered, traceparent, tracestate";

const NEXT_DUE: &str = "SELECT MIN(available_at) FROM deliveries WHERE worker = ?1 AND leased = 0";

/// Starts one consumer task per worker; the receiver closes once all have stopped.
pub(super) async fn consume(
    shared: &Arc<Shared>,
    workers: &[WorkerKind],
    prefetch: u16,
    stop: CancellationToken,
) -> Result<mpsc::Receiver<Delivery>, TransportError> {
    shared.recovered.get_or_try_init(|| recover(&shared.db)).await?;
    let mut unique: Vec<WorkerKind> = Vec::new();
    for worker in workers {
        if !unique.contains(worker) {
            unique.push(*worker);
        }
    }
    let prefetch = usize::from(prefetch.max(1));
    // Each worker never has more than `prefetch` deliveries out, so sends never wait.
    let (tx, rx) = mpsc::channel(prefetch * unique.len().max(1));
    for worker in unique {
        let consumer = WorkerConsumer {
            running: Running::start(shared.clone()),
            worker,
            permits: Arc::new(Semaphore::new(prefetch)),
            prefetch: u32::try_from(prefetch).unwrap_or(u32::MAX),
            tx: tx.clone(),
            stop: stop.clone(),
        };
        tokio::spawn(consumer.run());
    }
    Ok(rx)
}

/// Rows leased when the previous process died were never settled: make them due
/// again, flagged redelivered. Done once, by the first consume of this process,
/// not at open, so a CLI that opens the file only to publish cannot steal the
/// leases of the running service.
async fn recover(db: &Db) -> Result<(), TransportError> {
    let released = db
        .call(|conn| conn.execute("UPDATE deliveries SET leased = 0, redelivered = 1 WHERE leased = 1", []))
        .await?;
    if released > 0 {
        tracing::info!(released, "deliveries left unsettled by the previous run will come again");
    }
    Ok(())
}

/// Counts a running consumer task for `is_consuming`, until the task ends (even by panic).
struct Running(Arc<Shared>);

impl Running {
    fn start(shared: Arc<Shared>) -> Self {
        shared.consumers.fetch_add(1, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.consumers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A row just leased.
struct Claimed {
    id: i64,
    routing_key: String,
    correlation_id: Option<String>,
    body: Vec<u8>,
    attempt: u32,
    redelivered: bool,
    trace: Option<TraceContext>,
}

impl Claimed {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            routing_key: row.get(1)?,
            correlation_id: row.get(2)?,
            body: row.get(3)?,
            attempt: row.get(4)?,
            redelivered: row.get(5)?,
            trace: trace_columns(row, 6)?,
        })
    }
}

/// What one claim found: the rows, and when the worker's next row falls due
/// (only looked up when the claim did not fill every free slot).
struct Claim {
    rows: Vec<Claimed>,
    next_due: Option<i64>,
}

fn claim(conn: &mut Connection, worker: WorkerKind, limit: usize, now: i64) -> rusqlite::Result<Claim> {
    without_fsync(conn, |conn| claim_now(conn, worker, limit, now))
}

fn claim_now(conn: &mut Connection, worker: WorkerKind, limit: usize, now: i64) -> rusqlite::Result<Claim> {
    let tx = immediate(conn)?;
    let mut rows = {
        let mut stmt = tx.prepare_cached(CLAIM)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![worker.name(), now, limit], Claimed::from_row)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    rows.sort_by_key(|row| row.id);
    let next_due = if rows.len() < limit {
        tx.query_row(NEXT_DUE, [worker.name()], |row| row.get(0))?
    } else {
        None
    };
    tx.commit()?;
    Ok(Claim { rows, next_due })
}

/// Hands rows back untouched: they were claimed but never sent.
fn unclaim(conn: &mut Connection, ids: &[i64]) -> rusqlite::Result<()> {
    without_fsync(conn, |conn| {
        let tx = immediate(conn)?;
        {
            let mut update = tx.prepare_cached("UPDATE deliveries SET leased = 0 WHERE id = ?1")?;
            for id in ids {
                update.execute([id])?;
            }
        }
        tx.commit()
    })
}

/// Runs `f`'s commits without an fsync. Only for leases: a lease lost in a power
/// cut leaves its row due, which is what the next start makes of every lease
/// anyway (see `recover`), and the next commit that is synced (a publish, an
/// ack, a retry: `synchronous = FULL`) syncs the WAL up to it, leases
/// included. A claim was an fsync of its own, per worker, for every few
/// deliveries: the largest cost of the embedded queue after the writes themselves.
fn without_fsync<T>(conn: &mut Connection, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    conn.pragma_update(None, "synchronous", "OFF")?;
    let out = f(conn);
    let restored = conn.pragma_update(None, "synchronous", "FULL");
    let out = out?;
    restored?;
    Ok(out)
}

struct WorkerConsumer {
    running: Running,
    worker: WorkerKind,
    /// One permit per delivery out and unsettled: the prefetch bound.
    permits: Arc<Semaphore>,
    /// The number of permits.
    prefetch: u32,
    tx: mpsc::Sender<Delivery>,
    stop: CancellationToken,
}

impl WorkerConsumer {
    async fn run(self) {
        while let Some(permits) = self.acquire().await {
            // Registered before claiming, so a publish committed between the claim
            // and the wait still wakes us.
            let wake = self.running.0.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let wanted = permits.len();
            let (worker, db) = (self.worker, self.running.0.db.clone());
            match db.call(move |conn| claim(conn, worker, wanted, now_ms())).await {
                Ok(found) => {
                    let filled = found.rows.len() == wanted;
                    if !self.hand_out(found.rows, permits).await {
                        break;
                    }
                    if !filled {
                        self.idle(wake, found.next_due).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(worker = %self.worker, error = %e, "cannot claim deliveries; trying again");
                    drop(permits);
                    self.idle(wake, None).await;
                }
            }
        }
        tracing::debug!(worker = %self.worker, "embedded queue consumer stopped");
    }

    /// Waits until the worker may be fed and a prefetch slot is free, then takes
    /// every other free one up to a batch; None once stopping. A stopped worker's
    /// rows stay unclaimed in the file; a probed one gets one row, and the next
    /// only once that one is settled.
    async fn acquire(&self) -> Option<Vec<OwnedSemaphorePermit>> {
        loop {
            let feed = tokio::select! {
                biased;
                () = self.stop.cancelled() => return None,
                feed = self.running.0.feeds.changed_from(self.worker, Feed::Stopped) => feed,
            };
            if feed == Feed::Full {
                break;
            }
            // Every slot free means nothing is out: then one row may go.
            let mut all = tokio::select! {
                biased;
                () = self.stop.cancelled() => return None,
                all = self.permits.clone().acquire_many_owned(self.prefetch) => all.ok()?,
            };
            if self.running.0.feeds.feed(self.worker) == Feed::Probe {
                return Some(vec![all.split(1)?]);
            }
        }
        let first = tokio::select! {
            biased;
            () = self.stop.cancelled() => return None,
            permit = self.permits.clone().acquire_owned() => permit.ok()?,
        };
        let mut permits = vec![first];
        while permits.len() < CLAIM_BATCH {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        Some(permits)
    }

    /// Sends each row with one permit (the unused ones go back on return). False
    /// once stopping or nobody reads: the rows not sent are handed back.
    async fn hand_out(&self, rows: Vec<Claimed>, permits: Vec<OwnedSemaphorePermit>) -> bool {
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        for (sent, (row, permit)) in rows.into_iter().zip(permits).enumerate() {
            if self.stop.is_cancelled() {
                self.unclaim(ids[sent..].to_vec()).await;
                return false;
            }
            if self.tx.send(self.delivery(row, permit)).await.is_err() {
                // The returned delivery was dropped, and its settler handed its row back.
                self.unclaim(ids[sent + 1..].to_vec()).await;
                return false;
            }
        }
        true
    }

    fn delivery(&self, row: Claimed, permit: OwnedSemaphorePermit) -> Delivery {
        Delivery {
            worker: self.worker,
            routing_key: row.routing_key,
            body: row.body.into(),
            attempt: row.attempt,
            redelivered: row.redelivered,
            correlation_id: row.correlation_id,
            trace: row.trace,
            settler: Box::new(EmbeddedSettler::new(self.running.0.clone(), row.id, permit)),
        }
    }

    async fn unclaim(&self, ids: Vec<i64>) {
        if ids.is_empty() {
            return;
        }
        if let Err(e) = self.running.0.db.call(move |conn| unclaim(conn, &ids)).await {
            let worker = self.worker;
            tracing::warn!(%worker, error = %e, "cannot hand back unsent deliveries; they come again at restart");
        }
    }

    /// Nothing (more) is due: wait for a publish here, the next due time, the
    /// poll interval or the stop, whichever comes first.
    async fn idle(&self, wake: Pin<&mut Notified<'_>>, next_due: Option<i64>) {
        let until_due = |due: i64| Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0));
        let pause = next_due.map_or(POLL, |due| until_due(due).min(POLL));
        tokio::select! {
            () = self.stop.cancelled() => {}
            () = wake => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}
