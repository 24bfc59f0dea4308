//! What the store and the transport say about the work waiting now (outbox
//! backlog, queue depth, parked messages, connection), read for `/metrics` and
//! `/actors`, and sampled into each actor's backlog history on a timer, so the
//! dashboard's charts do not depend on anyone scraping.

use std::sync::Arc;

use blog_actors::metrics::{ActorMetrics, HISTORY_SLOT, QUEUE_READER, RELAY};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::Store;
use crate::transport::Transport;

/// The figures now; `None` where they could not be read (a gap, not a false zero).
pub struct LiveFigures {
    pub backlog: Option<u64>,
    pub parked: Option<u64>,
    pub pending: Option<u64>,
    pub connected: bool,
    pub consuming: bool,
    /// The RabbitMQ node in use, without credentials.
    pub node: Option<String>,
    /// Consumer sessions lost since the start (each one reconnected).
    pub losses: u64,
}

impl LiveFigures {
    pub async fn read(store: &dyn Store, transport: &dyn Transport) -> Self {
        let backlog = store.backlog().await.map_err(|e| tracing::warn!(error = %e, "outbox backlog unavailable")).ok();
        let parked = transport.parked_count().await.map_err(|e| tracing::warn!(error = %e, "parked count unavailable")).ok();
        let pending = transport.pending_deliveries().await.map_err(|e| tracing::warn!(error = %e, "queue depth unavailable")).ok();
        Self { backlog, parked, pending, connected: transport.is_connected(), consuming: transport.is_consuming(), node: transport.broker_node(), losses: transport.connection_losses() }
    }

    /// Work waiting for `actor`: the outbox for the relay, the worker queues for the reader, else its mailbox.
    pub fn backlog_of(&self, actor: &str, mailbox_depth: Option<i64>) -> Option<u64> {
        match actor {
            RELAY => self.backlog,
            QUEUE_READER => self.pending,
            _ => mailbox_depth.map(|d| u64::try_from(d).unwrap_or(0)),
        }
    }
}

/// Reads the figures once and keeps each actor's backlog in its history.
pub async fn sample(store: &dyn Store, transport: &dyn Transport, metrics: &ActorMetrics) {
    let live = LiveFigures::read(store, transport).await;
    for actor in metrics.actor_names() {
        if let Some(backlog) = live.backlog_of(actor, Some(metrics.mailbox_depth(actor))) {
            metrics.observe_backlog(actor, backlog);
        }
    }
}

/// Samples once per history slot until `stop`.
pub fn spawn_sampler(store: Arc<dyn Store>, transport: Arc<dyn Transport>, metrics: ActorMetrics, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(HISTORY_SLOT);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = every.tick() => sample(&*store, &*transport, &metrics).await,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use blog_actors::worker::Workers;

    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::Outbox;
    use crate::transport::embedded::EmbeddedQueue;

    #[test]
    fn each_actor_has_its_own_backlog() {
        let live = LiveFigures { backlog: Some(3), parked: None, pending: Some(5), connected: true, consuming: true, node: None, losses: 0 };
        assert_eq!(live.backlog_of("relay", Some(0)), Some(3));
        assert_eq!(live.backlog_of("queue_reader", Some(0)), Some(5));
        assert_eq!(live.backlog_of("emailer", Some(2)), Some(2));
    }

    #[tokio::test]
    async fn a_sample_keeps_the_outbox_backlog_in_the_relays_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let queue = EmbeddedQueue::open(&dir.path().join("queue.sqlite"), crate::startup::registered_workers()).unwrap();
        store.enqueue("order.fulfilled", uuid::Uuid::new_v4(), b"{}".to_vec(), None).await.unwrap();
        let metrics = ActorMetrics::new(&prometheus::Registry::new(), &Workers::new([]).unwrap()).unwrap();
        sample(&store, &queue, &metrics).await;
        // A slot shows once it is over: poll until it is, under a deadline.
        let deadline = std::time::Instant::now() + HISTORY_SLOT * 3;
        loop {
            let relay = metrics.snapshot().into_iter().find(|a| a.name == "relay").unwrap();
            if relay.history.backlog.contains(&Some(1)) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never sampled: {:?}", relay.history.backlog);
            tokio::time::sleep(std::time::Duration::from_millis(100)).await; // poll interval under a deadline
        }
    }
}
