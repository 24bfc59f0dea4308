//! The broker side of the events section: publishing post events, and the
//! baseline — a bare amqprs consume-and-ack loop on the same broker.
//!
//! The baseline has the service's shape without its work: a durable topic
//! exchange, two durable queues bound to `post.created` (the service's tag
//! aggregator and projector queues both take it), one channel per queue with
//! the same prefetch, each delivery acked on its own as soon as it arrives. So
//! the broker does the same routing, persistence and delivery work per event
//! in both, and the ratio shows what the service's own path costs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amqprs::channel::{
    BasicAckArguments, BasicConsumeArguments, BasicPublishArguments, BasicQosArguments, Channel, ExchangeDeclareArguments,
    ExchangeDeleteArguments, QueueBindArguments, QueueDeclareArguments, QueueDeleteArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::BasicProperties;
use anyhow::{bail, Context as _};

/// Messages published between two looks at the queues.
pub const PUBLISH_CHUNK: usize = 100;
/// Most messages left ready (not yet delivered) in a consumer's queue before
/// the publisher waits: the run measures a steady state, where the consumers
/// keep up with what arrives, not how fast a publisher can pile up a backlog
/// that the broker then pages to its message store and reads back (which
/// costs it about twice the CPU per message: BENCHMARKS.md, section 1).
/// With the unacked messages a consumer holds (its prefetch) that keeps it fed.
pub const READY_MAX: u32 = 200;

/// One post event as published: its routing key, message id and body.
pub struct Message {
    pub routing_key: String,
    pub id: String,
    pub body: Vec<u8>,
}

pub async fn connect(url: &str, name: &str) -> anyhow::Result<Connection> {
    let mut args = OpenConnectionArguments::try_from(url).map_err(|e| anyhow::anyhow!("AMQP URL: {e}"))?;
    args.connection_name(name);
    Connection::open(&args).await.with_context(|| format!("connecting to RabbitMQ at {url}"))
}

/// Publishes every message to `exchange`, persistent, as another service would,
/// pausing while any of `queues` holds more than [`READY_MAX`] ready messages.
/// No publisher confirms: the bench's check is that every event's effect arrives.
pub async fn publish(channel: &Channel, exchange: &str, queues: &[String], messages: &[Message]) -> anyhow::Result<()> {
    for chunk in messages.chunks(PUBLISH_CHUNK) {
        while most_ready(channel, queues).await? > READY_MAX {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for m in chunk {
            let mut props = BasicProperties::default();
            props
                .with_delivery_mode(2)
                .with_content_type("application/json")
                .with_message_id(&m.id)
                .with_message_type(&m.routing_key);
            channel
                .basic_publish(props, m.body.clone(), BasicPublishArguments::new(exchange, &m.routing_key))
                .await
                .context("publishing")?;
        }
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// The names of the registered workers that take post events.
pub fn post_workers() -> Vec<&'static str> {
    blog::startup::registered_workers().subscribers("post.created").into_iter().map(|w| w.name()).collect()
}

/// The service's queues that take post events under `prefix` (the bare loop
/// declares the same ones).
pub fn post_queues(prefix: &str) -> Vec<String> {
    post_workers().iter().map(|w| format!("{prefix}.{w}")).collect()
}

/// The most ready messages in any of `queues` (a passive declare of each).
async fn most_ready(channel: &Channel, queues: &[String]) -> anyhow::Result<u32> {
    let mut most = 0;
    for queue in queues {
        let declared = channel
            .queue_declare(QueueDeclareArguments::new(queue).passive(true).finish())
            .await
            .with_context(|| format!("looking at queue {queue}"))?;
        most = most.max(declared.map_or(0, |(_, ready, _)| ready));
    }
    Ok(most)
}

/// Waits for a teardown step at most five seconds; its answer does not matter.
async fn bounded<T>(step: impl std::future::Future<Output = T>) {
    let _ = tokio::time::timeout(Duration::from_secs(5), step).await;
}

/// The type of the bare loop's queues: the service's default, or the older kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    Quorum,
    Classic,
}

/// The bare loop: events per second from the first publish to the last ack of
/// both queues (of `kind`), `messages` published while the consumers run.
pub async fn bare_consume_ack(url: &str, prefetch: u16, messages: &[Message], limit: Duration, kind: QueueKind) -> anyhow::Result<f64> {
    let prefix = format!("bench-bare-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let connection = connect(url, &format!("{prefix}-consume")).await?;
    let publisher = connect(url, &format!("{prefix}-publish")).await?;
    let setup = connection.open_channel(None).await?;
    let exchange = format!("{prefix}.events");
    setup.exchange_declare(ExchangeDeclareArguments::new(&exchange, "topic").durable(true).finish()).await?;
    let queues = post_queues(&prefix);
    for queue in &queues {
        let mut args = amqprs::FieldTable::new();
        if kind == QueueKind::Quorum {
            args.insert("x-queue-type".try_into().unwrap_or_default(), amqprs::FieldValue::from("quorum"));
        }
        setup.queue_declare(QueueDeclareArguments::durable_client_named(queue).arguments(args).finish()).await?;
        for key in ["post.created", "post.updated", "post.deleted"] {
            setup.queue_bind(QueueBindArguments::new(queue, &exchange, key)).await?;
        }
    }
    let acked = Arc::new(AtomicU64::new(0));
    let mut consumers = Vec::new();
    for queue in &queues {
        let channel = connection.open_channel(None).await?;
        channel.basic_qos(BasicQosArguments::new(0, prefetch, false)).await?;
        let (_, mut rx) = channel.basic_consume_rx(BasicConsumeArguments::new(queue, "").manual_ack(true).finish()).await?;
        let acked = acked.clone();
        consumers.push(tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                if let Some(deliver) = message.deliver {
                    if channel.basic_ack(BasicAckArguments::new(deliver.delivery_tag(), false)).await.is_err() {
                        break;
                    }
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
            channel
        }));
    }
    let publish_channel = publisher.open_channel(None).await?;
    let wanted = 2 * messages.len() as u64;
    let started = Instant::now();
    publish(&publish_channel, &exchange, &queues, messages).await?;
    while acked.load(Ordering::Relaxed) < wanted {
        if started.elapsed() > limit {
            bail!("the bare loop acked {} of {wanted} deliveries within {limit:?}", acked.load(Ordering::Relaxed));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = messages.len() as f64 / started.elapsed().as_secs_f64();
    // The publisher goes first: a quorum queue deleted while the publishing channel
    // still waits for its flow credit leaves that connection in `flow` for good, and
    // its close is then never read (seen: the quick bench hung in publisher.close()).
    // Every close is bounded, so a broker that misbehaves costs seconds, not the run.
    bounded(publish_channel.close()).await;
    bounded(publisher.close()).await;
    for queue in &queues {
        bounded(setup.queue_delete(QueueDeleteArguments::new(queue))).await;
    }
    bounded(setup.exchange_delete(ExchangeDeleteArguments::new(&exchange))).await;
    bounded(connection.close()).await;
    for consumer in consumers {
        consumer.abort();
    }
    Ok(rate)
}
