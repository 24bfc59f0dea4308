//! Settling a delivery: the worker's verdict applied to its row.
//!
//! Acks, the common verdict, are committed in groups: a thread takes every ack
//! waiting, deletes their rows in one transaction and answers each settler only
//! after that commit (still `synchronous=FULL`), so a burst of acks costs one
//! fsync instead of one each. Retries, parks and releases are rare and go one by one.

use std::sync::{mpsc, Arc, Mutex};

use async_trait::async_trait;
use blog_actors::delivery::{Settle, TransportError, Verdict};
use blog_actors::ports::Reason;
use rusqlite::{params, Connection};
use tokio::sync::OwnedSemaphorePermit;

use super::db::{after, immediate, now_ms, Db};
use super::{parked, Shared};
use crate::groups::next_group;

/// Most acks committed together.
const ACK_GROUP_MAX: usize = 512;

/// An ack waiting for its group's commit, and who to tell.
type PendingAck = (i64, tokio::sync::oneshot::Sender<Result<(), TransportError>>);

/// Hands acks to the thread that commits them in groups; the thread ends when this is dropped.
pub(super) struct AckGroups {
    acks: Mutex<mpsc::Sender<PendingAck>>,
}

impl AckGroups {
    pub(super) fn start(db: Db) -> Result<Self, TransportError> {
        let (acks, pending) = mpsc::channel();
        std::thread::Builder::new()
            .name("queue acks".into())
            .spawn(move || ack_in_groups(&db, &pending))
            .map_err(|e| TransportError::unavailable("embedded queue: cannot start the ack thread", e))?;
        Ok(Self { acks: Mutex::new(acks) })
    }

    /// Deletes the row; answers once that is committed.
    async fn ack(&self, id: i64) -> Result<(), TransportError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let gone = || TransportError::unavailable("embedded queue", Reason("the ack thread is gone"));
        self.acks.lock().unwrap_or_else(|p| p.into_inner()).send((id, answer)).map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

fn ack_in_groups(db: &Db, pending: &mpsc::Receiver<PendingAck>) {
    while let Some(group) = next_group(pending, ACK_GROUP_MAX) {
        let committed = db.blocking(|conn| {
            let tx = immediate(conn)?;
            {
                let mut delete = tx.prepare_cached("DELETE FROM deliveries WHERE id = ?1")?;
                for (id, _) in &group {
                    delete.execute([id])?;
                }
            }
            tx.commit()
        });
        for (_, answer) in group {
            let _ = answer.send(committed.clone());
        }
    }
}

const RETRY: &str = "
UPDATE deliveries SET attempt = ?2, available_at = ?3, last_error = ?4, leased = 0, redelivered = 0
WHERE id = ?1";

/// Handed out before without a verdict: the row comes again, flagged redelivered.
pub(super) const RELEASE: &str = "UPDATE deliveries SET leased = 0, redelivered = 1 WHERE id = ?1";

/// Owns one leased row and one prefetch slot of its worker.
pub(super) struct EmbeddedSettler {
    shared: Arc<Shared>,
    id: i64,
    /// Given back only once the row is settled, so the worker never has more
    /// than `prefetch` rows leased.
    _permit: OwnedSemaphorePermit,
    settled: bool,
}

impl EmbeddedSettler {
    pub(super) fn new(shared: Arc<Shared>, id: i64, permit: OwnedSemaphorePermit) -> Self {
        Self { shared, id, _permit: permit, settled: false }
    }
}

#[async_trait]
impl Settle for EmbeddedSettler {
    async fn settle(mut self: Box<Self>, verdict: Verdict) -> Result<(), TransportError> {
        let id = self.id;
        let makes_due = matches!(verdict, Verdict::Retry { .. } | Verdict::Release);
        match verdict {
            Verdict::Ack => self.shared.acks.ack(id).await?,
            verdict => self.shared.db.call(move |conn| apply(conn, id, &verdict, now_ms())).await?,
        }
        self.settled = true;
        if makes_due {
            // A consumer sleeping towards an older due time must see the new one.
            self.shared.wake.notify_waiters();
        }
        Ok(())
    }
}

fn apply(conn: &mut Connection, id: i64, verdict: &Verdict, now: i64) -> rusqlite::Result<()> {
    match verdict {
        Verdict::Ack => conn.execute("DELETE FROM deliveries WHERE id = ?1", [id]).map(drop),
        Verdict::Retry { delay, next_attempt, reason } => conn
            .execute(RETRY, params![id, next_attempt, after(now, *delay), reason])
            .map(drop),
        Verdict::Park { reason, attempts } => parked::park_delivery(conn, id, reason, *attempts, now),
        Verdict::Release => conn.execute(RELEASE, [id]).map(drop),
    }
}

impl Drop for EmbeddedSettler {
    /// Dropped without a verdict (the reader went away, or settling failed): hand
    /// the row back now rather than leaving it leased until the next restart.
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (shared, id) = (self.shared.clone(), self.id);
        let release = move || match shared.db.blocking(|conn| conn.execute(RELEASE, [id])) {
            Ok(_) => shared.wake.notify_waiters(),
            Err(e) => tracing::warn!(id, error = %e, "cannot hand back an unsettled delivery; it comes at restart"),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(release)),
            Err(_) => release(),
        }
    }
}
