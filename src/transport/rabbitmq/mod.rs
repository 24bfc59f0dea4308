//! The production transport: RabbitMQ through amqprs.
//!
//! - Topology (see `topology`): a topic exchange per deployment prefix, a queue
//!   per worker, TTL retry queues per delay level, parking lots; declared at
//!   connect and after every reconnect.
//! - Two connections, named `blog-<prefix>-publish-<pid>` and
//!   `blog-<prefix>-consume-<pid>` (as `rabbitmqctl list_connections name` shows):
//!   publishing (outbox relay, CLI, dead-letter admin) and consuming, so a
//!   blocked publisher never stalls acks.
//! - Everything amqprs runs on one dedicated thread (`runtime`); the public
//!   methods hand their work to it and await the answer, so no actix arbiter
//!   ever runs a socket task and no channel is dropped outside its runtime.
//! - At least once: a delivery is acked only after its verdict took effect
//!   (for retry and park, after the copy is confirmed); whatever is not acked
//!   when a connection ends is delivered again.
//!
//! - Several nodes (`nodes`): the URL may list a cluster's nodes; each connection
//!   goes to the first answering and moves round the list when it is lost.
//! - Quorum or classic queues (`queues`), quorum by default.
//!
//! Startup: `RabbitTransport::connect_with(urls, prefix, RetryPolicy::delay_levels(), workers, queues)`;
//! shutdown: `Transport::close()` (consumers cancelled, channels and connections
//! closed, the thread ended). Dropping the last clone without `close` does the
//! same without waiting.

mod ack_window;
mod broker_said;
mod confirm;
mod confirms;
mod connection;
mod consumer;
mod dead_letters;
mod message;
mod held_counts;
mod nodes;
mod parked_bulk;
mod publisher;
mod pump;
mod queues;
mod runtime;
mod session;
mod settle;
mod tls;
mod topology;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use blog_actors::delivery::{Delivery, DeliverySource, TransportError};
use blog_actors::worker::{WorkerKind, Workers};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use self::queues::{QueueOptions, QueueType, DEFAULT_DELIVERY_LIMIT};


use self::consumer::ConsumeSide;
use self::nodes::Nodes;
use self::publisher::PublishSide;
use self::runtime::AmqpRuntime;
use self::topology::Names;
use super::parked_query::{ParkedFilter, ParkedPage};
use super::replay_throttle::ReplayThrottle;
use super::{DeadLetters, ParkedMessage, Publisher, RetryLevelCount, Transport};
use crate::transport::OutgoingMessage;

/// How the transport declares its queues and trusts `amqps://` servers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RabbitOptions {
    pub queues: QueueOptions,
    /// PEM CA certificate(s) an `amqps://` server must chain to; `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl From<QueueOptions> for RabbitOptions {
    fn from(queues: QueueOptions) -> Self {
        Self { queues, ca_file: None }
    }
}

/// What every connection is opened with.
struct Config {
    nodes: Nodes,
    names: Names,
    queues: QueueOptions,
    /// Parked messages the dead-letter calls hold now, so the counts include them.
    held: held_counts::HeldCounts,
}

impl Config {
    /// `blog-<prefix>-<role>-<pid>`: lets an operator (or a test) find and close it.
    fn connection_name(&self, role: &str) -> String {
        format!("blog-{}-{role}-{}", self.names.prefix(), std::process::id())
    }
}

/// The RabbitMQ transport; cheap to clone (every clone is the same transport).
#[derive(Clone)]
pub struct RabbitTransport {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: AmqpRuntime,
    cfg: Arc<Config>,
    publisher: Arc<PublishSide>,
    consumer: Arc<ConsumeSide>,
    /// Dead-letter calls hold parked messages while they read: one at a time.
    admin: Arc<tokio::sync::Mutex<()>>,
}

impl RabbitTransport {
    /// `connect_with` the default queues (quorum).
    pub async fn connect(
        urls: &str,
        prefix: &str,
        retry_delays: Vec<Duration>,
        workers: Workers,
    ) -> Result<RabbitTransport, TransportError> {
        Self::connect_with(urls, prefix, retry_delays, workers, RabbitOptions::default()).await
    }

    /// Connects to the first answering node of `urls` (one AMQP URL or a
    /// comma-separated list of one cluster's nodes), declares the topology and
    /// opens the publisher. `retry_delays` are the delay levels
    /// (`RetryPolicy::delay_levels`): one retry queue each. Fails with a clear
    /// error when a queue exists with other settings.
    pub async fn connect_with(
        urls: &str,
        prefix: &str,
        retry_delays: Vec<Duration>,
        workers: Workers,
        options: impl Into<RabbitOptions>,
    ) -> Result<RabbitTransport, TransportError> {
        let RabbitOptions { queues, ca_file } = options.into();
        let nodes = Nodes::parse(urls, ca_file.as_deref())?;
        let names = Names::new(prefix, &retry_delays, workers)?;
        let cfg = Arc::new(Config { nodes, names, queues, held: Default::default() });
        let runtime = AmqpRuntime::start("amqp")?;
        let inner = Inner {
            publisher: Arc::new(PublishSide::new(cfg.clone())),
            consumer: Arc::new(ConsumeSide::new(cfg.clone(), runtime.handle())),
            runtime,
            cfg,
            admin: Arc::new(tokio::sync::Mutex::new(())),
        };
        let transport = Self { inner: Arc::new(inner) };
        let publisher = transport.inner.publisher.clone();
        if let Err(e) = transport.inner.runtime.run(async move { publisher.session().await.map(drop) }).await {
            transport.close().await;
            return Err(e);
        }
        Ok(transport)
    }

    /// Deletes every queue and exchange of `prefix`, messages included: for
    /// tests and for decommissioning a deployment. Call on a closed transport.
    /// (`amqps://` nodes are trusted by the system's roots here.)
    pub async fn delete_topology(
        urls: &str,
        prefix: &str,
        retry_delays: &[Duration],
        workers: Workers,
    ) -> Result<(), TransportError> {
        let nodes = Nodes::parse(urls, None)?;
        let names = Names::new(prefix, retry_delays, workers)?;
        let link = nodes.open(&format!("blog-{prefix}-admin")).await?;
        let open = || async { link.conn.open_channel(None).await.map_err(|e| TransportError::unavailable("opening a channel", e)) };
        let mut channel = open().await?;
        // A failed delete closes the channel: note it, open another, go on with the rest.
        let mut first_failure = None;
        for queue in names.all_queues() {
            if let Err(e) = channel.queue_delete(amqprs::channel::QueueDeleteArguments::new(&queue)).await {
                first_failure.get_or_insert(TransportError::refused(format!("deleting queue {queue}"), e));
                channel = open().await?;
            }
        }
        for exchange in names.all_exchanges() {
            if let Err(e) = channel.exchange_delete(amqprs::channel::ExchangeDeleteArguments::new(&exchange)).await {
                first_failure.get_or_insert(TransportError::refused(format!("deleting exchange {exchange}"), e));
                channel = open().await?;
            }
        }
        let _ = channel.close().await;
        link.close().await;
        first_failure.map_or(Ok(()), Err)
    }

    /// `delete_topology` for code that cannot await (a test's `Drop`): on a thread
    /// with a runtime of its own, given ten seconds.
    pub fn delete_topology_blocking(urls: &str, prefix: &str, retry_delays: &[Duration], workers: Workers) -> Result<(), String> {
        let (urls, prefix, delays) = (urls.to_owned(), prefix.to_owned(), retry_delays.to_vec());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            let delete = Self::delete_topology(&urls, &prefix, &delays, workers);
            match runtime.block_on(async { tokio::time::timeout(Duration::from_secs(10), delete).await }) {
                Ok(done) => done.map_err(|e| e.to_string()),
                Err(_) => Err(format!("deleting the topology of {prefix} took over ten seconds")),
            }
        })
        .join()
        .map_err(|_| "the cleanup thread panicked".to_owned())?
    }

    /// The name a connection of `role` (`publish` or `consume`) has on the broker.
    pub fn connection_name(&self, role: &str) -> String {
        self.inner.cfg.connection_name(role)
    }

    /// The node (its URL without credentials) the consumers use now, else the publisher's.
    pub fn node_in_use(&self) -> Option<String> {
        let node = self.inner.consumer.node().or_else(|| self.inner.publisher.node())?;
        self.inner.cfg.nodes.label(node).map(str::to_owned)
    }
}

#[async_trait]
impl Publisher for RabbitTransport {
    async fn publish(&self, entries: &[OutgoingMessage]) -> Result<(), TransportError> {
        let (publisher, entries) = (self.inner.publisher.clone(), entries.to_vec());
        self.inner.runtime.run(async move { publisher.publish(entries).await }).await
    }
}

#[async_trait]
impl DeliverySource for RabbitTransport {
    async fn consume(&self, workers: &[WorkerKind], prefetch: u16, stop: CancellationToken) -> Result<mpsc::Receiver<Delivery>, TransportError> {
        let (consumer, workers) = (self.inner.consumer.clone(), workers.to_vec());
        self.inner.runtime.run(consumer.consume(workers, prefetch, stop)).await
    }

    fn is_consuming(&self) -> bool {
        self.inner.consumer.is_consuming()
    }

    fn set_feed(&self, worker: WorkerKind, feed: blog_actors::pause::Feed) {
        self.inner.consumer.feeds.set(worker, feed);
    }
}

impl Inner {
    /// Runs a dead-letter operation on the publisher connection, one at a time.
    async fn admin<T, F, Fut>(&self, op: F) -> Result<T, TransportError>
    where
        F: FnOnce(Arc<publisher::PubSession>, Arc<Config>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, TransportError>> + Send,
        T: Send + 'static,
    {
        let (publisher, cfg, admin) = (self.publisher.clone(), self.cfg.clone(), self.admin.clone());
        self.runtime
            .run(async move {
                let _one_at_a_time = admin.lock().await;
                let session = publisher.session().await?;
                op(session, cfg).await
            })
            .await
    }
}

#[async_trait]
impl DeadLetters for RabbitTransport {
    async fn list_parked(&self, limit: usize) -> Result<Vec<ParkedMessage>, TransportError> {
        self.inner.admin(move |s, cfg| async move { dead_letters::list(&s, &cfg.names, limit).await }).await
    }

    async fn replay_parked(&self, id: &str) -> Result<bool, TransportError> {
        let id = id.to_owned();
        self.inner.admin(move |s, cfg| async move { dead_letters::take(&s, &cfg.names, &cfg.held, &id, true).await }).await
    }

    async fn delete_parked(&self, id: &str) -> Result<bool, TransportError> {
        let id = id.to_owned();
        self.inner.admin(move |s, cfg| async move { dead_letters::take(&s, &cfg.names, &cfg.held, &id, false).await }).await
    }

    /// Ready plus held by a dead-letter call: no lock, so a scrape never waits behind a replay.
    async fn parked_count(&self) -> Result<u64, TransportError> {
        Ok(self.parked_by_worker().await?.into_iter().map(|(_, n)| n).sum())
    }

    async fn query_parked(&self, filter: &ParkedFilter, offset: usize, limit: usize) -> Result<ParkedPage, TransportError> {
        let filter = filter.clone();
        self.inner.admin(move |s, cfg| async move { parked_bulk::query(&s, &cfg.names, &cfg.held, &filter, offset, limit).await }).await
    }

    async fn replay_matching(&self, filter: &ParkedFilter, throttle: &ReplayThrottle) -> Result<u64, TransportError> {
        let (filter, throttle) = (filter.clone(), throttle.clone());
        self.inner.admin(move |s, cfg| async move { parked_bulk::act(&s, &cfg.names, &cfg.held, &filter, Some(&throttle)).await }).await
    }

    async fn delete_matching(&self, filter: &ParkedFilter) -> Result<u64, TransportError> {
        let filter = filter.clone();
        self.inner.admin(move |s, cfg| async move { parked_bulk::act(&s, &cfg.names, &cfg.held, &filter, None).await }).await
    }

    /// Counts, so no lock: what a dead-letter call holds is added from `held`.
    async fn parked_by_worker(&self) -> Result<Vec<(String, u64)>, TransportError> {
        let (publisher, cfg) = (self.inner.publisher.clone(), self.inner.cfg.clone());
        self.inner.runtime.run(async move { parked_bulk::by_worker(&*publisher.session().await?, &cfg.names, &cfg.held).await }).await
    }

    async fn waiting_for_retry(&self) -> Result<Vec<RetryLevelCount>, TransportError> {
        let (publisher, cfg) = (self.inner.publisher.clone(), self.inner.cfg.clone());
        self.inner.runtime.run(async move { parked_bulk::waiting_for_retry(&*publisher.session().await?, &cfg.names).await }).await
    }
}

#[async_trait]
impl Transport for RabbitTransport {
    fn is_connected(&self) -> bool {
        self.inner.consumer.is_connected() || self.inner.publisher.is_connected()
    }

    fn broker_node(&self) -> Option<String> {
        self.node_in_use()
    }

    fn connection_losses(&self) -> u64 {
        self.inner.consumer.losses.load(Ordering::SeqCst)
    }

    /// Ready messages in the worker, retry and unrouted queues, plus deliveries
    /// handed out and not settled yet.
    async fn pending_deliveries(&self) -> Result<u64, TransportError> {
        let (publisher, cfg) = (self.inner.publisher.clone(), self.inner.cfg.clone());
        let queued = self
            .inner
            .runtime
            .run(async move {
                let session = publisher.session().await?;
                topology::message_count(&session.link, &cfg.names.waiting_queues()).await
            })
            .await?;
        Ok(queued + self.inner.consumer.unsettled.load(Ordering::SeqCst))
    }

    async fn close(&self) {
        let finale = self.inner.finale();
        self.inner.runtime.shutdown(finale).await;
        tracing::info!("RabbitMQ transport closed");
    }
}

impl Inner {
    /// The last work of the AMQP thread: consumers cancelled, connections closed.
    fn finale(&self) -> runtime::Finale {
        let (consumer, publisher) = (self.consumer.clone(), self.publisher.clone());
        Box::pin(async move {
            consumer.close().await;
            publisher.close().await;
        })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A no-op after `close`; otherwise closes in the background.
        let finale = self.finale();
        self.runtime.begin_shutdown(finale);
    }
}
