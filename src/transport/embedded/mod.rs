//! The embedded durable queue: one SQLite file (the service uses
//! `<data_dir>/queue.sqlite`) holding one row per (message, worker) and the
//! parking lot, so `cargo run` needs no broker.
//!
//! - Durable: a publish returns once its transaction is committed with
//!   `synchronous=FULL` in WAL mode, so it survives SIGKILL and power loss.
//! - At least once: a delivery's row is leased while out and deleted only on
//!   ack; retries are rows that fall due later, with the next attempt number.
//! - Fan-out: a message becomes one row per worker in
//!   [`WorkerKind::subscribers`] of its routing key; a key no worker takes is
//!   parked as `unrouted` with the reason.
//! - Ownership: exactly one service process consumes a queue file. Other
//!   processes (the `publish` CLI) may open it and publish at the same time;
//!   the consumers notice their rows by polling. Rows leased by a process that
//!   died are made due again (flagged redelivered) by the first `consume` of
//!   the next one, not by `open`, so a publishing CLI never steals the leases
//!   of the running service.

mod consumer;
mod db;
mod deliveries;
mod parked;
mod parked_bulk;
mod publish;
mod settle;
mod upgrade;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use blog_actors::delivery::{Delivery, DeliverySource, TransportError};
use blog_actors::worker::{WorkerKind, Workers};
use tokio::sync::{mpsc, Notify, OnceCell};
use tokio_util::sync::CancellationToken;

use self::db::{now_ms, Db};
use self::parked::Replay;
use super::parked_query::{ParkedFilter, ParkedPage};
use super::replay_throttle::ReplayThrottle;
use super::{DeadLetters, ParkedMessage, RetryLevelCount, Transport};

/// The embedded queue; cheap to clone (every clone is the same queue).
#[derive(Clone)]
pub struct EmbeddedQueue {
    shared: Arc<Shared>,
}

/// What the queue, its consumer tasks and its settlers share.
struct Shared {
    db: Db,
    /// The registered workers: who receives a message of each type.
    workers: Workers,
    /// Woken after every commit that makes rows due now, so consumers in this
    /// process answer at once instead of at their next poll.
    wake: Notify,
    /// Consumer tasks running now.
    consumers: AtomicUsize,
    /// Set once the rows a dead process left leased were handed back.
    recovered: OnceCell<()>,
    /// Commits acks in groups.
    acks: settle::AckGroups,
    /// How much each worker's consumer claims now (breaker open or half-open, paused by hand).
    feeds: blog_actors::pause::FeedSwitch,
}

impl EmbeddedQueue {
    /// Opens the queue file, creating it and its folder when missing.
    pub fn open(path: &Path, workers: Workers) -> Result<EmbeddedQueue, TransportError> {
        let db = Db::open(path)?;
        tracing::info!(path = %path.display(), "embedded queue open");
        let acks = settle::AckGroups::start(db.clone())?;
        let (wake, consumers, recovered, feeds) = (Notify::new(), AtomicUsize::new(0), OnceCell::new(), Default::default());
        let shared = Shared { db, workers, wake, consumers, recovered, acks, feeds };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// Deliveries not yet settled (due, waiting for a retry, or out), over all workers.
    pub async fn depth(&self) -> Result<u64, TransportError> {
        let count = "SELECT COUNT(*) FROM deliveries";
        self.shared.db.call(move |conn| conn.query_row(count, [], |row| row.get(0))).await
    }
}

#[async_trait]
impl DeliverySource for EmbeddedQueue {
    async fn consume(&self, workers: &[WorkerKind], prefetch: u16, stop: CancellationToken) -> Result<mpsc::Receiver<Delivery>, TransportError> {
        consumer::consume(&self.shared, workers, prefetch, stop).await
    }

    fn is_consuming(&self) -> bool {
        self.shared.consumers.load(Ordering::SeqCst) > 0
    }

    fn set_feed(&self, worker: WorkerKind, feed: blog_actors::pause::Feed) {
        self.shared.feeds.set(worker, feed);
    }
}

#[async_trait]
impl DeadLetters for EmbeddedQueue {
    async fn list_parked(&self, limit: usize) -> Result<Vec<ParkedMessage>, TransportError> {
        self.shared.db.call(move |conn| parked::list(conn, limit)).await
    }

    async fn replay_parked(&self, id: &str) -> Result<bool, TransportError> {
        let id = id.to_owned();
        let workers = self.shared.workers.clone();
        let replay = self.shared.db.call(move |conn| parked::replay(conn, &workers, &id, now_ms())).await?;
        match replay {
            Replay::NotFound => Ok(false),
            Replay::Requeued => {
                self.shared.wake.notify_waiters();
                Ok(true)
            }
            Replay::StillUnrouted => {
                tracing::info!("replay left an unrouted message parked: still no worker takes its type");
                Ok(true)
            }
        }
    }

    async fn delete_parked(&self, id: &str) -> Result<bool, TransportError> {
        let id = id.to_owned();
        self.shared.db.call(move |conn| parked::delete(conn, &id)).await
    }

    async fn parked_count(&self) -> Result<u64, TransportError> {
        self.shared.db.call(|conn| parked::count(conn)).await
    }

    async fn query_parked(&self, filter: &ParkedFilter, offset: usize, limit: usize) -> Result<ParkedPage, TransportError> {
        let filter = filter.clone();
        self.shared.db.call(move |conn| parked_bulk::query(conn, &filter, offset, limit)).await
    }

    async fn replay_matching(&self, filter: &ParkedFilter, throttle: &ReplayThrottle) -> Result<u64, TransportError> {
        let filter = filter.clone();
        let ids = self.shared.db.call(move |conn| parked_bulk::ids(conn, &filter)).await?;
        let mut replayed = 0;
        for batch in ids.chunks(throttle.batch()) {
            throttle.admit(batch.len()).await;
            let (workers, batch) = (self.shared.workers.clone(), batch.to_vec());
            replayed += self.shared.db.call(move |conn| parked_bulk::replay_batch(conn, &workers, &batch, now_ms())).await?;
            self.shared.wake.notify_waiters();
        }
        Ok(replayed)
    }

    async fn delete_matching(&self, filter: &ParkedFilter) -> Result<u64, TransportError> {
        let filter = filter.clone();
        self.shared.db.call(move |conn| parked_bulk::ids(conn, &filter).and_then(|ids| parked_bulk::delete(conn, &ids))).await
    }

    async fn parked_by_worker(&self) -> Result<Vec<(String, u64)>, TransportError> {
        let workers = self.shared.workers.clone();
        self.shared.db.call(move |conn| parked_bulk::by_worker(conn, &workers)).await
    }

    async fn waiting_for_retry(&self) -> Result<Vec<RetryLevelCount>, TransportError> {
        self.shared.db.call(|conn| parked_bulk::waiting_for_retry(conn)).await
    }
}

#[async_trait]
impl Transport for EmbeddedQueue {
    /// The file is open for as long as the queue exists; there is no link to lose.
    fn is_connected(&self) -> bool {
        true
    }

    async fn pending_deliveries(&self) -> Result<u64, TransportError> {
        self.depth().await
    }

    /// Every commit is already durable; the connection closes when the last clone drops.
    async fn close(&self) {
        tracing::debug!("embedded queue closed");
    }
}
