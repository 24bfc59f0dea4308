//! The queue reader: takes deliveries from the transport, forwards each to its
//! worker, and settles it by the worker's answer — ack, delayed retry or park.
//! Each worker's circuit breaker and pause-by-hand ([`crate::steering`]) decide
//! whether a delivery goes to the worker now or back to its queue unspent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::breaker::{BreakerSettings, BreakerState, Transition};
use crate::delivery::{Delivery, DeliverySource, Verdict};
use crate::messages::{Drain, DrainReport, HandleEvent, SteerWorker};
use crate::metrics::{ActorMetrics, ActorState, BreakerFigures, Outcome};
use crate::retry::RetryPolicy;
use crate::steering::{Admission, Health, Steering};
use crate::verdicts::{self, Checked};
use crate::worker::WorkerKind;

const NAME: &str = "queue_reader";
/// How long to wait before asking a transport that refused to consume again.
const CONSUME_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Forwards deliveries to the workers; never handles an event itself.
pub struct QueueReader {
    /// The embedded queue or RabbitMQ.
    source: Arc<dyn DeliverySource>,
    /// Where each worker's deliveries go; valid across the worker's restarts.
    routes: HashMap<WorkerKind, Recipient<HandleEvent>>,
    flow: Flow,
    metrics: ActorMetrics,
    /// Cancelled to stop consuming.
    stop: CancellationToken,
    /// Deliveries forwarded and not yet settled.
    in_flight: usize,
    /// Set once draining began: late deliveries go back unhandled.
    draining: bool,
    /// Told when the last in-flight delivery is settled during a drain.
    drained: Option<oneshot::Sender<()>>,
    /// Each worker's breaker and pause-by-hand.
    steering: Steering,
    /// Deliveries waiting for a half-open breaker's probe to answer (at most the prefetch each).
    held: HashMap<WorkerKind, Vec<(InHand, Checked)>>,
}

/// How deliveries flow through the reader: its settings.
#[derive(Debug, Clone, Copy)]
pub struct Flow {
    pub retry: RetryPolicy,
    /// How long a worker may take over one delivery before the attempt counts as failed.
    pub handler_timeout: Duration,
    /// Unsettled deliveries per worker: the bound on memory and in-flight work.
    pub prefetch: u16,
}

impl QueueReader {
    pub fn new(source: Arc<dyn DeliverySource>, routes: HashMap<WorkerKind, Recipient<HandleEvent>>, flow: Flow, metrics: ActorMetrics) -> Self {
        let steering = Steering::new(routes.keys().copied(), BreakerSettings::default(), source.clone(), metrics.clone());
        Self {
            steering,
            held: HashMap::new(),
            source,
            routes,
            flow,
            metrics,
            stop: CancellationToken::new(),
            in_flight: 0,
            draining: false,
            drained: None,
        }
    }

    /// The circuit breakers' settings (the default otherwise).
    pub fn with_breaker(mut self, settings: BreakerSettings) -> Self {
        self.steering = Steering::new(self.routes.keys().copied(), settings, self.source.clone(), self.metrics.clone());
        self
    }

    fn start_consuming(&mut self, ctx: &mut Context<Self>) {
        let (source, stop, prefetch) = (self.source.clone(), self.stop.clone(), self.flow.prefetch);
        let workers: Vec<WorkerKind> = self.routes.keys().copied().collect();
        let consume = async move { source.consume(&workers, prefetch, stop).await };
        ctx.spawn(consume.into_actor(self).map(|consumed, act, ctx| match consumed {
            Ok(rx) => {
                act.metrics.set_state(NAME, ActorState::Running);
                ctx.add_stream(ReceiverStream::new(rx));
            }
            Err(e) if !act.draining => {
                tracing::error!(error = %e, "cannot consume yet; trying again");
                act.metrics.record_error(NAME, &e.to_string());
                ctx.run_later(CONSUME_RETRY_INTERVAL, |act, ctx| act.start_consuming(ctx));
            }
            Err(_) => {}
        }));
    }

    fn settled(&mut self) {
        self.in_flight -= 1;
        self.metrics.in_flight(NAME, -1);
        if self.in_flight == 0 {
            if let Some(tx) = self.drained.take() {
                let _ = tx.send(());
            }
        }
    }
}

impl Actor for QueueReader {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.start_consuming(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.stop.cancel();
        self.metrics.set_state(NAME, ActorState::Stopped);
    }
}

/// A delivery the reader holds, with what goes with it until it is settled.
struct InHand {
    delivery: Delivery,
    /// Counts it as unacked in the figures until dropped.
    unacked: crate::metrics::UnackedGuard,
    arrived: Instant,
    /// The consumer span: a child of the context the message carries, else a new trace.
    span: tracing::Span,
}

/// One delivery: check it, then forward, hold or postpone it by its worker's breaker.
impl StreamHandler<Delivery> for QueueReader {
    fn handle(&mut self, delivery: Delivery, ctx: &mut Context<Self>) {
        let unacked = self.metrics.delivery_arrived(delivery.worker, delivery.redelivered);
        if self.draining {
            ctx.spawn(settle(delivery, Verdict::Release).into_actor(self));
            return;
        }
        self.in_flight += 1;
        self.metrics.in_flight(NAME, 1);
        // Filled in once known, so the reader's own lines (retry, park) carry the request's id too.
        let span = tracing::info_span!(
            parent: None,
            "delivery",
            otel.kind = "consumer",
            worker = delivery.worker.name(),
            attempt = delivery.attempt,
            event_id = tracing::field::Empty,
            correlation_id = delivery.correlation_id.as_deref(),
        );
        if let Some(trace) = &delivery.trace {
            trace.adopt_as_parent(&span);
        }
        let hand = InHand { delivery, unacked, arrived: Instant::now(), span };
        // A bad message is parked at once, whatever the worker's breaker says.
        let checked = hand.span.in_scope(|| verdicts::examine(&hand.delivery));
        match checked {
            Err(verdict) => self.finish(hand, verdicts::counted(verdict), ctx),
            Ok(event) => self.admit(hand, event, ctx),
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        tracing::info!("delivery stream ended");
        // Unlike the default, the reader stays up: it still answers Drain and shows its figures.
    }
}

impl QueueReader {
    fn admit(&mut self, hand: InHand, event: Checked, ctx: &mut Context<Self>) {
        let worker = hand.delivery.worker;
        match self.steering.admit(worker) {
            Admission::Forward => self.forward(hand, event, ctx),
            Admission::Hold => self.held.entry(worker).or_default().push((hand, event)),
            Admission::Postpone => {
                let verdict = verdicts::postpone(&hand.delivery, self.flow.retry, "the worker is paused (breaker open or by hand)");
                self.finish(hand, verdict, ctx);
            }
        }
    }

    /// Hands the event to its worker; the answer is judged back in the actor, beside the breaker.
    fn forward(&mut self, hand: InHand, (envelope, event): Checked, ctx: &mut Context<Self>) {
        let route = self.routes.get(&hand.delivery.worker).cloned();
        let (deadline, metrics, span) = (self.flow.handler_timeout, self.metrics.clone(), hand.span.clone());
        let work = async move {
            let answer = verdicts::ask(&hand.delivery, envelope, event, route, deadline, &metrics).await;
            (hand, answer)
        };
        ctx.spawn(work.instrument(span).into_actor(self).map(|(hand, answer), act, ctx| {
            let worker = hand.delivery.worker;
            let health = answer.as_ref().map_or(Health::Unknown, Health::of);
            match act.steering.answered(worker, health) {
                Some(transition) => act.transitioned(worker, transition, ctx),
                // A probe that told nothing: one of those held becomes the next.
                None if health == Health::Unknown => act.release_held(worker, ctx),
                None => {}
            }
            let flowing = act.steering.flowing(worker);
            let verdict = hand.span.clone().in_scope(|| verdicts::on_answer(&hand.delivery, answer, act.flow.retry, flowing));
            act.finish(hand, verdict, ctx);
        }));
    }

    /// Settles the delivery by the verdict, counts it, and frees its slot.
    fn finish(&mut self, hand: InHand, (verdict, outcome): (Verdict, Outcome), ctx: &mut Context<Self>) {
        let metrics = self.metrics.clone();
        let InHand { delivery, unacked, arrived, span } = hand;
        let work = async move {
            let worker = delivery.worker.name();
            metrics.record_outcome(worker, outcome);
            metrics.record_outcome(NAME, outcome);
            settle(delivery, verdict).await;
            // The reader's handling time: from arrival to settled, the worker's time included.
            metrics.observe_handling(NAME, arrived.elapsed());
            drop(unacked);
        };
        ctx.spawn(work.instrument(span).into_actor(self).map(|(), act, _| act.settled()));
    }

    /// Acts on a breaker's change: time the cool-down, and let the held deliveries go.
    fn transitioned(&mut self, worker: WorkerKind, transition: Transition, ctx: &mut Context<Self>) {
        match transition.to {
            BreakerState::Open => {
                if let Some(cooldown) = self.steering.cooldown(worker) {
                    ctx.run_later(cooldown, move |act, ctx| {
                        if let Some(transition) = act.steering.cool_down_over(worker) {
                            act.transitioned(worker, transition, ctx);
                        }
                    });
                }
                self.release_held(worker, ctx);
            }
            BreakerState::Closed => self.release_held(worker, ctx),
            BreakerState::HalfOpen => {}
        }
    }

    /// The deliveries held during a probe go on by the worker's state now.
    fn release_held(&mut self, worker: WorkerKind, ctx: &mut Context<Self>) {
        for (hand, event) in self.held.remove(&worker).unwrap_or_default() {
            self.admit(hand, event, ctx);
        }
    }
}

async fn settle(delivery: Delivery, verdict: Verdict) {
    let worker = delivery.worker;
    if let Err(e) = delivery.settler.settle(verdict).await {
        // Unsettled means redelivered later; the handlers are idempotent.
        tracing::warn!(%worker, error = %e, "could not settle a delivery; it will come again");
    }
}

/// Stop consuming and wait for in-flight deliveries, up to the deadline.
impl Handler<Drain> for QueueReader {
    type Result = ResponseActFuture<Self, DrainReport>;

    fn handle(&mut self, msg: Drain, ctx: &mut Context<Self>) -> Self::Result {
        self.draining = true;
        self.stop.cancel();
        for (_, held) in std::mem::take(&mut self.held) {
            for (hand, _) in held {
                let verdict = verdicts::postpone(&hand.delivery, self.flow.retry, "shutting down during a breaker probe");
                self.finish(hand, verdict, ctx);
            }
        }
        let (tx, rx) = oneshot::channel();
        if self.in_flight == 0 {
            let _ = tx.send(());
        } else {
            self.drained = Some(tx);
        }
        tracing::info!(in_flight = self.in_flight, "draining the queue reader");
        Box::pin(async move { tokio::time::timeout(msg.timeout, rx).await }.into_actor(self).map(
            |_, act, _| {
                act.metrics.set_state(NAME, ActorState::Stopped);
                DrainReport { abandoned: act.in_flight }
            },
        ))
    }
}

/// Pause or resume a worker by hand; it stays paused until resumed, whatever its breaker does.
impl Handler<SteerWorker> for QueueReader {
    type Result = Option<BreakerFigures>;

    fn handle(&mut self, msg: SteerWorker, ctx: &mut Context<Self>) -> Self::Result {
        let worker = self.routes.keys().copied().find(|w| w.name() == msg.worker)?;
        if !self.steering.by_hand(worker, msg.pause) {
            return None;
        }
        if msg.pause {
            // Those held for a probe go back too: a paused worker takes nothing.
            self.release_held(worker, ctx);
        }
        self.metrics.breaker(worker.name())
    }
}
