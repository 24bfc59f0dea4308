//! Each worker's circuit breaker and pause switch as figures: the
//! `blog_breaker_state` gauge (0 closed, 1 open, 2 half-open), the
//! `blog_breaker_transitions_total` counter by target state, the
//! `blog_worker_paused` gauge (1 paused by hand), and the same for `/actors`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::Serialize;

use crate::breaker::{BreakerState, Transition};
use crate::worker::Workers;

/// One worker's breaker, as `/actors` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BreakerFigures {
    pub state: BreakerState,
    /// Paused by hand (`POST /admin/workers/{name}/pause`) until resumed.
    pub paused: bool,
    /// Times the breaker opened since the start.
    pub opened: u64,
    /// State changes since the start.
    pub transitions: u64,
    /// Deliveries sent back to the queue at the same attempt (paused, or breaker
    /// open) since the start: `blog_actor_messages_total{outcome="postponed"}`.
    pub postponed: u64,
}

/// The breakers' series and figures; cheap to clone.
#[derive(Clone)]
pub(super) struct BreakerSeries {
    state: IntGaugeVec,
    transitions: IntCounterVec,
    paused: IntGaugeVec,
    figures: Arc<Mutex<BTreeMap<&'static str, BreakerFigures>>>,
}

impl BreakerSeries {
    pub(super) fn new(registry: &Registry, workers: &Workers) -> prometheus::Result<Self> {
        let state = IntGaugeVec::new(
            Opts::new("blog_breaker_state", "Each worker's circuit breaker: 0 closed, 1 open, 2 half-open"),
            &["actor"],
        )?;
        let transitions = IntCounterVec::new(
            Opts::new("blog_breaker_transitions_total", "Circuit breaker state changes, by the state entered"),
            &["actor", "to"],
        )?;
        let paused = IntGaugeVec::new(Opts::new("blog_worker_paused", "1 while a worker is paused by hand"), &["actor"])?;
        registry.register(Box::new(state.clone()))?;
        registry.register(Box::new(transitions.clone()))?;
        registry.register(Box::new(paused.clone()))?;
        let closed = BreakerFigures { state: BreakerState::Closed, paused: false, opened: 0, transitions: 0, postponed: 0 };
        for w in workers.iter() {
            state.with_label_values(&[w.name()]).set(0);
            paused.with_label_values(&[w.name()]).set(0);
            for to in [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen] {
                transitions.with_label_values(&[w.name(), to.label()]);
            }
        }
        let figures = workers.iter().map(|w| (w.name(), closed.clone())).collect();
        Ok(Self { state, transitions, paused, figures: Arc::new(Mutex::new(figures)) })
    }

    pub(super) fn transition(&self, worker: &'static str, t: Transition) {
        self.state.with_label_values(&[worker]).set(t.to.gauge());
        self.transitions.with_label_values(&[worker, t.to.label()]).inc();
        self.change(worker, |f| {
            f.state = t.to;
            f.transitions += 1;
            f.opened += u64::from(t.to == BreakerState::Open);
        });
    }

    pub(super) fn paused(&self, worker: &'static str, paused: bool) {
        self.paused.with_label_values(&[worker]).set(i64::from(paused));
        self.change(worker, |f| f.paused = paused);
    }

    pub(super) fn figures(&self, worker: &str) -> Option<BreakerFigures> {
        self.figures.lock().expect("breaker figures lock").get(worker).cloned()
    }

    fn change(&self, worker: &'static str, change: impl FnOnce(&mut BreakerFigures)) {
        if let Some(figures) = self.figures.lock().expect("breaker figures lock").get_mut(worker) {
            change(figures);
        }
    }
}
