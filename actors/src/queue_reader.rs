//! The queue reader: takes deliveries from the transport, forwards each to its
//! worker, and settles it by the worker's answer — ack, delayed retry or park.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::delivery::{Delivery, DeliverySource, Verdict};
use crate::event::Envelope;
use crate::messages::{Drain, DrainReport, HandleEvent, HandlerError};
use crate::metrics::{ActorMetrics, ActorState, Outcome};
use crate::retry::RetryPolicy;
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
    retry: RetryPolicy,
    /// How long a worker may take over one delivery before the attempt counts as failed.
    handler_timeout: Duration,
    /// Unsettled deliveries per worker: the bound on memory and in-flight work.
    prefetch: u16,
    metrics: ActorMetrics,
    /// Cancelled to stop consuming.
    stop: CancellationToken,
    /// Deliveries forwarded and not yet settled.
    in_flight: usize,
    /// Set once draining began: late deliveries go back unhandled.
    draining: bool,
    /// Told when the last in-flight delivery is settled during a drain.
    drained: Option<oneshot::Sender<()>>,
}

impl QueueReader {
    pub fn new(
        source: Arc<dyn DeliverySource>,
        routes: HashMap<WorkerKind, Recipient<HandleEvent>>,
        retry: RetryPolicy,
        handler_timeout: Duration,
        prefetch: u16,
        metrics: ActorMetrics,
    ) -> Self {
        Self {
            source,
            routes,
            retry,
            handler_timeout,
            prefetch,
            metrics,
            stop: CancellationToken::new(),
            in_flight: 0,
            draining: false,
            drained: None,
        }
    }

    fn start_consuming(&mut self, ctx: &mut Context<Self>) {
        let (source, stop, prefetch) = (self.source.clone(), self.stop.clone(), self.prefetch);
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

/// One delivery: forward, then settle by the answer.
impl StreamHandler<Delivery> for QueueReader {
    fn handle(&mut self, delivery: Delivery, ctx: &mut Context<Self>) {
        let unacked = self.metrics.delivery_arrived(delivery.worker, delivery.redelivered);
        if self.draining {
            ctx.spawn(settle(delivery, Verdict::Release).into_actor(self));
            return;
        }
        self.in_flight += 1;
        self.metrics.in_flight(NAME, 1);
        let route = self.routes.get(&delivery.worker).cloned();
        let (retry, deadline, metrics) = (self.retry, self.handler_timeout, self.metrics.clone());
        // Filled in once known, so the reader's own lines (retry, park) carry the request's id too.
        // The consumer span: a child of the context the message carries, else a new trace.
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
        let arrived = Instant::now();
        let work = async move {
            let verdict = judge(&delivery, route, retry, deadline, &metrics).await;
            let worker = delivery.worker.name();
            let outcome = match &verdict {
                Verdict::Ack => Outcome::Ok,
                Verdict::Retry { .. } => Outcome::Retried,
                Verdict::Park { .. } | Verdict::Release => Outcome::Parked,
            };
            metrics.record_outcome(worker, outcome);
            metrics.record_outcome(NAME, outcome);
            settle(delivery, verdict).await;
            // The reader's handling time: from arrival to settled, the worker's time included.
            metrics.observe_handling(NAME, arrived.elapsed());
            drop(unacked);
        };
        ctx.spawn(work.instrument(span).into_actor(self).map(|(), act, _| act.settled()));
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        tracing::info!("delivery stream ended");
        // Unlike the default, the reader stays up: it still answers Drain and shows its figures.
    }
}

/// Decides what becomes of a delivery: decode, hand to the worker, read the answer.
async fn judge(
    delivery: &Delivery,
    route: Option<Recipient<HandleEvent>>,
    retry: RetryPolicy,
    deadline: Duration,
    metrics: &ActorMetrics,
) -> Verdict {
    let park_now = |reason: String| {
        tracing::warn!(reason = %crate::redact::addresses_in(&reason), "parking an invalid message");
        Verdict::Park { reason, attempts: delivery.attempt }
    };
    let envelope = match Envelope::decode(&delivery.body) {
        Ok(envelope) => Arc::new(envelope),
        Err(e) => return park_now(e.to_string()),
    };
    let span = tracing::Span::current();
    span.record("event_id", tracing::field::display(envelope.id));
    // Recording a field twice would print it twice; the property, when set, is the same id.
    if let (None, Some(correlation_id)) = (&delivery.correlation_id, &envelope.correlation_id) {
        span.record("correlation_id", correlation_id.as_str());
    }
    // Checked here once for every worker: a handler only sees the types it subscribed to.
    if !delivery.worker.takes(&envelope.event_type) {
        return park_now(format!("{} does not take {:?} events", delivery.worker, envelope.event_type));
    }
    let event = match envelope.event() {
        Ok(event) => event,
        Err(e) => return park_now(e.to_string()),
    };
    let Some(route) = route else {
        return park_now(format!("no worker {} in this process", delivery.worker));
    };
    metrics.mailbox(delivery.worker.name(), 1);
    let attempt = delivery.attempt;
    let answer = route.send(HandleEvent { envelope: envelope.clone(), event, attempt, deadline, span: span.clone() }).await;
    let error = match answer {
        Ok(Ok(())) => return Verdict::Ack,
        Ok(Err(HandlerError::Permanent(reason))) => {
            return park_now(reason);
        }
        Ok(Err(HandlerError::Deferred(reason))) => {
            tracing::info!(event_id = %envelope.id, %reason, "deferred");
            return Verdict::Retry { delay: retry.delay_after(1), next_attempt: attempt, reason };
        }
        Ok(Err(HandlerError::Retryable(reason))) => reason,
        Err(mailbox) => {
            metrics.mailbox(delivery.worker.name(), -1);
            format!("worker unreachable: {mailbox}")
        }
    };
    if attempt >= retry.max_attempts {
        let reason = format!("gave up after {attempt} attempts: {error}");
        tracing::warn!(event_id = %envelope.id, reason = %crate::redact::addresses_in(&reason), "parking a message");
        return Verdict::Park { reason, attempts: attempt };
    }
    let delay = retry.delay_after(attempt);
    tracing::info!(event_id = %envelope.id, error = %crate::redact::addresses_in(&error), ?delay, "will retry");
    Verdict::Retry { delay, next_attempt: attempt + 1, reason: error }
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

    fn handle(&mut self, msg: Drain, _: &mut Context<Self>) -> Self::Result {
        self.draining = true;
        self.stop.cancel();
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
