//! Per-actor figures: Prometheus series for `/metrics`, and a snapshot for `/actors`.
//!
//! - [`history`]: the last minutes in time slots, for the dashboard's charts.
//! - [`unacked`]: the queue reader's unsettled deliveries and the age of the oldest.
//! - [`breaker`]: each worker's circuit breaker and pause switch.

mod breaker;
mod history;
mod unacked;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::Serialize;

pub use breaker::BreakerFigures;
pub use history::{ActorHistory, SLOT as HISTORY_SLOT, SLOTS as HISTORY_SLOTS};
pub use unacked::UnackedGuard;

use breaker::BreakerSeries;
use history::History;
use unacked::{OldestUnacked, SharedUnacked};

use crate::worker::{WorkerKind, Workers};

/// The queue reader's name in the figures.
pub const QUEUE_READER: &str = "queue_reader";
/// The outbox relay's name in the figures.
pub const RELAY: &str = "relay";
const STATES: [ActorState; 4] = [ActorState::Starting, ActorState::Running, ActorState::Restarting, ActorState::Stopped];

/// How a message ended, as counted in `blog_actor_messages_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Retried,
    Parked,
    /// Sent back to the queue at the same attempt: the worker is paused or its breaker open.
    Postponed,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Retried => "retried",
            Outcome::Parked => "parked",
            Outcome::Postponed => "postponed",
        }
    }
}

/// Whether an actor is doing its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActorState {
    Starting,
    Running,
    Restarting,
    Stopped,
}

impl ActorState {
    pub fn label(self) -> &'static str {
        match self {
            ActorState::Starting => "starting",
            ActorState::Running => "running",
            ActorState::Restarting => "restarting",
            ActorState::Stopped => "stopped",
        }
    }
}

/// What part an actor plays in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActorRole {
    /// Publishes the outbox to the transport.
    Relay,
    /// Takes deliveries and settles them by the workers' answers.
    Reader,
    /// A registered worker.
    Worker,
}

/// One actor's figures, as `/actors` shows them.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActorSnapshot {
    pub name: String,
    pub role: ActorRole,
    pub state: ActorState,
    /// Messages handled successfully (for the relay: entries published).
    pub handled_ok: u64,
    /// Messages that failed and were scheduled for another attempt.
    pub retried: u64,
    /// Messages given up on and moved to the parking lot.
    pub parked: u64,
    pub restarts: u64,
    pub in_flight: i64,
    /// Messages sent to the actor and not yet started.
    pub mailbox_depth: i64,
    pub handling_seconds_sum: f64,
    pub handling_count: u64,
    pub last_error: Option<String>,
    /// Work waits for it but it settled nothing for `BLOG_STALL_AFTER` (see [`crate::stall_watch`]).
    pub stalled: bool,
    /// The queue reader's delivery figures; absent for the other actors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader: Option<ReaderFigures>,
    /// A worker's circuit breaker and pause switch; absent for the other actors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerFigures>,
    pub history: ActorHistory,
}

/// What the queue reader received from the transport.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReaderFigures {
    /// Deliveries received, first ones and redeliveries.
    pub deliveries: u64,
    /// Deliveries the transport had handed out before without a verdict.
    pub redeliveries: u64,
    /// Age of the oldest delivery held unsettled now; 0 when none.
    pub oldest_unacked_seconds: f64,
}

/// What is not a number: kept beside the series.
struct Status {
    state: ActorState,
    last_error: Option<String>,
    stalled: bool,
    history: History,
}

/// Shared handle to every actor's figures; cheap to clone.
#[derive(Clone)]
pub struct ActorMetrics {
    messages: IntCounterVec,
    handling: HistogramVec,
    restarts: IntCounterVec,
    in_flight: IntGaugeVec,
    mailbox: IntGaugeVec,
    /// 1 for the state each actor is in, 0 for the others.
    state: IntGaugeVec,
    deliveries: IntCounterVec,
    redeliveries: IntCounterVec,
    /// 1 while a worker is stalled (see [`crate::stall_watch`]).
    stalled: IntGaugeVec,
    unacked: SharedUnacked,
    breakers: BreakerSeries,
    /// Every actor in the order work flows: the relay, the reader, then the workers as registered.
    actors: Arc<[(&'static str, ActorRole)]>,
    /// The registered workers, whose queues the reader's figures cover.
    workers: Workers,
    status: Arc<Mutex<BTreeMap<&'static str, Status>>>,
    /// Slot 0 of every history.
    started: Instant,
}

impl ActorMetrics {
    /// Creates the series of the reader, the relay and every worker, and registers them in `registry`.
    pub fn new(registry: &Registry, workers: &Workers) -> prometheus::Result<Self> {
        let actor = &["actor"];
        let worker = &["worker"];
        let messages = IntCounterVec::new(
            Opts::new("blog_actor_messages_total", "Messages handled by each actor, by outcome (ok, retried, parked, postponed)"),
            &["actor", "outcome"],
        )?;
        let handling = HistogramVec::new(
            HistogramOpts::new("blog_actor_handling_seconds", "Time an actor took to handle one message")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            actor,
        )?;
        let restarts = IntCounterVec::new(Opts::new("blog_actor_restarts_total", "Times the supervisor restarted an actor"), actor)?;
        let in_flight = IntGaugeVec::new(Opts::new("blog_actor_in_flight", "Messages an actor is handling now"), actor)?;
        let mailbox = IntGaugeVec::new(Opts::new("blog_actor_mailbox_depth", "Messages sent to an actor and not yet started"), actor)?;
        let state = IntGaugeVec::new(
            Opts::new("blog_actor_state", "1 for the state an actor is in (starting, running, restarting, stopped), else 0"),
            &["actor", "state"],
        )?;
        let deliveries = IntCounterVec::new(
            Opts::new("blog_queue_reader_deliveries_total", "Deliveries the queue reader received, per worker queue"),
            worker,
        )?;
        let redeliveries = IntCounterVec::new(
            Opts::new("blog_queue_reader_redeliveries_total", "Deliveries received again after an earlier one went unsettled"),
            worker,
        )?;
        let stalled = IntGaugeVec::new(
            Opts::new("blog_worker_stalled", "1 while a worker has work waiting and settled nothing for BLOG_STALL_AFTER, else 0"),
            actor,
        )?;
        let unacked = SharedUnacked::default();
        registry.register(Box::new(stalled.clone()))?;
        let breakers = BreakerSeries::new(registry, workers)?;
        registry.register(Box::new(messages.clone()))?;
        registry.register(Box::new(handling.clone()))?;
        registry.register(Box::new(restarts.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(mailbox.clone()))?;
        registry.register(Box::new(state.clone()))?;
        registry.register(Box::new(deliveries.clone()))?;
        registry.register(Box::new(redeliveries.clone()))?;
        registry.register(Box::new(OldestUnacked::new(unacked.clone(), workers.clone())?))?;
        let started = Instant::now();
        let actors: Arc<[(&'static str, ActorRole)]> = [(RELAY, ActorRole::Relay), (QUEUE_READER, ActorRole::Reader)]
            .into_iter()
            .chain(workers.iter().map(|w| (w.name(), ActorRole::Worker)))
            .collect();
        let status = actors
            .iter()
            .map(|(a, _)| (*a, Status { state: ActorState::Starting, last_error: None, stalled: false, history: History::new(started) }))
            .collect();
        let metrics = Self {
            messages,
            handling,
            restarts,
            in_flight,
            mailbox,
            state,
            deliveries,
            redeliveries,
            stalled,
            unacked,
            breakers,
            actors: actors.clone(),
            workers: workers.clone(),
            status: Arc::new(Mutex::new(status)),
            started,
        };
        // Every series exists from the start, so a dashboard sees zeros rather than gaps.
        for &(actor, _) in actors.iter() {
            for outcome in [Outcome::Ok, Outcome::Retried, Outcome::Parked, Outcome::Postponed] {
                metrics.messages.with_label_values(&[actor, outcome.label()]);
            }
            metrics.handling.with_label_values(&[actor]);
            metrics.restarts.with_label_values(&[actor]);
            metrics.in_flight.with_label_values(&[actor]);
            metrics.mailbox.with_label_values(&[actor]);
            metrics.show_state(actor, ActorState::Starting);
        }
        for worker in workers.iter() {
            metrics.stalled.with_label_values(&[worker.name()]);
            metrics.deliveries.with_label_values(&[worker.name()]);
            metrics.redeliveries.with_label_values(&[worker.name()]);
        }
        Ok(metrics)
    }

    pub fn record_outcome(&self, actor: &'static str, outcome: Outcome) {
        self.messages.with_label_values(&[actor, outcome.label()]).inc();
        self.with_status(actor, |s, now| match outcome {
            Outcome::Ok => s.history.add_ok(now),
            Outcome::Retried | Outcome::Parked => s.history.add_failed(now),
            // Not a failure of the message: nothing was tried.
            Outcome::Postponed => {}
        });
    }

    /// Keeps the actor's last error, without the mail addresses it may quote.
    pub fn record_error(&self, actor: &'static str, error: &str) {
        self.with_status(actor, |s, _| s.last_error = Some(crate::redact::addresses_in(error)));
    }

    pub fn observe_handling(&self, actor: &'static str, took: Duration) {
        self.handling.with_label_values(&[actor]).observe(took.as_secs_f64());
    }

    pub fn record_restart(&self, actor: &'static str) {
        self.restarts.with_label_values(&[actor]).inc();
        self.with_status(actor, |s, now| s.history.add_restart(now));
        self.set_state(actor, ActorState::Restarting);
    }

    pub fn set_state(&self, actor: &'static str, state: ActorState) {
        self.status
            .lock()
            .expect("metrics lock")
            .entry(actor)
            .or_insert_with(|| Status { state, last_error: None, stalled: false, history: History::new(self.started) })
            .state = state;
        self.show_state(actor, state);
    }

    fn show_state(&self, actor: &str, current: ActorState) {
        for state in STATES {
            self.state.with_label_values(&[actor, state.label()]).set(i64::from(state == current));
        }
    }

    pub fn in_flight(&self, actor: &'static str, delta: i64) {
        self.in_flight.with_label_values(&[actor]).add(delta);
    }

    pub fn mailbox(&self, actor: &'static str, delta: i64) {
        self.mailbox.with_label_values(&[actor]).add(delta);
    }

    /// Every actor's name, in the order work flows through them.
    pub fn actor_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.actors.iter().map(|(name, _)| *name)
    }

    /// A delivery reached the queue reader. Counted, and held as unacked until the guard drops.
    pub fn delivery_arrived(&self, worker: WorkerKind, redelivered: bool) -> UnackedGuard {
        self.deliveries.with_label_values(&[worker.name()]).inc();
        if redelivered {
            self.redeliveries.with_label_values(&[worker.name()]).inc();
        }
        unacked::track(&self.unacked, worker.name())
    }

    /// A worker's circuit breaker changed state.
    pub fn breaker_transition(&self, worker: &'static str, transition: crate::breaker::Transition) {
        self.breakers.transition(worker, transition);
    }

    /// A worker was paused or resumed by hand.
    pub fn worker_paused(&self, worker: &'static str, paused: bool) {
        self.breakers.paused(worker, paused);
    }

    /// A worker's breaker figures; `None` for an actor that is not a worker.
    pub fn breaker(&self, worker: &str) -> Option<BreakerFigures> {
        self.breakers.figures(worker)
    }

    /// A backlog read now (outbox, queue, mailbox), remembered for the actor's history.
    pub fn observe_backlog(&self, actor: &'static str, backlog: u64) {
        self.with_status(actor, |s, now| s.history.observe_backlog(now, backlog));
    }

    /// Messages waiting in `actor`'s mailbox now.
    pub fn mailbox_depth(&self, actor: &str) -> i64 {
        self.mailbox.with_label_values(&[actor]).get()
    }

    /// Deliveries of `worker` the reader holds unsettled now (in its mailbox or being handled).
    pub fn held(&self, worker: &str) -> usize {
        self.unacked.lock().expect("unacked lock").count(worker)
    }

    /// Messages `actor` is done with for good: handled, or parked.
    pub fn settled_for_good(&self, actor: &str) -> u64 {
        [Outcome::Ok, Outcome::Parked].iter().map(|o| self.messages.with_label_values(&[actor, o.label()]).get()).sum()
    }

    /// Marks `actor` stalled or not, in `/actors` and `blog_worker_stalled`.
    pub fn set_stalled(&self, actor: &'static str, stalled: bool) {
        self.with_status(actor, |s, _| s.stalled = stalled);
        self.stalled.with_label_values(&[actor]).set(i64::from(stalled));
    }

    /// The workers stalled now, in registration order.
    pub fn stalled_workers(&self) -> Vec<&'static str> {
        let status = self.status.lock().expect("metrics lock");
        self.workers.iter().map(|w| w.name()).filter(|name| status.get(name).is_some_and(|s| s.stalled)).collect()
    }

    /// Restarts so far, for tests and the dashboard.
    pub fn restarts(&self, actor: &str) -> u64 {
        self.restarts.with_label_values(&[actor]).get()
    }

    fn with_status(&self, actor: &'static str, change: impl FnOnce(&mut Status, Instant)) {
        if let Some(status) = self.status.lock().expect("metrics lock").get_mut(actor) {
            change(status, Instant::now());
        }
    }

    fn reader_figures(&self) -> ReaderFigures {
        let sum = |series: &IntCounterVec| self.workers.iter().map(|w| series.with_label_values(&[w.name()]).get()).sum();
        let now = Instant::now();
        let held = self.unacked.lock().expect("unacked lock");
        let oldest = self.workers.iter().map(|w| held.oldest_age_seconds(w.name(), now)).fold(0.0, f64::max);
        ReaderFigures { deliveries: sum(&self.deliveries), redeliveries: sum(&self.redeliveries), oldest_unacked_seconds: oldest }
    }

    /// Every actor's figures now, in the order work flows through them.
    pub fn snapshot(&self) -> Vec<ActorSnapshot> {
        let now = Instant::now();
        let status = self.status.lock().expect("metrics lock");
        self.actors
            .iter()
            .filter_map(|&(name, role)| {
                let s = status.get(name)?;
                let count = |o: Outcome| self.messages.with_label_values(&[name, o.label()]).get();
                let hist = self.handling.with_label_values(&[name]);
                Some(ActorSnapshot {
                    name: name.to_owned(),
                    role,
                    state: s.state,
                    handled_ok: count(Outcome::Ok),
                    retried: count(Outcome::Retried),
                    parked: count(Outcome::Parked),
                    restarts: self.restarts.with_label_values(&[name]).get(),
                    in_flight: self.in_flight.with_label_values(&[name]).get(),
                    mailbox_depth: self.mailbox.with_label_values(&[name]).get(),
                    handling_seconds_sum: hist.get_sample_sum(),
                    handling_count: hist.get_sample_count(),
                    last_error: s.last_error.clone(),
                    stalled: s.stalled,
                    reader: (role == ActorRole::Reader).then(|| self.reader_figures()),
                    breaker: self.breakers.figures(name).map(|figures| BreakerFigures { postponed: count(Outcome::Postponed), ..figures }),
                    history: s.history.series(now),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::WorkerSpec;

    fn text(registry: &Registry) -> String {
        prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap()
    }

    static EMAILER: WorkerSpec = WorkerSpec { name: "emailer", event_types: &["order.fulfilled"], mailbox: 8 };
    static PROJECTOR: WorkerSpec = WorkerSpec { name: "projector", event_types: &["post.created"], mailbox: 8 };

    fn metrics(registry: &Registry) -> ActorMetrics {
        let workers = Workers::new([WorkerKind::of(&EMAILER), WorkerKind::of(&PROJECTOR)]).unwrap();
        ActorMetrics::new(registry, &workers).unwrap()
    }

    #[test]
    fn every_registered_worker_is_shown_after_the_relay_and_the_reader() {
        let names: Vec<String> = metrics(&Registry::new()).snapshot().into_iter().map(|a| a.name).collect();
        assert_eq!(names, ["relay", "queue_reader", "emailer", "projector"]);
    }

    #[test]
    fn deliveries_redeliveries_and_unacked_age_are_exported() {
        let registry = Registry::new();
        let m = metrics(&registry);
        let held = m.delivery_arrived(WorkerKind::of(&EMAILER), false);
        drop(m.delivery_arrived(WorkerKind::of(&EMAILER), true));
        let out = text(&registry);
        assert!(out.contains("blog_queue_reader_deliveries_total{worker=\"emailer\"} 2"), "{out}");
        assert!(out.contains("blog_queue_reader_redeliveries_total{worker=\"emailer\"} 1"), "{out}");
        assert!(out.contains("blog_queue_reader_oldest_unacked_seconds{worker=\"projector\"} 0\n"), "{out}");
        let reader = m.snapshot().into_iter().find(|a| a.name == "queue_reader").unwrap().reader.unwrap();
        assert_eq!((reader.deliveries, reader.redeliveries), (2, 1));
        drop(held);
        assert_eq!(m.snapshot()[0].reader, None, "only the queue reader has reader figures");
        assert_eq!(m.snapshot()[2].reader, None, "only the queue reader has reader figures");
    }

    #[test]
    fn a_stalled_worker_is_marked_in_its_gauge_and_its_snapshot_until_it_recovers() {
        let registry = Registry::new();
        let m = metrics(&registry);
        assert!(text(&registry).contains("blog_worker_stalled{actor=\"projector\"} 0"));
        m.set_stalled("projector", true);
        assert!(text(&registry).contains("blog_worker_stalled{actor=\"projector\"} 1"));
        assert_eq!(m.stalled_workers(), ["projector"]);
        assert!(m.snapshot().into_iter().find(|a| a.name == "projector").unwrap().stalled);
        m.set_stalled("projector", false);
        assert!(text(&registry).contains("blog_worker_stalled{actor=\"projector\"} 0"));
        assert!(m.stalled_workers().is_empty());
    }

    #[test]
    fn the_state_gauge_marks_exactly_the_current_state() {
        let registry = Registry::new();
        let m = metrics(&registry);
        m.record_restart("projector");
        let out = text(&registry);
        assert!(out.contains("blog_actor_state{actor=\"projector\",state=\"restarting\"} 1"), "{out}");
        assert!(out.contains("blog_actor_state{actor=\"projector\",state=\"starting\"} 0"), "{out}");
        let projector = m.snapshot().into_iter().find(|a| a.name == "projector").unwrap();
        assert_eq!((projector.state, projector.restarts), (ActorState::Restarting, 1));
    }
}
