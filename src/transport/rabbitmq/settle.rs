//! Settling a RabbitMQ delivery by the worker's verdict.
//!
//! A delivery tag means something only on the channel that delivered it, so a
//! settler holds its session weakly with the session's generation: once that
//! session is over (connection lost, reconnected) settling is an error and a
//! no-op. The broker has already put the message back and delivers it again;
//! the handlers are idempotent. An ack joins the channel's ack window from the
//! settler's own thread; the rest (reject, copy then ack) runs on the AMQP
//! thread, where the channels live.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use amqprs::channel::{BasicAckArguments, BasicRejectArguments, Channel};
use amqprs::{BasicProperties, FieldValue};
use async_trait::async_trait;
use blog_actors::delivery::{Settle, TransportError, Verdict};
use blog_actors::ports::Reason;
use blog_actors::worker::WorkerKind;
use bytes::Bytes;
use tokio::runtime::Handle;

use super::confirm::truncate;
use super::session::SessionShared;
use super::message::{parking_headers, with_headers, ATTEMPT, LAST_ERROR, ORIGINAL_ROUTING_KEY};

/// A reason kept in a header is cut to this many bytes (a stack trace is not a header).
const MAX_REASON: usize = 4096;

pub(super) struct RabbitSettler {
    /// Taken by `settle`, so `Drop` hands back only a delivery never settled.
    job: Option<Job>,
    /// Deliveries handed out and not settled, over the transport.
    unsettled: Arc<AtomicU64>,
    /// The AMQP thread.
    runtime: Handle,
}

/// What one delivery carried, for its settler.
pub(super) struct Delivered {
    pub worker: WorkerKind,
    pub tag: u64,
    pub routing_key: String,
    pub props: BasicProperties,
    pub body: Bytes,
}

impl RabbitSettler {
    pub(super) fn new(session: &Arc<SessionShared>, delivered: Delivered, unsettled: Arc<AtomicU64>, runtime: Handle) -> Self {
        unsettled.fetch_add(1, Ordering::SeqCst);
        let Delivered { worker, tag, routing_key, props, body } = delivered;
        let generation = session.generation;
        let job = Job { session: Arc::downgrade(session), generation, worker, tag, routing_key, props, body };
        Self { job: Some(job), unsettled, runtime }
    }
}

#[async_trait]
impl Settle for RabbitSettler {
    async fn settle(mut self: Box<Self>, verdict: Verdict) -> Result<(), TransportError> {
        // Always there: only this, which consumes the settler, takes it.
        let Some(job) = self.job.take() else { return Ok(()) };
        // The common verdict joins the channel's ack window right here, without
        // a hop to the AMQP thread per delivery: only the window's flush runs there.
        if let Verdict::Ack = verdict {
            let (session, channel) = live_channel(&job.session, job.generation, job.worker)?;
            if let Some(window) = session.window(job.worker) {
                return window.ack(&channel, job.tag, &self.runtime).await;
            }
        }
        match self.runtime.spawn(job.apply(verdict)).await {
            Ok(settled) => settled,
            Err(_) => Err(super::runtime::closed()),
        }
    }
}

impl Drop for RabbitSettler {
    /// Dropped without a verdict (the reader went away): hand the message back now
    /// instead of leaving it unacked, holding a prefetch slot, until the connection ends.
    fn drop(&mut self) {
        let _ = self.unsettled.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        let Some(Job { session, generation, worker, tag, .. }) = self.job.take() else { return };
        // A runtime already shut down drops this at once; the broker requeues at connection close.
        drop(self.runtime.spawn(async move {
            if let Ok((session, channel)) = live_channel(&session, generation, worker) {
                if let Err(e) = release(&channel, tag).await {
                    tracing::debug!(error = %e, "could not hand back a dropped delivery");
                }
                if let Some(window) = session.window(worker) {
                    window.settled(tag);
                }
            }
        }));
    }
}

/// One delivery and the session it came on: what settling it needs.
struct Job {
    session: Weak<SessionShared>,
    generation: u64,
    worker: WorkerKind,
    tag: u64,
    routing_key: String,
    /// Kept to republish a copy for a retry or the parking lot.
    props: BasicProperties,
    body: Bytes,
}

impl Job {
    async fn apply(self, verdict: Verdict) -> Result<(), TransportError> {
        let (session, channel) = live_channel(&self.session, self.generation, self.worker)?;
        let window = session.window(self.worker).cloned();
        let tag = self.tag;
        let settled = self.apply_alone(&session, &channel, verdict).await;
        // Rejected, or copied and acked, on its own: the window may now ack past it.
        if let Some(window) = window {
            window.settled(tag);
        }
        settled
    }

    async fn apply_alone(self, session: &SessionShared, channel: &Channel, verdict: Verdict) -> Result<(), TransportError> {
        let (names, channel) = (&session.names, channel.clone());
        match verdict {
            Verdict::Ack => {}
            Verdict::Release => return release(&channel, self.tag).await,
            Verdict::Retry { delay, next_attempt, reason } => {
                // No levels configured: straight back to the worker queue, still counted.
                let queue = names.retry_queue(self.worker, delay).unwrap_or_else(|| names.worker(self.worker));
                let headers = vec![
                    (ATTEMPT, FieldValue::l(i64::from(next_attempt))),
                    (LAST_ERROR, FieldValue::from(truncate(&reason, MAX_REASON))),
                    (ORIGINAL_ROUTING_KEY, FieldValue::from(self.routing_key.as_str())),
                ];
                let props = with_headers(&self.props, headers, &[]);
                let copied = session.confirm.publish_confirmed("", &queue, props, self.body.to_vec()).await;
                give_back_unless(copied, &channel, self.tag).await?;
            }
            Verdict::Park { reason, attempts } => {
                let headers = parking_headers(self.worker.name(), &self.routing_key, truncate(&reason, MAX_REASON), attempts);
                let props = with_headers(&self.props, headers, &[]);
                let lot = names.parked(self.worker.name());
                let copied = session.confirm.publish_confirmed("", &lot, props, self.body.to_vec()).await;
                give_back_unless(copied, &channel, self.tag).await?;
            }
        }
        // Only now, with the copy confirmed, may the original go. Crashing in
        // between leaves both: the original comes again (at least once).
        ack(&channel, self.tag).await
    }
}

/// When the copy was not confirmed, the original goes back to the queue now rather
/// than staying unacked, holding a prefetch slot, until the connection ends. (A
/// channel failure ends the whole session, so this cannot turn into a hot loop.)
async fn give_back_unless(copied: Result<(), TransportError>, channel: &Channel, tag: u64) -> Result<(), TransportError> {
    if let Err(e) = copied {
        let _ = release(channel, tag).await;
        return Err(e);
    }
    Ok(())
}

fn session_over() -> TransportError {
    TransportError::unavailable("settling", Reason("the connection that delivered this message is gone; the broker delivers it again"))
}

/// The delivering session and channel, if the session is the live one and the channel is still open.
fn live_channel(
    session: &Weak<SessionShared>,
    generation: u64,
    worker: WorkerKind,
) -> Result<(Arc<SessionShared>, Channel), TransportError> {
    let session = session.upgrade().filter(|s| s.is_current(generation)).ok_or_else(session_over)?;
    let channel = session.channel(worker).ok_or_else(session_over)?.clone();
    still_usable(&channel)?;
    Ok((session, channel))
}

/// A method on a channel the server closed takes the whole connection down, so each is checked first.
fn still_usable(channel: &Channel) -> Result<(), TransportError> {
    if super::connection::usable(channel) { Ok(()) } else { Err(session_over()) }
}

async fn ack(channel: &Channel, tag: u64) -> Result<(), TransportError> {
    still_usable(channel)?;
    channel.basic_ack(BasicAckArguments::new(tag, false)).await.map_err(|e| TransportError::unavailable("cannot ack", e))
}

/// Back to the queue, this one message only (never a bulk nack).
pub(super) async fn release(channel: &Channel, tag: u64) -> Result<(), TransportError> {
    still_usable(channel)?;
    let reject = BasicRejectArguments::new(tag, true);
    channel.basic_reject(reject).await.map_err(|e| TransportError::unavailable("cannot hand back a delivery", e))
}

