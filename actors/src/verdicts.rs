//! What becomes of a delivery: the reader's checks on what it carries, and the
//! verdict on its worker's answer (ack, retry with backoff, park, or postpone
//! without using an attempt while the worker's breaker or pause holds it back).

use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;

use crate::delivery::{Delivery, Verdict};
use crate::event::{Envelope, Event};
use crate::messages::{HandleEvent, HandlerError};
use crate::metrics::{ActorMetrics, Outcome};
use crate::retry::RetryPolicy;

/// A worker's answer; `Err` when it could not be asked (its mailbox is gone).
pub type Answer = Result<Result<(), HandlerError>, String>;

/// The verdict on a worker's answer. `flowing`: the worker's breaker is closed
/// and it is not paused, so an unavailable downstream uses up an attempt like any
/// failure; otherwise the delivery goes back unspent.
pub fn on_answer(delivery: &Delivery, answer: Answer, retry: RetryPolicy, flowing: bool) -> (Verdict, Outcome) {
    let attempt = delivery.attempt;
    let error = match answer {
        Ok(Ok(())) => return counted(Verdict::Ack),
        Ok(Err(HandlerError::Permanent(reason))) => return counted(park_now(delivery, reason)),
        Ok(Err(HandlerError::Deferred(reason))) => {
            tracing::info!(%reason, "deferred");
            return counted(Verdict::Retry { delay: retry.delay_after(1), next_attempt: attempt, reason });
        }
        // The downstream is down and the breaker has stopped the worker: no attempt is used up.
        Ok(Err(HandlerError::Unavailable(reason))) if !flowing => return postpone(delivery, retry, &reason),
        Ok(Err(HandlerError::Retryable(reason) | HandlerError::Unavailable(reason))) => reason,
        Err(unreachable) => unreachable,
    };
    if attempt >= retry.max_attempts {
        let reason = format!("gave up after {attempt} attempts: {error}");
        tracing::warn!(reason = %crate::redact::addresses_in(&reason), "parking a message");
        return counted(Verdict::Park { reason, attempts: attempt });
    }
    let delay = retry.delay_after(attempt);
    tracing::info!(error = %crate::redact::addresses_in(&error), ?delay, "will retry");
    counted(Verdict::Retry { delay, next_attempt: attempt + 1, reason: error })
}

/// Back to the queue at the same attempt, after the first retry delay. On
/// RabbitMQ a retry is a confirmed copy into the retry queue, then an ack of the
/// original: unlike a reject-requeue it does not count toward a quorum queue's
/// `x-delivery-limit`. The worker's queue is not being consumed meanwhile (its
/// switch is off), so the copy waits there rather than looping.
pub fn postpone(delivery: &Delivery, retry: RetryPolicy, why: &str) -> (Verdict, Outcome) {
    let reason = format!("postponed, no attempt used: {why}");
    (Verdict::Retry { delay: retry.delay_after(1), next_attempt: delivery.attempt, reason }, Outcome::Postponed)
}

/// A verdict with the outcome it is counted as.
pub fn counted(verdict: Verdict) -> (Verdict, Outcome) {
    let outcome = match &verdict {
        Verdict::Ack => Outcome::Ok,
        Verdict::Retry { .. } => Outcome::Retried,
        Verdict::Park { .. } | Verdict::Release => Outcome::Parked,
    };
    (verdict, outcome)
}

/// An event that passed the reader's checks.
pub type Checked = (Arc<Envelope>, Event);

pub fn park_now(delivery: &Delivery, reason: String) -> Verdict {
    tracing::warn!(reason = %crate::redact::addresses_in(&reason), "parking an invalid message");
    Verdict::Park { reason, attempts: delivery.attempt }
}

/// Decodes and checks a delivery; `Err` holds the verdict on one that is bad.
pub fn examine(delivery: &Delivery) -> Result<Checked, Verdict> {
    let envelope = Envelope::decode(&delivery.body).map_err(|e| park_now(delivery, e.to_string()))?;
    let span = tracing::Span::current();
    span.record("event_id", tracing::field::display(envelope.id));
    // Recording a field twice would print it twice; the property, when set, is the same id.
    if let (None, Some(correlation_id)) = (&delivery.correlation_id, &envelope.correlation_id) {
        span.record("correlation_id", correlation_id.as_str());
    }
    // Checked here once for every worker: a handler only sees the types it subscribed to.
    if !delivery.worker.takes(&envelope.event_type) {
        return Err(park_now(delivery, format!("{} does not take {:?} events", delivery.worker, envelope.event_type)));
    }
    let event = envelope.event().map_err(|e| park_now(delivery, e.to_string()))?;
    Ok((Arc::new(envelope), event))
}

/// Hands the event to the worker; `Err` when it could not be asked.
pub async fn ask(
    delivery: &Delivery,
    envelope: Arc<Envelope>,
    event: Event,
    route: Option<Recipient<HandleEvent>>,
    deadline: Duration,
    metrics: &ActorMetrics,
) -> Answer {
    let Some(route) = route else {
        return Ok(Err(HandlerError::Permanent(format!("no worker {} in this process", delivery.worker))));
    };
    metrics.mailbox(delivery.worker.name(), 1);
    let span = tracing::Span::current();
    let attempt = delivery.attempt;
    route.send(HandleEvent { envelope, event, attempt, deadline, span }).await.map_err(|mailbox| {
        metrics.mailbox(delivery.worker.name(), -1);
        format!("worker unreachable: {mailbox}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{Settle, TransportError};
    use crate::worker::{WorkerKind, WorkerSpec};

    static W: WorkerSpec = WorkerSpec { name: "w", event_types: &["x"], mailbox: 8 };

    /// These tests read the verdict only; nothing is settled.
    struct Unsettled;

    #[async_trait::async_trait]
    impl Settle for Unsettled {
        async fn settle(self: Box<Self>, _: Verdict) -> Result<(), TransportError> {
            unreachable!("the tests only compute verdicts")
        }
    }

    fn delivery(attempt: u32) -> Delivery {
        Delivery {
            worker: WorkerKind::of(&W),
            routing_key: "x".into(),
            body: bytes::Bytes::new(),
            attempt,
            redelivered: false,
            correlation_id: None,
            trace: None,
            settler: Box::new(Unsettled),
        }
    }

    fn unavailable() -> Answer {
        Ok(Err(HandlerError::Unavailable("SMTP: connection refused".into())))
    }

    const RETRY: RetryPolicy = RetryPolicy { max_attempts: 3, base_delay: Duration::from_secs(1), max_delay: Duration::from_secs(60) };

    #[test]
    fn an_unavailable_downstream_uses_an_attempt_only_while_the_worker_flows() {
        let (verdict, outcome) = on_answer(&delivery(2), unavailable(), RETRY, true);
        assert!(matches!(verdict, Verdict::Retry { next_attempt: 3, .. }), "{verdict:?}");
        assert_eq!(outcome, Outcome::Retried);
        let (verdict, outcome) = on_answer(&delivery(2), unavailable(), RETRY, false);
        assert!(matches!(verdict, Verdict::Retry { next_attempt: 2, .. }), "{verdict:?}");
        assert_eq!(outcome, Outcome::Postponed);
        let (verdict, _) = on_answer(&delivery(3), unavailable(), RETRY, false);
        assert!(matches!(verdict, Verdict::Retry { next_attempt: 3, .. }), "the last attempt is not parked while held back: {verdict:?}");
    }

    #[test]
    fn a_bad_message_is_parked_at_once_and_the_last_failed_attempt_parks() {
        let (verdict, outcome) = on_answer(&delivery(1), Ok(Err(HandlerError::Permanent("rejected".into()))), RETRY, false);
        assert_eq!((verdict, outcome), (Verdict::Park { reason: "rejected".into(), attempts: 1 }, Outcome::Parked));
        let (verdict, _) = on_answer(&delivery(3), unavailable(), RETRY, true);
        assert!(matches!(verdict, Verdict::Park { attempts: 3, .. }), "{verdict:?}");
    }
}
