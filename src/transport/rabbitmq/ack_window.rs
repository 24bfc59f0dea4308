//! Acks of one consumer channel, sent in groups.
//!
//! amqprs writes every ack as its own frame and the broker handles each one;
//! one `basic.ack(multiple)` settles a whole run of deliveries instead. The
//! window knows every delivery tag handed out and not yet settled
//! (`outstanding`) and the acked ones waiting to be sent (`ready`). A flush,
//! run on the AMQP thread right after the settles queued before it, sends one
//! multiple ack up to the highest ready tag below the lowest tag still being
//! worked on — so it never covers a delivery whose verdict is not an ack, or
//! not known yet — and the ready tags above that one by one. A settler hears
//! back only once its ack is written: ack after commit holds as before, and a
//! tag is never acked twice (it leaves `outstanding` when its ack is sent).
//!
//! The flush waits [`ACK_LINGER`] for more acks, or until half the prefetch is
//! ready (so a small prefetch never stalls waiting for its own acks). Flushed
//! at once, the acks of one group commit came out of order and mostly one by
//! one; held a few milliseconds, the run below the busy tag is long and one
//! frame settles it. In paired bench runs the broker then spent 124–136 instead
//! of 134–158 µs of CPU per event (BENCHMARKS.md, "Where the time goes").

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amqprs::channel::{BasicAckArguments, Channel};
use blog_actors::delivery::TransportError;
use blog_actors::ports::Reason;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, Notify};

use super::connection::usable;

#[derive(Default)]
struct State {
    /// Handed to the reader, not yet settled (acked, rejected or copied and acked).
    outstanding: BTreeSet<u64>,
    /// Acked by their worker, waiting for the flush.
    ready: BTreeSet<u64>,
    /// Told once the flush wrote the ack frames.
    waiters: Vec<oneshot::Sender<Result<(), TransportError>>>,
    flush_scheduled: bool,
}

/// How long a flush waits for more acks to join it. Only delays the ack frame
/// (and the settler's answer): the effect is already committed.
const ACK_LINGER: Duration = Duration::from_millis(5);

/// The ack window of one channel; lives in its session.
#[derive(Clone)]
pub(super) struct AckWindow {
    state: Arc<Mutex<State>>,
    /// Wakes a lingering flush early once `flush_at` acks are ready.
    full: Arc<Notify>,
    flush_at: usize,
}

impl AckWindow {
    /// For a channel with `prefetch` unacked deliveries at most.
    pub(super) fn new(prefetch: u16) -> Self {
        let flush_at = usize::from(prefetch / 2).max(1);
        Self { state: Arc::default(), full: Arc::new(Notify::new()), flush_at }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A delivery was handed out.
    pub(super) fn delivered(&self, tag: u64) {
        self.state().outstanding.insert(tag);
    }

    /// The delivery was settled some other way (rejected, or acked on its own).
    pub(super) fn settled(&self, tag: u64) {
        let mut state = self.state();
        state.outstanding.remove(&tag);
        state.ready.remove(&tag);
    }

    /// Acks `tag` with the next flush; answers once its ack was written. Callable
    /// from any thread: the flush is spawned on `amqp`, the AMQP thread, once per
    /// group, so a settler costs that thread no wake-up of its own.
    pub(super) async fn ack(&self, channel: &Channel, tag: u64, amqp: &Handle) -> Result<(), TransportError> {
        let (tx, rx) = oneshot::channel();
        let (schedule, full) = {
            let mut state = self.state();
            state.ready.insert(tag);
            state.waiters.push(tx);
            (!std::mem::replace(&mut state.flush_scheduled, true), state.ready.len() >= self.flush_at)
        };
        if schedule {
            let (window, channel) = (self.clone(), channel.clone());
            amqp.spawn(async move {
                // A permit left by an earlier window's wake-up only flushes this one early.
                if !full {
                    tokio::select! {
                        () = tokio::time::sleep(ACK_LINGER) => {}
                        () = window.full.notified() => {}
                    }
                }
                window.flush(&channel).await;
            });
        } else if full {
            self.full.notify_one();
        }
        rx.await.unwrap_or_else(|_| Err(TransportError::unavailable("acking", Reason("the ack flush was dropped"))))
    }

    async fn flush(&self, channel: &Channel) {
        let (multiple, singles, waiters) = {
            let mut state = self.state();
            state.flush_scheduled = false;
            // The lowest tag still being worked on bounds the multiple ack.
            let busy = state.outstanding.iter().find(|t| !state.ready.contains(t)).copied();
            let ready = std::mem::take(&mut state.ready);
            let (below, above): (Vec<u64>, Vec<u64>) = ready.into_iter().partition(|t| busy.is_none_or(|b| *t < b));
            for tag in below.iter().chain(&above) {
                state.outstanding.remove(tag);
            }
            (below.last().copied(), above, std::mem::take(&mut state.waiters))
        };
        let sent = async {
            if !usable(channel) {
                return Err(TransportError::unavailable("acking", Reason("the channel closed before its acks were sent")));
            }
            let failed = |e: amqprs::error::Error| TransportError::unavailable("cannot ack", e);
            if let Some(tag) = multiple {
                channel.basic_ack(BasicAckArguments::new(tag, true)).await.map_err(failed)?;
            }
            for tag in singles {
                channel.basic_ack(BasicAckArguments::new(tag, false)).await.map_err(failed)?;
            }
            Ok(())
        }
        .await;
        for waiter in waiters {
            let _ = waiter.send(sent.clone());
        }
    }
}
