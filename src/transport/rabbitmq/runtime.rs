//! The thread every amqprs object lives on.
//!
//! amqprs spawns its socket reader, writer and channel dispatchers with
//! `tokio::spawn` on whatever runtime opened them, and its drop guards spawn a
//! close handshake the same way. On an actix arbiter a blocking handler would
//! starve the heartbeats, and a `Channel` dropped after the actix System
//! stopped panics ("no reactor running"). So the transport owns one thread
//! with its own runtime: connections and channels are opened, used and dropped
//! only inside futures run there, and the rest of the service talks to it by
//! awaiting those futures' join handles.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use blog_actors::delivery::TransportError;
use blog_actors::ports::Reason;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A last piece of work run on the thread before its runtime ends.
pub(super) type Finale = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// How long `close` waits for the thread to finish its finale.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub(super) struct AmqpRuntime {
    handle: Handle,
    /// Taken once: sending the finale ends the runtime after it ran.
    finale: Mutex<Option<oneshot::Sender<Finale>>>,
    /// Answered by the thread once its runtime is gone.
    done: tokio::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

impl AmqpRuntime {
    pub(super) fn start(thread_name: &str) -> Result<AmqpRuntime, TransportError> {
        // One thread is plenty: the client costs 6–11 µs per message, the broker 35–45 µs.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TransportError::unavailable("cannot build the AMQP runtime", e))?;
        let handle = runtime.handle().clone();
        let (finale_tx, finale_rx) = oneshot::channel::<Finale>();
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || {
                // The runtime drives every spawned task while this waits for the finale.
                runtime.block_on(async move {
                    if let Ok(finale) = finale_rx.await {
                        finale.await;
                    }
                });
                // Dropped here, on its own thread: leftover tasks end inside their runtime.
                drop(runtime);
                let _ = done_tx.send(());
            })
            .map_err(|e| TransportError::unavailable("cannot start the AMQP thread", e))?;
        Ok(Self { handle, finale: Mutex::new(Some(finale_tx)), done: tokio::sync::Mutex::new(Some(done_rx)) })
    }

    /// Runs `work` on the AMQP thread and waits for its answer. The work goes on
    /// even when the caller stops waiting, so a settle is never cut in half.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, TransportError>
    where
        F: Future<Output = Result<T, TransportError>> + Send + 'static,
        T: Send + 'static,
    {
        match self.handle.spawn(work).await {
            Ok(answer) => answer,
            Err(e) if e.is_panic() => Err(TransportError::defect("an AMQP task panicked", e)),
            Err(_) => Err(closed()),
        }
    }

    pub(super) fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Runs `finale` on the thread, then ends it; waits (bounded) for that to happen.
    pub(super) async fn shutdown(&self, finale: Finale) {
        self.begin_shutdown(finale);
        let done = self.done.lock().await.take();
        if let Some(done) = done {
            if tokio::time::timeout(SHUTDOWN_GRACE, done).await.is_err() {
                tracing::warn!("the AMQP thread did not finish closing in time");
            }
        }
    }

    /// Like `shutdown` but without waiting: for `Drop`.
    pub(super) fn begin_shutdown(&self, finale: Finale) {
        let sender = self.finale.lock().ok().and_then(|mut finale| finale.take());
        if let Some(sender) = sender {
            let _ = sender.send(finale);
        }
    }
}

/// A call after the transport was closed.
pub(super) fn closed() -> TransportError {
    TransportError::unavailable("RabbitMQ", Reason("the transport is closed"))
}
