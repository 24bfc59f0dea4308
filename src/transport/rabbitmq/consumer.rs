//! Consuming: one session per connection (a channel per worker queue with its
//! prefetch, one for the unrouted queue, one confirm channel for retries and
//! parking), and a supervisor that replaces a lost session with capped backoff
//! while feeding the same receiver.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amqprs::channel::{BasicAckArguments, BasicCancelArguments, BasicConsumeArguments, BasicQosArguments, Channel, ConsumerMessage};
use blog_actors::delivery::{Delivery, TransportError};
use blog_actors::worker::WorkerKind;
use tokio::runtime::Handle;
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::confirm::ConfirmChannel;
use super::connection::{self, open_channel, usable, Backoff, Link};
use super::message::{self, parking_headers, with_headers};
use super::settle::{reject_requeue, Delivered, RabbitSettler};
use super::topology::{self, Names, UNROUTED};
use super::Config;

const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// Unrouted events are parked one by one; a few in flight is enough.
const UNROUTED_PREFETCH: u16 = 20;
/// How long shutdown waits for a supervisor to close its connection.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What settlers reach through a weak reference; dropped (on the AMQP thread)
/// with the session, so a settler never keeps a dead channel alive.
pub(super) struct SessionShared {
    pub generation: u64,
    /// The supervisor's live generation.
    current: Arc<AtomicU64>,
    channels: HashMap<WorkerKind, Channel>,
    pub confirm: ConfirmChannel,
    pub names: Names,
}

impl SessionShared {
    pub(super) fn is_current(&self, generation: u64) -> bool {
        self.generation == generation && self.current.load(Ordering::SeqCst) == generation
    }

    pub(super) fn channel(&self, worker: WorkerKind) -> Option<&Channel> {
        self.channels.get(&worker)
    }
}

/// The consumers of every `consume` call, and the figures the transport reports.
pub(super) struct ConsumeSide {
    cfg: Arc<Config>,
    runtime: Handle,
    /// Consumer sessions attached to their queues now.
    attached: AtomicUsize,
    /// Consumer sessions whose connection is open now.
    connected: AtomicUsize,
    pub unsettled: Arc<AtomicU64>,
    /// Each supervisor's shutdown token and task, for `close`.
    supervisors: Mutex<Vec<(CancellationToken, JoinHandle<()>)>>,
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
            supervisors: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn is_consuming(&self) -> bool {
        self.attached.load(Ordering::SeqCst) > 0
    }

    pub(super) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst) > 0
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
                _ = shutdown.cancelled() => break,
                _ = session.link.lost.cancelled() => {}
            }
            tracing::warn!(generation = session.shared.generation, "RabbitMQ consumer connection lost; reconnecting");
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
        let link = connection::open(&self.cfg.args, &self.cfg.connection_name("consume")).await?;
        let opened = async {
            topology::declare(&link, names).await?;
            let confirm = ConfirmChannel::open(&link, &link.lost).await?;
            let mut consumers = Vec::new();
            for worker in &spec.workers {
                let (channel, tag, rx) = subscribe(&link, &names.worker(*worker), spec.prefetch).await?;
                consumers.push((*worker, channel, tag, rx));
            }
            let unrouted = subscribe(&link, &names.unrouted(), UNROUTED_PREFETCH).await?;
            Ok::<_, TransportError>((confirm, consumers, unrouted))
        };
        let (confirm, consumers, unrouted) = match opened.await {
            Ok(opened) => opened,
            Err(e) => {
                link.close().await;
                return Err(e);
            }
        };
        spec.current.store(generation, Ordering::SeqCst);
        let channels = consumers.iter().map(|(w, channel, _, _)| (*w, channel.clone())).collect();
        let current = spec.current.clone();
        let shared = Arc::new(SessionShared { generation, current, channels, confirm, names: names.clone() });
        let mut pumps = Vec::new();
        for (worker, channel, tag, rx) in consumers {
            let pump = Pump { side_unsettled: self.unsettled.clone(), runtime: self.runtime.clone(), shared: shared.clone() };
            pumps.push(tokio::spawn(pump.run(worker, channel, tag, rx, tx.clone(), stop.clone(), link.lost.clone())));
        }
        let (channel, tag, rx) = unrouted;
        pumps.push(tokio::spawn(park_unrouted(shared.clone(), channel, tag, rx, stop.clone(), link.lost.clone())));
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

/// A channel with `prefetch` consuming `queue` with manual acks.
async fn subscribe(link: &Link, queue: &str, prefetch: u16) -> Result<(Channel, String, UnboundedReceiver<ConsumerMessage>), TransportError> {
    let (channel, _) = open_channel(link, &link.lost, None).await?;
    let consumed = async {
        // The only bound on what amqprs buffers: its internal queue is unbounded.
        channel.basic_qos(BasicQosArguments::new(0, prefetch, false)).await?;
        channel.basic_consume_rx(BasicConsumeArguments::new(queue, "").manual_ack(true).finish()).await
    };
    match consumed.await {
        Ok((tag, rx)) => Ok((channel, tag, rx)),
        Err(e) => Err(TransportError(format!("cannot consume {queue}: {e}"))),
    }
}

/// Forwards one worker queue's deliveries to the reader.
struct Pump {
    side_unsettled: Arc<AtomicU64>,
    runtime: Handle,
    shared: Arc<SessionShared>,
}

impl Pump {
    async fn run(
        self,
        worker: WorkerKind,
        channel: Channel,
        tag: String,
        mut rx: UnboundedReceiver<ConsumerMessage>,
        tx: mpsc::Sender<Delivery>,
        stop: CancellationToken,
        lost: CancellationToken,
    ) {
        loop {
            let message = tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = lost.cancelled() => return,
                message = rx.recv() => message,
            };
            let Some(message) = message else {
                // The channel or connection is gone (amqprs ends the receiver).
                lost.cancel();
                return;
            };
            let Some(delivery) = self.delivery(worker, message) else { continue };
            // A delivery dropped here (stopped, or no reader) is handed back by its settler.
            tokio::select! {
                sent = tx.send(delivery) => if sent.is_err() { break },
                _ = stop.cancelled() => break,
                _ = lost.cancelled() => return,
            }
        }
        stop_consuming(&channel, &tag, &mut rx).await;
    }

    fn delivery(&self, worker: WorkerKind, message: ConsumerMessage) -> Option<Delivery> {
        let (Some(deliver), Some(props), Some(body)) = (message.deliver, message.basic_properties, message.content) else {
            return None;
        };
        let routing_key = message::routing_key(&props, deliver.routing_key());
        let delivered = Delivered { worker, tag: deliver.delivery_tag(), routing_key: routing_key.clone(), props: props.clone(), body: body.clone() };
        let settler = RabbitSettler::new(&self.shared, delivered, self.side_unsettled.clone(), self.runtime.clone());
        Some(Delivery {
            worker,
            routing_key,
            body,
            attempt: message::attempt(&props),
            redelivered: deliver.redelivered(),
            correlation_id: props.correlation_id().cloned(),
            settler: Box::new(settler),
        })
    }
}

/// Cancels the consumer, then hands back what amqprs already buffered for it.
async fn stop_consuming(channel: &Channel, tag: &str, rx: &mut UnboundedReceiver<ConsumerMessage>) {
    if !usable(channel) {
        return;
    }
    // After CancelOk nothing more arrives for this consumer: the drain below is complete.
    if let Err(e) = channel.basic_cancel(BasicCancelArguments::new(tag)).await {
        tracing::debug!(error = %e, "cancelling a consumer");
    }
    while let Ok(message) = rx.try_recv() {
        if let Some(deliver) = message.deliver {
            let _ = reject_requeue(channel, deliver.delivery_tag()).await;
        }
    }
}

/// Moves each unrouted event into `P.unrouted.parked` with the reason, then acks it.
async fn park_unrouted(
    shared: Arc<SessionShared>,
    channel: Channel,
    tag: String,
    mut rx: UnboundedReceiver<ConsumerMessage>,
    stop: CancellationToken,
    lost: CancellationToken,
) {
    let lot = shared.names.parked(UNROUTED);
    loop {
        let message = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = lost.cancelled() => return,
            message = rx.recv() => message,
        };
        let Some(message) = message else {
            lost.cancel();
            return;
        };
        let (Some(deliver), Some(props), Some(body)) = (message.deliver, message.basic_properties, message.content) else {
            continue;
        };
        let routing_key = deliver.routing_key().clone();
        let reason = format!("no worker subscribes to event type \"{routing_key}\"");
        let props = with_headers(&props, parking_headers(UNROUTED, &routing_key, &reason, 0), &[]);
        let delivery_tag = deliver.delivery_tag();
        match shared.confirm.publish_confirmed("", &lot, props, body).await {
            Ok(()) if usable(&channel) => {
                tracing::warn!(%routing_key, "parked an event no worker subscribes to");
                if let Err(e) = channel.basic_ack(BasicAckArguments::new(delivery_tag, false)).await {
                    tracing::warn!(error = %e, "cannot ack a parked unrouted event; it comes again");
                }
            }
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(error = %e, %routing_key, "cannot park an unrouted event yet");
                // Not a hot loop when the broker keeps refusing.
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = reject_requeue(&channel, delivery_tag).await;
            }
        }
    }
    stop_consuming(&channel, &tag, &mut rx).await;
}
