//! Messages the actors exchange.

use std::sync::Arc;

use actix::Message;

use crate::event::{Envelope, Event};
use crate::ports::{RebuildReport, StoreError};

/// Handle one event; the answer decides whether the delivery is acked, retried or parked.
#[derive(Message)]
#[rtype(result = "Result<(), HandlerError>")]
pub struct HandleEvent {
    pub envelope: Arc<Envelope>,
    pub event: Event,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// How long the handler may run: past it the attempt fails, the handler's
    /// future is dropped and whatever it held (a claim) is released.
    pub deadline: std::time::Duration,
    /// The reader's span of this delivery (the consumer span): the parent of the handler's span.
    pub span: tracing::Span,
}

/// Why a handler did not commit its effect.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HandlerError {
    /// A passing failure of this message (a lost race, a defect): retry later.
    #[error("{0}")]
    Retryable(String),
    /// The downstream (mail server, store) cannot be reached: retry later, and
    /// count it toward the worker's circuit breaker. Says nothing about the message.
    #[error("{0}")]
    Unavailable(String),
    /// Retrying cannot help (invalid data, address rejected): park now.
    #[error("{0}")]
    Permanent(String),
    /// Not a failure: the work is busy elsewhere (another delivery of the same
    /// order is being mailed). Try again after the base delay without using up an attempt.
    #[error("{0}")]
    Deferred(String),
}

/// What a worker does about a store failure: wait out an unavailable store or a
/// lost race; park a message whose data the store cannot read back (retrying
/// would fail the same way).
impl From<StoreError> for HandlerError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Corrupt { .. } => HandlerError::Permanent(err.to_string()),
            StoreError::Unavailable { .. } => HandlerError::Unavailable(err.to_string()),
            StoreError::Conflict { .. } | StoreError::Defect { .. } => HandlerError::Retryable(err.to_string()),
        }
    }
}

/// Recompute a worker's state from the store; `None` from a worker with nothing to rebuild.
#[derive(Message)]
#[rtype(result = "Option<Result<RebuildReport, StoreError>>")]
pub struct Rebuild;

/// Pause (`pause: true`) or resume one worker by hand; `None` for a worker this reader does not feed.
#[derive(Message)]
#[rtype(result = "Option<crate::metrics::BreakerFigures>")]
pub struct SteerWorker {
    pub worker: String,
    pub pause: bool,
}

/// Stop taking deliveries, wait for those in flight (up to the deadline), then answer.
#[derive(Message)]
#[rtype(result = "DrainReport")]
pub struct Drain {
    pub timeout: std::time::Duration,
}

/// What was left when draining ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Deliveries still unsettled at the deadline; the transport redelivers them.
    pub abandoned: usize,
}
