//! Per-actor figures: Prometheus series for `/metrics`, and a snapshot for `/actors`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::Serialize;

/// The actors that report figures.
pub const ACTORS: [&str; 5] = ["queue_reader", "tag_aggregator", "emailer", "projector", "relay"];

/// How a message ended, as counted in `blog_actor_messages_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Retried,
    Parked,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Retried => "retried",
            Outcome::Parked => "parked",
        }
    }
}

/// Whether an actor is doing its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorState {
    Starting,
    Running,
    Restarting,
    Stopped,
}

/// One actor's figures, as `/actors` shows them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ActorSnapshot {
    pub name: String,
    pub state: ActorState,
    pub handled_ok: u64,
    pub retried: u64,
    pub parked: u64,
    pub restarts: u64,
    pub in_flight: i64,
    pub mailbox_depth: i64,
    pub handling_seconds_sum: f64,
    pub handling_count: u64,
    pub last_error: Option<String>,
}

/// Shared handle to every actor's figures; cheap to clone.
#[derive(Clone)]
pub struct ActorMetrics {
    messages: IntCounterVec,
    handling: HistogramVec,
    restarts: IntCounterVec,
    in_flight: IntGaugeVec,
    mailbox: IntGaugeVec,
    /// State and last error per actor: not numbers, so kept beside the series.
    status: Arc<Mutex<BTreeMap<&'static str, (ActorState, Option<String>)>>>,
}

impl ActorMetrics {
    /// Creates the series and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let messages = IntCounterVec::new(
            Opts::new("blog_actor_messages_total", "Messages handled by each actor, by outcome"),
            &["actor", "outcome"],
        )?;
        let handling = HistogramVec::new(
            HistogramOpts::new("blog_actor_handling_seconds", "Time an actor took to handle one message")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["actor"],
        )?;
        let restarts = IntCounterVec::new(
            Opts::new("blog_actor_restarts_total", "Times the supervisor restarted an actor"),
            &["actor"],
        )?;
        let in_flight = IntGaugeVec::new(
            Opts::new("blog_actor_in_flight", "Messages an actor is handling now"),
            &["actor"],
        )?;
        let mailbox = IntGaugeVec::new(
            Opts::new("blog_actor_mailbox_depth", "Messages sent to an actor and not yet started"),
            &["actor"],
        )?;
        registry.register(Box::new(messages.clone()))?;
        registry.register(Box::new(handling.clone()))?;
        registry.register(Box::new(restarts.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(mailbox.clone()))?;
        let status = ACTORS.iter().map(|a| (*a, (ActorState::Starting, None))).collect();
        let metrics = Self { messages, handling, restarts, in_flight, mailbox, status: Arc::new(Mutex::new(status)) };
        for actor in ACTORS {
            // Every series exists from the start, so a dashboard sees zeros rather than gaps.
            for outcome in [Outcome::Ok, Outcome::Retried, Outcome::Parked] {
                metrics.messages.with_label_values(&[actor, outcome.label()]);
            }
            metrics.restarts.with_label_values(&[actor]);
            metrics.in_flight.with_label_values(&[actor]);
            metrics.mailbox.with_label_values(&[actor]);
        }
        Ok(metrics)
    }

    pub fn record_outcome(&self, actor: &'static str, outcome: Outcome) {
        self.messages.with_label_values(&[actor, outcome.label()]).inc();
    }

    pub fn record_error(&self, actor: &'static str, error: &str) {
        if let Some(entry) = self.status.lock().expect("metrics lock").get_mut(actor) {
            entry.1 = Some(error.to_owned());
        }
    }

    pub fn observe_handling(&self, actor: &'static str, took: Duration) {
        self.handling.with_label_values(&[actor]).observe(took.as_secs_f64());
    }

    pub fn record_restart(&self, actor: &'static str) {
        self.restarts.with_label_values(&[actor]).inc();
        self.set_state(actor, ActorState::Restarting);
    }

    pub fn set_state(&self, actor: &'static str, state: ActorState) {
        self.status.lock().expect("metrics lock").entry(actor).or_insert((state, None)).0 = state;
    }

    pub fn in_flight(&self, actor: &'static str, delta: i64) {
        self.in_flight.with_label_values(&[actor]).add(delta);
    }

    pub fn mailbox(&self, actor: &'static str, delta: i64) {
        self.mailbox.with_label_values(&[actor]).add(delta);
    }

    /// Restarts so far, for tests and the dashboard.
    pub fn restarts(&self, actor: &str) -> u64 {
        self.restarts.with_label_values(&[actor]).get()
    }

    /// Every actor's figures now.
    pub fn snapshot(&self) -> Vec<ActorSnapshot> {
        let status = self.status.lock().expect("metrics lock").clone();
        status
            .into_iter()
            .map(|(name, (state, last_error))| {
                let count = |o: Outcome| self.messages.with_label_values(&[name, o.label()]).get();
                let hist = self.handling.with_label_values(&[name]);
                ActorSnapshot {
                    name: name.to_owned(),
                    state,
                    handled_ok: count(Outcome::Ok),
                    retried: count(Outcome::Retried),
                    parked: count(Outcome::Parked),
                    restarts: self.restarts.with_label_values(&[name]).get(),
                    in_flight: self.in_flight.with_label_values(&[name]).get(),
                    mailbox_depth: self.mailbox.with_label_values(&[name]).get(),
                    handling_seconds_sum: hist.get_sample_sum(),
                    handling_count: hist.get_sample_count(),
                    last_error,
                }
            })
            .collect()
    }
}
