//! What every supervised worker does around its handler: count, time, and turn a
//! panic into a failed attempt plus a restart by the actix `Supervisor`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tracing::Instrument;

use crate::event::Envelope;

use crate::messages::HandlerError;
use crate::metrics::ActorMetrics;

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
    envelope: std::sync::Arc<Envelope>,
    deadline: Duration,
    parent: tracing::Span,
    work: F,
) -> Guarded
where
    F: Future<Output = Result<(), HandlerError>>,
{
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
    let outcome = match tokio::time::timeout(deadline, AssertUnwindSafe(work).catch_unwind()).await {
        Ok(outcome) => outcome,
        Err(_) => Ok(Err(HandlerError::Retryable(format!(
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
        Err(panic) => {
            let reason = format!("{actor} panicked: {}", panic_message(&*panic));
            tracing::error!(actor, %reason, "worker panicked; its supervisor restarts it");
            metrics.record_error(actor, &reason);
            Guarded { result: Err(HandlerError::Retryable(reason)), panicked: true }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Implements the `Supervised` and `Actor` plumbing every worker shares: state
/// reporting on start, and counting each restart.
#[macro_export]
macro_rules! supervised_worker {
    ($worker:ty, $name:expr) => {
        $crate::supervised_worker!($worker, $name, |_actor, _ctx| {});
    };
    ($worker:ty, $name:expr, |$actor:ident, $ctx:ident| $on_start:block) => {
        impl actix::Actor for $worker {
            type Context = actix::Context<Self>;

            fn started(&mut self, ctx: &mut Self::Context) {
                ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
                self.metrics.set_state($name, $crate::metrics::ActorState::Running);
                let ($actor, $ctx) = (self, ctx);
                $on_start
            }

            fn stopped(&mut self, _: &mut Self::Context) {
                self.metrics.set_state($name, $crate::metrics::ActorState::Stopped);
            }
        }

        impl actix::Supervised for $worker {
            fn restarting(&mut self, _: &mut Self::Context) {
                tracing::warn!(actor = $name, "restarting after a failure");
                self.metrics.record_restart($name);
            }
        }
    };
}
