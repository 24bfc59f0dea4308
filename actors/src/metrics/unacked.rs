//! Deliveries the queue reader holds and has not settled yet, with when each
//! arrived: the age of the oldest is the first sign of a stuck worker.
//!
//! The age is computed when the registry is gathered, so a scrape always sees
//! the current age, not the one of the last delivery.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, Opts};

use crate::worker::Workers;

/// Arrival times of unsettled deliveries, by ticket number.
#[derive(Default)]
pub(super) struct Unacked {
    next: u64,
    held: BTreeMap<u64, (&'static str, Instant)>,
}

impl Unacked {
    /// Deliveries of `worker` held now.
    pub(super) fn count(&self, worker: &str) -> usize {
        self.held.values().filter(|(w, _)| *w == worker).count()
    }

    pub(super) fn oldest_age_seconds(&self, worker: &str, now: Instant) -> f64 {
        // Tickets grow with arrival, so the first one of a worker is its oldest.
        self.held
            .values()
            .find(|(w, _)| *w == worker)
            .map_or(0.0, |(_, arrived)| now.saturating_duration_since(*arrived).as_secs_f64())
    }
}

pub(super) type SharedUnacked = Arc<Mutex<Unacked>>;

/// Held while a delivery is unsettled; dropping it (settled, or the reader gone) forgets it.
#[must_use = "the delivery counts as unacked only while the guard lives"]
pub struct UnackedGuard {
    ticket: u64,
    unacked: SharedUnacked,
}

pub(super) fn track(unacked: &SharedUnacked, worker: &'static str) -> UnackedGuard {
    let mut held = unacked.lock().expect("unacked lock");
    let ticket = held.next;
    held.next += 1;
    held.held.insert(ticket, (worker, Instant::now()));
    UnackedGuard { ticket, unacked: unacked.clone() }
}

impl Drop for UnackedGuard {
    fn drop(&mut self) {
        if let Ok(mut held) = self.unacked.lock() {
            held.held.remove(&self.ticket);
        }
    }
}

/// `blog_queue_reader_oldest_unacked_seconds{worker}`, filled in at collect time.
pub(super) struct OldestUnacked {
    gauge: GaugeVec,
    unacked: SharedUnacked,
    /// One series per registered worker, 0 when it holds nothing.
    workers: Workers,
}

impl OldestUnacked {
    pub(super) fn new(unacked: SharedUnacked, workers: Workers) -> prometheus::Result<Self> {
        let gauge = GaugeVec::new(
            Opts::new(
                "blog_queue_reader_oldest_unacked_seconds",
                "Age of the oldest delivery the queue reader holds unsettled, per worker queue (0 when none)",
            ),
            &["worker"],
        )?;
        Ok(Self { gauge, unacked, workers })
    }
}

impl Collector for OldestUnacked {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let now = Instant::now();
        if let Ok(held) = self.unacked.lock() {
            for worker in self.workers.iter() {
                self.gauge.with_label_values(&[worker.name()]).set(held.oldest_age_seconds(worker.name(), now));
            }
        }
        self.gauge.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_unsettled_delivery_sets_the_age_until_it_is_settled() {
        let unacked: SharedUnacked = Arc::default();
        let first = track(&unacked, "emailer");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let _second = track(&unacked, "emailer");
        let age = unacked.lock().unwrap().oldest_age_seconds("emailer", Instant::now());
        assert!(age >= 0.02, "{age}");
        assert_eq!(unacked.lock().unwrap().oldest_age_seconds("projector", Instant::now()), 0.0);
        drop(first);
        let age = unacked.lock().unwrap().oldest_age_seconds("emailer", Instant::now());
        assert!(age < 0.02, "{age}");
    }
}
