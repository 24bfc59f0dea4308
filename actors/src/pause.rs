//! Which workers a transport must not feed now: the switch the queue reader
//! flips when a breaker opens or an operator pauses a worker, and the transports
//! wait on. Deliveries of a paused worker stay in its queue.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::watch;

use crate::worker::WorkerKind;

/// The paused workers; cheap to clone (every clone is the same switch).
#[derive(Debug, Clone)]
pub struct PauseSwitch {
    /// The names of the paused workers; a watch so a consumer can wait for a change.
    paused: Arc<watch::Sender<BTreeSet<&'static str>>>,
}

impl Default for PauseSwitch {
    fn default() -> Self {
        Self { paused: Arc::new(watch::Sender::new(BTreeSet::new())) }
    }
}

impl PauseSwitch {
    /// Pauses (`true`) or resumes (`false`) one worker; waiters wake only on a change.
    pub fn set(&self, worker: WorkerKind, paused: bool) {
        self.paused.send_if_modified(|set| if paused { set.insert(worker.name()) } else { set.remove(worker.name()) });
    }

    pub fn is_paused(&self, worker: WorkerKind) -> bool {
        self.paused.borrow().contains(worker.name())
    }

    /// Resolves once `worker` is not paused; at once when it is not.
    pub async fn until_running(&self, worker: WorkerKind) {
        let mut rx = self.paused.subscribe();
        // The sender lives as long as `self`: the wait cannot fail while we hold it.
        let _ = rx.wait_for(|set| !set.contains(worker.name())).await;
    }

    /// Resolves once `worker` is paused; at once when it is.
    pub async fn until_paused(&self, worker: WorkerKind) {
        let mut rx = self.paused.subscribe();
        let _ = rx.wait_for(|set| set.contains(worker.name())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::WorkerSpec;

    static A: WorkerSpec = WorkerSpec { name: "a", event_types: &["x"], mailbox: 8 };

    #[actix::test]
    async fn a_waiter_wakes_when_its_worker_is_resumed() {
        let (switch, a) = (PauseSwitch::default(), WorkerKind::of(&A));
        switch.until_running(a).await;
        switch.set(a, true);
        assert!(switch.is_paused(a));
        switch.until_paused(a).await;
        let waiter = tokio::spawn({
            let switch = switch.clone();
            async move { switch.until_running(a).await }
        });
        switch.set(a, false);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert!(!switch.is_paused(a));
    }
}
