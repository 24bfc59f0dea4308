//! What the queue reader does with each worker's deliveries: the worker's
//! circuit breaker and its pause-by-hand, turned into one decision per delivery
//! and into the transport's switch. One log line per breaker transition.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::breaker::{Breaker, BreakerSettings, BreakerState, Transition};
use crate::delivery::DeliverySource;
use crate::messages::HandlerError;
use crate::metrics::ActorMetrics;
use crate::pause::Feed;
use crate::worker::WorkerKind;

/// What becomes of a delivery that passed the reader's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// To the worker.
    Forward,
    /// Half-open with the probe out: wait in the reader for the probe's answer
    /// (rare: the transport feeds a half-open worker one delivery at a time).
    Hold,
    /// Open or paused: back to the queue at the same attempt.
    Postpone,
}

/// What a worker's answer says about its downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The worker reached it (done, or the message itself was refused).
    Reached,
    /// It could not be reached.
    Unavailable,
    /// No telling (deferred, the worker was restarting).
    Unknown,
}

impl Health {
    pub fn of(answer: &Result<(), HandlerError>) -> Self {
        match answer {
            Ok(()) | Err(HandlerError::Permanent(_) | HandlerError::Retryable(_)) => Health::Reached,
            Err(HandlerError::Unavailable(_)) => Health::Unavailable,
            Err(HandlerError::Deferred(_)) => Health::Unknown,
        }
    }
}

/// One worker's breaker and hand switch.
struct Switches {
    breaker: Breaker,
    /// Paused by an operator: stays paused until resumed by hand, whatever the breaker does.
    by_hand: bool,
}

/// Every worker's switches, and the transport they steer.
pub struct Steering {
    workers: HashMap<WorkerKind, Switches>,
    source: Arc<dyn DeliverySource>,
    metrics: ActorMetrics,
}

impl Steering {
    pub fn new(workers: impl IntoIterator<Item = WorkerKind>, settings: BreakerSettings, source: Arc<dyn DeliverySource>, metrics: ActorMetrics) -> Self {
        let workers = workers.into_iter().map(|w| (w, Switches { breaker: Breaker::new(settings), by_hand: false })).collect();
        Self { workers, source, metrics }
    }

    pub fn admit(&mut self, worker: WorkerKind) -> Admission {
        let Some(s) = self.workers.get_mut(&worker) else { return Admission::Forward };
        if s.by_hand {
            return Admission::Postpone;
        }
        match (s.breaker.admit(), s.breaker.state()) {
            (true, _) => Admission::Forward,
            (false, BreakerState::HalfOpen) => Admission::Hold,
            (false, _) => Admission::Postpone,
        }
    }

    /// Closed and not paused: a failure of this worker may use up an attempt.
    pub fn flowing(&self, worker: WorkerKind) -> bool {
        self.workers.get(&worker).is_none_or(|s| !s.by_hand && s.breaker.state() == BreakerState::Closed)
    }

    /// Feeds the worker's answer to its breaker; the transition it caused, if any.
    pub fn answered(&mut self, worker: WorkerKind, health: Health) -> Option<Transition> {
        let s = self.workers.get_mut(&worker)?;
        let transition = match health {
            Health::Reached => s.breaker.succeeded(),
            Health::Unavailable => s.breaker.failed(Instant::now()),
            Health::Unknown => {
                s.breaker.inconclusive();
                None
            }
        };
        transition.inspect(|t| self.transitioned(worker, *t))
    }

    /// Open → half-open if the cool-down is over.
    pub fn cool_down_over(&mut self, worker: WorkerKind) -> Option<Transition> {
        let transition = self.workers.get_mut(&worker)?.breaker.cool_down_over(Instant::now());
        transition.inspect(|t| self.transitioned(worker, *t))
    }

    pub fn cooldown(&self, worker: WorkerKind) -> Option<std::time::Duration> {
        self.workers.get(&worker).map(|s| s.breaker.cooldown())
    }

    /// Pauses or resumes by hand; false for a worker not steered here.
    pub fn by_hand(&mut self, worker: WorkerKind, pause: bool) -> bool {
        let Some(s) = self.workers.get_mut(&worker) else { return false };
        s.by_hand = pause;
        let state = s.breaker.state();
        tracing::warn!(worker = worker.name(), breaker = state.label(), "{}", if pause { "worker paused by hand" } else { "worker resumed by hand" });
        self.metrics.worker_paused(worker.name(), pause);
        self.apply(worker);
        true
    }

    fn transitioned(&self, worker: WorkerKind, t: Transition) {
        let (name, from, to) = (worker.name(), t.from.label(), t.to.label());
        match t.to {
            BreakerState::Open => tracing::warn!(worker = name, from, to, "circuit breaker opened: the worker takes no deliveries"),
            BreakerState::HalfOpen => tracing::info!(worker = name, from, to, "circuit breaker half-open: one probe delivery"),
            BreakerState::Closed => tracing::info!(worker = name, from, to, "circuit breaker closed: deliveries flow again"),
        }
        self.metrics.breaker_transition(name, t);
        self.apply(worker);
    }

    /// The transport feeds a worker nothing while it is paused by hand or its
    /// breaker is open, one delivery at a time while half-open, else in full.
    fn apply(&self, worker: WorkerKind) {
        if let Some(s) = self.workers.get(&worker) {
            let feed = match s.breaker.state() {
                _ if s.by_hand => Feed::Stopped,
                BreakerState::Open => Feed::Stopped,
                BreakerState::HalfOpen => Feed::Probe,
                BreakerState::Closed => Feed::Full,
            };
            self.source.set_feed(worker, feed);
        }
    }
}
