//! The stall watcher: names the workers that hold work and settle none of it.
//!
//! A worker is stalled when it has held deliveries (in its mailbox or being
//! handled) for `stall_after` without settling one for good (handled or
//! parked). A retry is no progress: a store that never answers makes every
//! attempt time out and retry, and the work goes round without landing. A
//! worker that held nothing for a whole `stall_after` (its retries waiting out a
//! long backoff, or no work at all) starts afresh. A worker its circuit breaker
//! or a person holds back waits on purpose, says so itself, and is not stalled:
//! a mail-server outage must not take the whole pod out of readiness. Entering
//! and leaving a stall is logged, and shown in `/actors`, `blog_worker_stalled`
//! and readiness.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::breaker::BreakerState;
use crate::metrics::ActorMetrics;
use crate::worker::Workers;

/// Checks per `stall_after`: a stall is seen at most a quarter late.
const CHECKS_PER_WINDOW: u32 = 4;
/// The longest pause between two checks, whatever `stall_after` is.
const LONGEST_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What one check reads of a worker.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// Messages settled for good so far (a counter).
    pub settled: u64,
    /// Deliveries held now.
    pub held: usize,
    /// Its breaker is open or half-open, or it is paused by hand.
    pub held_back: bool,
}

/// One worker's watch between checks.
#[derive(Debug, Default)]
pub struct Watch {
    settled: u64,
    /// When the current run of held-but-unsettled work began.
    since: Option<Instant>,
    /// When the worker last held a delivery.
    last_held: Option<Instant>,
    stalled: bool,
}

impl Watch {
    /// Takes a reading; answers whether the worker is stalled now.
    pub fn check(&mut self, now: Instant, reading: Reading, stall_after: Duration) -> bool {
        if reading.held_back {
            *self = Watch { settled: reading.settled, ..Watch::default() };
            return false;
        }
        if reading.settled != self.settled {
            self.settled = reading.settled;
            self.since = None;
        }
        if reading.held > 0 {
            self.last_held = Some(now);
            self.since.get_or_insert(now);
        } else if self.last_held.is_none_or(|held| now.duration_since(held) >= stall_after) {
            self.since = None;
        }
        self.stalled = self.since.is_some_and(|since| now.duration_since(since) >= stall_after);
        self.stalled
    }

    pub fn stalled(&self) -> bool {
        self.stalled
    }
}

/// Checks every worker until `stop`, keeping the figures and the log up to date;
/// the service spawns it beside the workers.
pub async fn watch(metrics: ActorMetrics, workers: Workers, stall_after: Duration, stop: CancellationToken) {
    let interval = (stall_after / CHECKS_PER_WINDOW).min(LONGEST_CHECK_INTERVAL);
    let mut watches: HashMap<&'static str, Watch> = HashMap::new();
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => check_all(&metrics, &workers, stall_after, &mut watches),
        }
    }
}

fn check_all(metrics: &ActorMetrics, workers: &Workers, stall_after: Duration, watches: &mut HashMap<&'static str, Watch>) {
    let now = Instant::now();
    for name in workers.iter().map(|w| w.name()) {
        let watch = watches.entry(name).or_default();
        let was = watch.stalled();
        let held_back = metrics.breaker(name).is_some_and(|b| b.paused || b.state != BreakerState::Closed);
        let reading = Reading { settled: metrics.settled_for_good(name), held: metrics.held(name), held_back };
        let is = watch.check(now, reading, stall_after);
        if is != was {
            metrics.set_stalled(name, is);
            if is {
                let stall_after_s = stall_after.as_secs_f64();
                tracing::error!(worker = name, held = reading.held, stall_after_s, "worker stalled: work waits and none was settled");
            } else {
                tracing::warn!(worker = name, "worker no longer stalled");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    fn at(start: Instant, secs: u64) -> Instant {
        start + Duration::from_secs(secs)
    }

    #[test]
    fn held_work_with_nothing_settled_for_the_window_is_a_stall_until_one_settles() {
        let (start, mut watch) = (Instant::now(), Watch::default());
        assert!(!watch.check(at(start, 0), Reading { settled: 0, held: 2, held_back: false }, WINDOW));
        assert!(!watch.check(at(start, 9), Reading { settled: 0, held: 2, held_back: false }, WINDOW));
        assert!(watch.check(at(start, 10), Reading { settled: 0, held: 2, held_back: false }, WINDOW));
        assert!(!watch.check(at(start, 11), Reading { settled: 1, held: 1, held_back: false }, WINDOW), "one settled: progress");
        assert!(watch.check(at(start, 21), Reading { settled: 1, held: 1, held_back: false }, WINDOW), "stuck again for a window");
    }

    #[test]
    fn retries_that_go_round_without_landing_are_still_a_stall() {
        let (start, mut watch) = (Instant::now(), Watch::default());
        // Held, handed back for a retry (held 0 for a moment), held again: no progress.
        for (secs, held) in [(0, 1), (3, 0), (4, 1), (7, 0), (8, 1)] {
            assert!(!watch.check(at(start, secs), Reading { settled: 0, held, held_back: false }, WINDOW), "at {secs} s");
        }
        assert!(watch.check(at(start, 10), Reading { settled: 0, held: 0, held_back: false }, WINDOW));
    }

    #[test]
    fn a_worker_held_back_by_its_breaker_or_by_hand_is_not_stalled_and_starts_afresh() {
        let (start, mut watch) = (Instant::now(), Watch::default());
        let held_back = |held| Reading { settled: 0, held, held_back: true };
        assert!(!watch.check(at(start, 0), Reading { settled: 0, held: 1, held_back: false }, WINDOW));
        for secs in [5, 12, 30] {
            assert!(!watch.check(at(start, secs), held_back(1), WINDOW), "a probe held at {secs} s");
        }
        assert!(!watch.check(at(start, 31), Reading { settled: 0, held: 1, held_back: false }, WINDOW), "closed again: a fresh start");
        assert!(watch.check(at(start, 41), Reading { settled: 0, held: 1, held_back: false }, WINDOW));
    }

    #[test]
    fn an_idle_worker_or_one_waiting_out_a_long_backoff_is_not_stalled() {
        let (start, mut watch) = (Instant::now(), Watch::default());
        assert!(!watch.check(at(start, 0), Reading { settled: 0, held: 0, held_back: false }, WINDOW));
        assert!(!watch.check(at(start, 100), Reading { settled: 0, held: 0, held_back: false }, WINDOW));
        assert!(!watch.check(at(start, 101), Reading { settled: 0, held: 1, held_back: false }, WINDOW), "new work after a long idle");
        assert!(!watch.check(at(start, 115), Reading { settled: 0, held: 0, held_back: false }, WINDOW), "backing off for longer than the window");
        assert!(!watch.check(at(start, 116), Reading { settled: 0, held: 1, held_back: false }, WINDOW), "back: a fresh start");
    }
}
