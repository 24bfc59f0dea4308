//! A circuit breaker per worker: closed → open → half-open → closed.
//!
//! Only "the downstream is unavailable" failures count (SMTP refused, store
//! unreachable); a bad message never opens it. When `failures` of them fall within
//! `window`, the breaker opens: the worker takes no deliveries. After `cooldown` it
//! goes half-open and lets one probe delivery through; the probe's success closes
//! it, its failure opens it again. Pure state: the queue reader feeds it the clock
//! and the answers, and acts on the transitions it returns.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    /// Unavailable failures within `window` that open the breaker.
    pub failures: u32,
    /// How far back failures are counted.
    pub window: Duration,
    /// How long an open breaker waits before it lets one probe through.
    pub cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self { failures: 5, window: Duration::from_secs(30), cooldown: Duration::from_secs(15) }
    }
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Deliveries flow.
    Closed,
    /// The downstream is unavailable: no deliveries until the cool-down is over.
    Open,
    /// One probe delivery is tried; its answer closes or re-opens the breaker.
    HalfOpen,
}

impl BreakerState {
    /// The value of `blog_breaker_state`: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// A change of state, for the log, the metrics and the transport switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
}

/// One worker's breaker.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    state: BreakerState,
    /// When the recent unavailable failures happened (closed state only), oldest first.
    failures: VecDeque<Instant>,
    /// When it last opened: the cool-down runs from here.
    opened_at: Option<Instant>,
    /// Half-open: the probe is out; nothing else goes through until it answers.
    probing: bool,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self { settings, state: BreakerState::Closed, failures: VecDeque::new(), opened_at: None, probing: false }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    pub fn cooldown(&self) -> Duration {
        self.settings.cooldown
    }

    /// May one more delivery go to the worker now? Closed: yes; open: no; half-open:
    /// the first one only (the probe), until it answers.
    pub fn admit(&mut self) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => !std::mem::replace(&mut self.probing, true),
        }
    }

    /// The worker found its downstream unavailable.
    pub fn failed(&mut self, now: Instant) -> Option<Transition> {
        match self.state {
            BreakerState::Closed => {
                while self.failures.front().is_some_and(|&at| now.saturating_duration_since(at) > self.settings.window) {
                    self.failures.pop_front();
                }
                self.failures.push_back(now);
                let threshold = usize::try_from(self.settings.failures.max(1)).unwrap_or(usize::MAX);
                (self.failures.len() >= threshold).then(|| self.open(now))
            }
            BreakerState::HalfOpen => Some(self.open(now)),
            BreakerState::Open => None,
        }
    }

    /// The worker reached its downstream (it succeeded, or the message itself was refused).
    pub fn succeeded(&mut self) -> Option<Transition> {
        (self.state == BreakerState::HalfOpen).then(|| self.to(BreakerState::Closed))
    }

    /// The probe ended without telling either way (deferred, worker restarting): let another through.
    pub fn inconclusive(&mut self) {
        self.probing = false;
    }

    /// Open → half-open once the cool-down has passed; `None` before, or in another state.
    pub fn cool_down_over(&mut self, now: Instant) -> Option<Transition> {
        let over = self.opened_at.is_some_and(|at| now.saturating_duration_since(at) >= self.settings.cooldown);
        (self.state == BreakerState::Open && over).then(|| self.to(BreakerState::HalfOpen))
    }

    fn open(&mut self, now: Instant) -> Transition {
        self.opened_at = Some(now);
        self.to(BreakerState::Open)
    }

    fn to(&mut self, state: BreakerState) -> Transition {
        let from = std::mem::replace(&mut self.state, state);
        self.failures.clear();
        self.probing = false;
        Transition { from, to: state }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BreakerState::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn breaker() -> Breaker {
        Breaker::new(BreakerSettings { failures: 3, window: 10 * SECOND, cooldown: 5 * SECOND })
    }

    /// A breaker opened at `t0` whose cool-down is over and whose one probe is let through.
    fn probing() -> (Breaker, Instant) {
        let (mut b, t0) = (breaker(), Instant::now());
        for _ in 0..3 { b.failed(t0); }
        b.cool_down_over(t0 + 5 * SECOND);
        assert!(b.admit(), "the probe");
        (b, t0)
    }

    #[test]
    fn it_opens_once_the_failures_within_the_window_reach_the_threshold() {
        let (mut b, t0) = (breaker(), Instant::now());
        assert_eq!(b.failed(t0), None);
        assert_eq!(b.failed(t0 + SECOND), None);
        assert!(b.admit());
        assert_eq!(b.failed(t0 + 2 * SECOND), Some(Transition { from: Closed, to: Open }));
        assert!(!b.admit(), "an open breaker admits nothing");
        assert_eq!(b.failed(t0 + 3 * SECOND), None, "failures while open change nothing");
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let (mut b, t0) = (breaker(), Instant::now());
        b.failed(t0);
        b.failed(t0 + SECOND);
        assert_eq!(b.failed(t0 + 12 * SECOND), None, "the first two fell out of the window");
        assert_eq!(b.state(), Closed);
    }

    #[test]
    fn after_the_cool_down_one_probe_goes_through_and_its_success_closes_it() {
        let (mut b, t0) = (breaker(), Instant::now());
        for _ in 0..3 { b.failed(t0); }
        assert_eq!(b.cool_down_over(t0 + 4 * SECOND), None, "still cooling down");
        assert_eq!(b.cool_down_over(t0 + 5 * SECOND), Some(Transition { from: Open, to: HalfOpen }));
        assert!(b.admit(), "the probe");
        assert!(!b.admit(), "only one probe at a time");
        assert_eq!(b.succeeded(), Some(Transition { from: HalfOpen, to: Closed }));
        assert!(b.admit() && b.admit());
        assert_eq!(b.failed(t0 + 6 * SECOND), None, "the failures before it opened are forgotten");
    }

    #[test]
    fn a_failed_probe_opens_it_again_for_another_cool_down() {
        let (mut b, t0) = probing();
        assert_eq!(b.failed(t0 + 6 * SECOND), Some(Transition { from: HalfOpen, to: Open }));
        assert_eq!(b.cool_down_over(t0 + 10 * SECOND), None, "the cool-down runs from the re-opening");
        assert_eq!(b.cool_down_over(t0 + 11 * SECOND), Some(Transition { from: Open, to: HalfOpen }));
    }

    #[test]
    fn an_inconclusive_probe_lets_another_through() {
        let (mut b, _) = probing();
        b.inconclusive();
        assert!(b.admit());
        assert_eq!(b.state(), HalfOpen);
    }

    #[test]
    fn success_while_closed_or_open_changes_nothing() {
        let (mut b, t0) = (breaker(), Instant::now());
        assert_eq!(b.succeeded(), None);
        for _ in 0..3 { b.failed(t0); }
        assert_eq!(b.succeeded(), None, "a late answer from before it opened does not close it");
        assert_eq!(b.state(), Open);
    }

    #[test]
    fn the_gauge_values_are_the_documented_ones() {
        assert_eq!([Closed.gauge(), Open.gauge(), HalfOpen.gauge()], [0, 1, 2]);
    }
}
