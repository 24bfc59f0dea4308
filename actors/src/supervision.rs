//! What a worker does ([`Worker`]), the one supervised actor every worker runs
//! in ([`WorkerActor`]), and the
//! guard around each event: count, time, deadline, and a panic turned into a
//! failed attempt plus a restart by the actix `Supervisor`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::FutureExt;
use tracing::Instrument;

use crate::event::{Envelope, Event};
use crate::messages::{HandleEvent, HandlerError, Rebuild};
use crate::metrics::{ActorMetrics, ActorState};
use crate::ports::{RebuildReport, StoreError};
use crate::worker::{WorkerKind, WorkerSpec};

/// A worker's behaviour. The generic supervised actor ([`WorkerActor`]) gives
/// every worker the same guard,
/// panic → restart, deadline, claim release (by drop) and metrics.
pub trait Worker: Unpin + Sized + 'static {
    /// Who the worker is.
    const SPEC: &'static WorkerSpec;

    /// Handles one event of a type it subscribes to. Must be idempotent: a
    /// redelivery changes nothing. Whatever the future holds (a claim) must
    /// release itself when dropped, as the deadline or a panic may drop it.
    fn handle(&self, envelope: Arc<Envelope>, event: Event) -> impl Future<Output = Result<(), HandlerError>> + 'static;

    /// Recomputes the worker's state from the store, for `POST /admin/rebuild`;
    /// `None` for a worker with nothing to rebuild.
    fn rebuild(&self) -> Option<impl Future<Output = Result<RebuildReport, StoreError>> + 'static> {
        None::<std::future::Ready<Result<RebuildReport, StoreError>>>
    }

    /// Called each time the actor starts (and restarts), e.g. to set timers.
    fn started(&mut self, _ctx: &mut actix::Context<WorkerActor<Self>>) {}

    /// This worker as the registry names it.
    fn kind() -> WorkerKind {
        WorkerKind::of(Self::SPEC)
    }
}

/// How a guarded handler ended.
pub struct Guarded {
    pub result: Result<(), HandlerError>,
    /// The handler panicked: the actor must stop so its supervisor restarts it.
    pub panicked: bool,
}

/// Runs a handler's future under its deadline, catching a panic and recording time
/// and in-flight count. Its log lines carry the event's id and correlation id, and
/// its span is a child of `parent`, the reader's span of the delivery.
pub async fn guard<F>(
    actor: &'static str,
    metrics: ActorMetrics,
    envelope: Arc<Envelope>,
    deadline: Duration,
    parent: tracing::Span,
    work: F,
) -> Guarded
where
    F: Future<Output = Result<(), HandlerError>>,
{
    #[cfg(feature = "fault-hooks")]
    crate::fault_hooks::before_handling(actor, &envelope);
    let span = tracing::info_span!(
        parent: &parent,
        "handle",
        actor,
        event_id = %envelope.id,
        event_type = %envelope.event_type,
        correlation_id = envelope.correlation_id.as_deref().unwrap_or("-"),
    );
    guarded(actor, metrics, deadline, work).instrument(span).await
}

async fn guarded<F>(actor: &'static str, metrics: ActorMetrics, deadline: Duration, work: F) -> Guarded
where
    F: Future<Output = Result<(), HandlerError>>,
{
    metrics.mailbox(actor, -1);
    metrics.in_flight(actor, 1);
    let started = Instant::now();
    // On a panic or at the deadline the handler's future is dropped: the claims it
    // holds release themselves as they drop, so no other message waits on them.
    // A handler past its deadline is waiting on something downstream that does
    // not answer: an unavailable failure, which the worker's breaker counts.
    let outcome = match tokio::time::timeout(deadline, AssertUnwindSafe(work).catch_unwind()).await {
        Ok(outcome) => outcome,
        Err(_) => Ok(Err(HandlerError::Unavailable(format!(
            "{actor} ran past its {} s deadline (BLOG_HANDLER_TIMEOUT)",
            deadline.as_secs_f64()
        )))),
    };
    let took = started.elapsed();
    metrics.observe_handling(actor, took);
    metrics.in_flight(actor, -1);
    // Two decimals: enough to compare, short enough to read.
    let took_ms = (took.as_secs_f64() * 100_000.0).round() / 100.0;
    match outcome {
        Ok(result) => {
            // One line per event and worker, inside the span: it names the event and its correlation id.
            match &result {
                Ok(()) => tracing::info!(took_ms, "event handled"),
                Err(e) => {
                    let error = crate::redact::addresses_in(&e.to_string());
                    tracing::warn!(%error, took_ms, "event failed");
                    metrics.record_error(actor, &e.to_string());
                }
            }
            Guarded { result, panicked: false }
        }
        Err(panic) => panicked(actor, &metrics, &*panic),
    }
}

fn panicked(actor: &'static str, metrics: &ActorMetrics, panic: &(dyn std::any::Any + Send)) -> Guarded {
    let reason = format!("{actor} panicked: {}", panic_message(panic));
    tracing::error!(actor, %reason, "worker panicked; its supervisor restarts it");
    metrics.record_error(actor, &reason);
    Guarded { result: Err(HandlerError::Retryable(reason)), panicked: true }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// The actor every worker runs in: it sizes the mailbox, reports the state, runs
/// each event under [`guard`] and stops on a panic, so that its actix
/// `Supervisor` restarts it; the worker keeps its fields across restarts.
pub struct WorkerActor<W: Worker> {
    /// The worker's own state and handler.
    worker: W,
    metrics: ActorMetrics,
    /// How long a rebuild may run: it holds the actor (no event starts meanwhile),
    /// so one stuck on the store must end, or the worker stops for good.
    rebuild_deadline: Duration,
}

/// A rebuild's deadline unless the service sets one (`BLOG_REBUILD_TIMEOUT`).
pub const DEFAULT_REBUILD_DEADLINE: Duration = Duration::from_secs(100);

impl<W: Worker> WorkerActor<W> {
    pub fn new(worker: W, metrics: ActorMetrics) -> Self {
        Self { worker, metrics, rebuild_deadline: DEFAULT_REBUILD_DEADLINE }
    }

    /// The same actor with another rebuild deadline.
    pub fn with_rebuild_deadline(self, rebuild_deadline: Duration) -> Self {
        Self { rebuild_deadline, ..self }
    }

    /// The worker inside, for the extra messages a worker handles itself (e.g. a timer).
    pub fn worker(&self) -> &W {
        &self.worker
    }
}

impl<W: Worker> Actor for WorkerActor<W> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(W::SPEC.mailbox);
        self.metrics.set_state(W::SPEC.name, ActorState::Running);
        self.worker.started(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.metrics.set_state(W::SPEC.name, ActorState::Stopped);
    }
}

impl<W: Worker> Supervised for WorkerActor<W> {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!(actor = W::SPEC.name, "restarting after a failure");
        self.metrics.record_restart(W::SPEC.name);
    }
}

/// Handle one event under the guard; a panic stops the actor for its supervisor to restart.
impl<W: Worker> Handler<HandleEvent> for WorkerActor<W> {
    type Result = ResponseActFuture<Self, Result<(), HandlerError>>;

    fn handle(&mut self, msg: HandleEvent, _: &mut Context<Self>) -> Self::Result {
        let (name, metrics, envelope, deadline) = (W::SPEC.name, self.metrics.clone(), msg.envelope.clone(), msg.deadline);
        // The reader's span of the delivery: the handler's span is its child.
        let parent = msg.span;
        // Building the future runs worker code too: a panic there counts like one inside it.
        let work = std::panic::catch_unwind(AssertUnwindSafe(|| self.worker.handle(msg.envelope, msg.event)));
        let guarded = async move {
            match work {
                Ok(work) => guard(name, metrics, envelope, deadline, parent, work).await,
                Err(panic) => {
                    metrics.mailbox(name, -1);
                    panicked(name, &metrics, &*panic)
                }
            }
        };
        Box::pin(guarded.into_actor(self).map(|guarded, _, ctx| {
            if guarded.panicked {
                ctx.stop();
            }
            guarded.result
        }))
    }
}

/// Rebuild the worker's state from the store; no event starts while it runs.
impl<W: Worker> Handler<Rebuild> for WorkerActor<W> {
    type Result = AtomicResponse<Self, Option<Result<RebuildReport, StoreError>>>;

    fn handle(&mut self, _: Rebuild, _: &mut Context<Self>) -> Self::Result {
        let (name, deadline) = (W::SPEC.name, self.rebuild_deadline);
        let rebuild = self.worker.rebuild().map(|rebuild| async move {
            // Past the deadline the rebuild is dropped, which cancels its store call
            // (a transaction left open is aborted): it fails, and events flow again.
            let report = tokio::time::timeout(deadline, rebuild).await.unwrap_or_else(|elapsed| {
                let context = format!("{name} rebuild ran past its {} s deadline (BLOG_REBUILD_TIMEOUT)", deadline.as_secs_f64());
                Err(StoreError::unavailable(context, elapsed))
            });
            match &report {
                Ok(r) => tracing::info!(actor = name, posts = r.posts, tags = r.tags, took_ms = r.took_ms, "rebuilt"),
                Err(e) => tracing::error!(actor = name, error = %e, "rebuild failed"),
            }
            report
        });
        AtomicResponse::new(Box::pin(
            async move {
                match rebuild {
                    Some(rebuild) => Some(rebuild.await),
                    None => None,
                }
            }
            .into_actor(self),
        ))
    }
}
