//! How much a transport may feed each worker now: the switch the queue reader
//! sets when a breaker opens, goes half-open or closes, or an operator pauses a
//! worker; the transports wait on it. Deliveries not fed stay in the worker's queue.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::worker::WorkerKind;

/// What a transport hands one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Feed {
    /// Up to the prefetch at once: the normal flow.
    #[default]
    Full,
    /// One delivery at a time: a half-open breaker's probe.
    Probe,
    /// Nothing: the breaker is open or the worker is paused by hand.
    Stopped,
}

/// Every worker's feed; cheap to clone (every clone is the same switch).
#[derive(Debug, Clone)]
pub struct FeedSwitch {
    /// The workers not fed in full, by name; a watch so a consumer can wait for a change.
    feeds: Arc<watch::Sender<BTreeMap<&'static str, Feed>>>,
}

impl Default for FeedSwitch {
    fn default() -> Self {
        Self { feeds: Arc::new(watch::Sender::new(BTreeMap::new())) }
    }
}

impl FeedSwitch {
    /// Sets one worker's feed; waiters wake only on a change.
    pub fn set(&self, worker: WorkerKind, feed: Feed) {
        self.feeds.send_if_modified(|feeds| {
            let before = match feed {
                Feed::Full => feeds.remove(worker.name()),
                other => feeds.insert(worker.name(), other),
            };
            before.unwrap_or_default() != feed
        });
    }

    pub fn feed(&self, worker: WorkerKind) -> Feed {
        self.feeds.borrow().get(worker.name()).copied().unwrap_or_default()
    }

    /// Resolves with the worker's feed once it is not `current`; at once when it is not.
    pub async fn changed_from(&self, worker: WorkerKind, current: Feed) -> Feed {
        let mut rx = self.feeds.subscribe();
        let name = worker.name();
        // The sender lives as long as `self`: the wait cannot fail while we hold it.
        let _ = rx.wait_for(|feeds| feeds.get(name).copied().unwrap_or_default() != current).await;
        self.feed(worker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::WorkerSpec;

    static A: WorkerSpec = WorkerSpec { name: "a", event_types: &["x"], mailbox: 8 };

    #[actix::test]
    async fn a_waiter_wakes_with_the_new_feed() {
        let (switch, a) = (FeedSwitch::default(), WorkerKind::of(&A));
        assert_eq!(switch.changed_from(a, Feed::Stopped).await, Feed::Full, "full by default");
        switch.set(a, Feed::Stopped);
        assert_eq!(switch.feed(a), Feed::Stopped);
        let waiter = tokio::spawn({
            let switch = switch.clone();
            async move { switch.changed_from(a, Feed::Stopped).await }
        });
        switch.set(a, Feed::Probe);
        let woke = tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert_eq!(woke, Feed::Probe);
        switch.set(a, Feed::Full);
        assert_eq!(switch.feed(a), Feed::Full);
    }
}
