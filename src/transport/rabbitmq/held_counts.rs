//! Parked messages a dead-letter call holds unacked while it reads a parking
//! lot. The broker counts only ready messages, so without these a lot would
//! look emptied for as long as a bulk replay runs (a dip an alert on
//! `delta(blog_parked_messages)` would take for a rise when it ends). The
//! counts read `ready + held` and need no lock on the dead-letter calls, so a
//! scrape never waits behind a long replay.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub(super) struct HeldCounts(Mutex<HashMap<String, u64>>);

impl HeldCounts {
    pub(super) fn took(&self, queue: &str) {
        *self.lock().entry(queue.to_owned()).or_default() += 1;
    }

    /// One held message of `queue` acked (gone for good).
    pub(super) fn settled(&self, queue: &str) {
        if let Some(n) = self.lock().get_mut(queue) {
            *n = n.saturating_sub(1);
        }
    }

    /// The reading channel closed: the broker has every held message back.
    pub(super) fn released(&self) {
        self.lock().clear();
    }

    /// The queues with held messages and how many.
    pub(super) fn all(&self) -> Vec<(String, u64)> {
        self.lock().iter().filter(|(_, n)| **n > 0).map(|(q, n)| (q.clone(), *n)).collect()
    }

    pub(super) fn of(&self, queue: &str) -> u64 {
        self.lock().get(queue).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // A panic elsewhere while holding it leaves plain counts: still usable.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_messages_count_until_settled_or_released() {
        let held = HeldCounts::default();
        held.took("p.emailer.parked");
        held.took("p.emailer.parked");
        held.settled("p.emailer.parked");
        assert_eq!((held.of("p.emailer.parked"), held.of("p.unrouted.parked")), (1, 0));
        held.released();
        assert_eq!(held.of("p.emailer.parked"), 0);
    }
}
