//! Consuming: one session per connection (a channel per worker queue with its
//! prefetch, one for the unrouted queue, one confirm channel for retries and
//! parking), and a supervisor that replaces a lost session with capped backoff
//! while feeding the same receiver.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blog_actors::delivery::{Delivery, TransportError};
use blog_actors::pause::FeedSwitch;
use blog_actors::worker::WorkerKind;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ack_window::AckWindow;
use super::confirm::ConfirmChannel;
use super::connection::{Backoff, Link};
use super::nodes::InUse;
use super::pump::{park_unrouted, subscribe, Pump};
use super::session::SessionShared;
use super::topology;
use super::Config;

const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// Unrouted events are parked one by one; a few in flight is enough.
pub(super) const UNROUTED_PREFETCH: u16 = 20;
/// How long shutdown waits for a supervisor to close its connection.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The consumers of every `consume` call, and the figures the transport reports.
pub(super) struct ConsumeSide {
    cfg: Arc<Config>,
    runtime: Handle,
    /// Consumer sessions attached to their queues now.
    attached: AtomicUsize,
    /// Consumer sessions whose connection is open now.
    connected: AtomicUsize,
    pub unsettled: Arc<AtomicU64>,
    /// The node the latest session is connected to.
    in_use: InUse,
    /// Sessions lost (connection or channel closed: a node's death, a forced
    /// close, a 406 delivery acknowledgement timeout) since the start.
    pub losses: AtomicU64,
    /// Each supervisor's shutdown token and task, for `close`.
    supervisors: Mutex<Vec<(CancellationToken, JoinHandle<()>)>>,
    /// How much each worker's consumer takes now (breaker open or half-open, paused by hand).
    pub feeds: FeedSwitch,
}

/// What a `consume` call asked for.
struct Spec {
    workers: Vec<WorkerKind>,
    prefetch: u16,
    current: Arc<AtomicU64>,
}

/// One connection's consumers.
struct Session {
    link: Link,
    shared: Arc<SessionShared>,
    pumps: Vec<JoinHandle<()>>,
    attached: bool,
    connected: bool,
}

impl ConsumeSide {
    pub(super) fn new(cfg: Arc<Config>, runtime: Handle) -> Self {
        Self {
            cfg,
            runtime,
            attached: AtomicUsize::new(0),
            connected: AtomicUsize::new(0),
            unsettled: Arc::new(AtomicU64::new(0)),
            in_use: InUse::default(),
            losses: AtomicU64::new(0),
            supervisors: Mutex::new(Vec::new()),
            feeds: FeedSwitch::default(),
        }
    }

    pub(super) fn is_consuming(&self) -> bool {
        self.attached.load(Ordering::SeqCst) > 0
    }

    pub(super) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst) > 0
    }

    pub(super) fn node(&self) -> Option<usize> {
        self.in_use.get().filter(|_| self.is_connected())
    }

    /// Opens the first session (its error is the caller's), then leaves the
    /// supervisor to keep one going. Runs on the AMQP thread.
    pub(super) async fn consume(
        self: Arc<Self>,
        workers: Vec<WorkerKind>,
        prefetch: u16,
        stop: CancellationToken,
    ) -> Result<mpsc::Receiver<Delivery>, TransportError> {
        let prefetch = prefetch.max(1);
        let (tx, rx) = mpsc::channel(usize::from(prefetch) * workers.len().max(1));
        let spec = Spec { workers, prefetch, current: Arc::new(AtomicU64::new(1)) };
        let session = self.open_session(&spec, &tx, &stop, 1).await?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(self.clone().supervise(session, spec, tx, stop, shutdown.clone()));
        if let Ok(mut supervisors) = self.supervisors.lock() {
            supervisors.push((shutdown, task));
        }
        Ok(rx)
    }

    async fn supervise(
        self: Arc<Self>,
        mut session: Session,
        spec: Spec,
        tx: mpsc::Sender<Delivery>,
        stop: CancellationToken,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = shutdown.cancelled() => {
                    // Closing the connection ends the pumps too.
                    self.end(session).await;
                    return;
                }
                _ = session.link.lost.cancelled() => {}
            }
            self.losses.fetch_add(1, Ordering::SeqCst);
            let node = self.cfg.nodes.label(session.link.node).unwrap_or_default();
            tracing::warn!(generation = session.shared.generation, node, "RabbitMQ consumer connection lost; reconnecting");
            // The next try starts at the next node of the list (round robin).
            self.cfg.nodes.lost(session.link.node);
            let generation = session.shared.generation + 1;
            self.end(session).await;
            match self.reconnect(&spec, &tx, &stop, &shutdown, generation).await {
                Some(next) => session = next,
                None => return,
            }
        }
        // Stopped: the pumps cancel their consumers and hand back what they buffered.
        for pump in std::mem::take(&mut session.pumps) {
            let _ = pump.await;
        }
        self.detach(&mut session);
        drop(tx); // the receiver ends here
        // The channels stay open so deliveries still in flight can be settled, until close or loss.
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = session.link.lost.cancelled() => {}
        }
        self.end(session).await;
    }

    async fn reconnect(
        &self,
        spec: &Spec,
        tx: &mpsc::Sender<Delivery>,
        stop: &CancellationToken,
        shutdown: &CancellationToken,
        generation: u64,
    ) -> Option<Session> {
        let mut backoff = Backoff::new(RECONNECT_MIN, RECONNECT_MAX);
        loop {
            let delay = backoff.next_delay();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.cancelled() => return None,
                _ = shutdown.cancelled() => return None,
            }
            match self.open_session(spec, tx, stop, generation).await {
                Ok(session) => {
                    tracing::info!(generation, "RabbitMQ consumers attached again");
                    return Some(session);
                }
                Err(e) => tracing::warn!(error = %e, next_try_in = ?delay, "cannot reconnect the RabbitMQ consumer yet"),
            }
        }
    }

    async fn open_session(
        &self,
        spec: &Spec,
        tx: &mpsc::Sender<Delivery>,
        stop: &CancellationToken,
        generation: u64,
    ) -> Result<Session, TransportError> {
        let names = &self.cfg.names;
        let link = self.cfg.nodes.open(&self.cfg.connection_name("consume")).await?;
        let opened = async {
            topology::declare(&link, names, &self.cfg.queues).await?;
            let confirm = ConfirmChannel::open(&link, &link.lost).await?;
            let mut consumers = Vec::new();
            for worker in &spec.workers {
                consumers.push((*worker, subscribe(&link, &names.worker(*worker), spec.prefetch).await?));
            }
            let unrouted = subscribe(&link, &names.unrouted(), UNROUTED_PREFETCH).await?;
            Ok::<_, TransportError>((confirm, consumers, unrouted))
        };
        let (confirm, consumers, unrouted) = match opened.await {
            Ok(opened) => opened,
            Err(e) => {
                // A node that accepts connections but cannot serve the queues (no
                // quorum leader reachable from it) is as good as lost: try the next.
                self.cfg.nodes.lost(link.node);
                link.close().await;
                return Err(e);
            }
        };
        self.in_use.set(Some(link.node));
        spec.current.store(generation, Ordering::SeqCst);
        let channels = consumers.iter().map(|(w, sub)| (*w, sub.channel.clone())).collect();
        let windows = consumers.iter().map(|(w, _)| (*w, AckWindow::new(spec.prefetch))).collect();
        let current = spec.current.clone();
        let shared = Arc::new(SessionShared::new(generation, current, channels, windows, confirm, names.clone()));
        let mut pumps = Vec::new();
        for (worker, sub) in consumers {
            let pump = Pump {
                side_unsettled: self.unsettled.clone(),
                runtime: self.runtime.clone(),
                shared: shared.clone(),
                feeds: self.feeds.clone(),
            };
            pumps.push(tokio::spawn(pump.run(worker, sub, tx.clone(), stop.clone(), link.lost.clone())));
        }
        pumps.push(tokio::spawn(park_unrouted(shared.clone(), unrouted, stop.clone(), link.lost.clone())));
        self.attached.fetch_add(1, Ordering::SeqCst);
        self.connected.fetch_add(1, Ordering::SeqCst);
        Ok(Session { link, shared, pumps, attached: true, connected: true })
    }

    fn detach(&self, session: &mut Session) {
        if std::mem::take(&mut session.attached) {
            self.attached.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Closes a session's connection and waits for its pumps.
    async fn end(&self, mut session: Session) {
        self.detach(&mut session);
        if std::mem::take(&mut session.connected) {
            self.connected.fetch_sub(1, Ordering::SeqCst);
        }
        session.shared.confirm.close().await;
        session.link.close().await;
        for pump in session.pumps.drain(..) {
            let _ = pump.await;
        }
    }

    /// Ends every supervisor: consumers cancelled, connections closed.
    pub(super) async fn close(&self) {
        let supervisors = self.supervisors.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
        for (shutdown, task) in supervisors {
            shutdown.cancel();
            if tokio::time::timeout(CLOSE_GRACE, task).await.is_err() {
                tracing::warn!("a RabbitMQ consumer did not close in time");
            }
        }
    }
}
