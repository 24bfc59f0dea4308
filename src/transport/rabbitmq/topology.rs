//! The exchanges and queues, their names, and declaring them idempotently.
//!
//! For prefix P:
//! - `P.events`: durable topic exchange, routing key = event type, with
//!   alternate exchange `P.unrouted` (fanout) → queue `P.unrouted`, so an
//!   event no worker subscribes to is kept (and parked by the consumer);
//! - per worker W: queue `P.W` bound with each of W's event types; one retry
//!   queue per delay level `P.W.retry.<ms>` whose messages expire after <ms>
//!   and dead-letter back to `P.W` (a queue per level, so a short delay never
//!   waits behind a long one); parking lot `P.W.parked`;
//! - `P.unrouted.parked`: the parking lot of unrouted events.

use std::time::Duration;

use amqprs::channel::{ExchangeDeclareArguments, QueueBindArguments, QueueDeclareArguments};
use amqprs::{FieldTable, FieldValue};
use blog_actors::delivery::TransportError;
use blog_actors::ports::Reason;
use blog_actors::worker::{WorkerKind, Workers};
use tokio_util::sync::CancellationToken;

use super::broker_said::{reply_or, BrokerReply};
use super::connection::{open_channel, CloseReason, Link};
use super::queues::{Arguments, QueueOptions};

/// The worker name of parked events whose type no worker takes.
pub(super) const UNROUTED: &str = "unrouted";

/// Every name derived from the prefix and the retry levels.
#[derive(Debug, Clone)]
pub(super) struct Names {
    prefix: String,
    /// The registered workers: one queue, its retry levels and a parking lot each.
    pub(super) workers: Workers,
    /// Retry delay levels in milliseconds, ascending, distinct.
    levels: Vec<u64>,
}

impl Names {
    pub(super) fn new(prefix: &str, retry_delays: &[Duration], workers: Workers) -> Result<Self, TransportError> {
        let valid = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
        if prefix.is_empty() || !prefix.chars().all(valid) {
            return Err(TransportError::misconfigured(
                format!("AMQP prefix {prefix:?}"),
                Reason("must be non-empty letters, digits, '-', '_', '.' or ':'"),
            ));
        }
        let mut levels: Vec<u64> = retry_delays.iter().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).collect();
        levels.sort_unstable();
        levels.dedup();
        let names = Self { prefix: prefix.to_owned(), workers, levels };
        for queue in names.all_queues() {
            super::confirm::check_short(&queue, "queue name (shorten BLOG_AMQP_PREFIX)")?;
        }
        Ok(names)
    }

    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }
    pub(super) fn events(&self) -> String {
        format!("{}.events", self.prefix)
    }
    /// Both the fanout exchange and its queue.
    pub(super) fn unrouted(&self) -> String {
        format!("{}.unrouted", self.prefix)
    }
    pub(super) fn worker(&self, worker: WorkerKind) -> String {
        format!("{}.{}", self.prefix, worker.name())
    }
    fn retry(&self, worker: WorkerKind, millis: u64) -> String {
        format!("{}.{}.retry.{millis}", self.prefix, worker.name())
    }
    /// The parking lot of a worker, or of `unrouted`.
    pub(super) fn parked(&self, worker_name: &str) -> String {
        format!("{}.{worker_name}.parked", self.prefix)
    }

    /// The retry queue for `delay`: the smallest level at least that long (the
    /// longest level when none is); `None` when there are no levels at all.
    pub(super) fn retry_queue(&self, worker: WorkerKind, delay: Duration) -> Option<String> {
        let wanted = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let level = self.levels.iter().copied().find(|l| *l >= wanted).or_else(|| self.levels.last().copied())?;
        Some(self.retry(worker, level))
    }

    /// (worker name, level in ms, queue) for every retry level of every worker.
    pub(super) fn retry_levels(&self) -> Vec<(&'static str, u64, String)> {
        self.workers.iter().flat_map(|w| self.levels.iter().map(move |l| (w.name(), *l, self.retry(w, *l)))).collect()
    }

    /// (worker name, parking queue) for every parking lot, workers first.
    pub(super) fn parking_lots(&self) -> Vec<(&'static str, String)> {
        let workers = self.workers.iter().map(|w| (w.name(), self.parked(w.name())));
        workers.chain([(UNROUTED, self.parked(UNROUTED))]).collect()
    }

    /// Where deliveries wait: worker queues, their retry queues and the unrouted queue.
    pub(super) fn waiting_queues(&self) -> Vec<String> {
        let mut queues = Vec::new();
        for worker in self.workers.iter() {
            queues.push(self.worker(worker));
            queues.extend(self.levels.iter().map(|l| self.retry(worker, *l)));
        }
        queues.push(self.unrouted());
        queues
    }

    pub(super) fn all_queues(&self) -> Vec<String> {
        let mut queues = self.waiting_queues();
        queues.extend(self.parking_lots().into_iter().map(|(_, q)| q));
        queues
    }

    pub(super) fn all_exchanges(&self) -> Vec<String> {
        vec![self.events(), self.unrouted()]
    }
}

/// Declares the whole topology on a channel of its own, every queue of the
/// type `queues` says. A name that exists with other settings (another queue
/// type, say) is one clear error, not a crash loop.
pub(super) async fn declare(link: &Link, names: &Names, queues: &QueueOptions) -> Result<(), TransportError> {
    // A failed declare closes only this channel; the connection stays usable.
    let (channel, reason) = open_channel(link, &CancellationToken::new(), None).await?;
    let mut current = String::new();
    let declared = async {
        let unrouted = names.unrouted();
        current = format!("exchange {unrouted}");
        channel.exchange_declare(ExchangeDeclareArguments::new(&unrouted, "fanout").durable(true).finish()).await?;
        current = format!("exchange {}", names.events());
        let mut args = FieldTable::new();
        args.insert(key("alternate-exchange"), FieldValue::from(unrouted.as_str()));
        let events = ExchangeDeclareArguments::new(&names.events(), "topic").durable(true).arguments(args).finish();
        channel.exchange_declare(events).await?;
        current = format!("queue {unrouted}");
        channel.queue_declare(QueueDeclareArguments::durable_client_named(&unrouted).arguments(table(queues.plain())).finish()).await?;
        channel.queue_bind(QueueBindArguments::new(&unrouted, &unrouted, "")).await?;
        for (_, lot) in names.parking_lots() {
            current = format!("queue {lot}");
            channel.queue_declare(QueueDeclareArguments::durable_client_named(&lot).arguments(table(queues.plain())).finish()).await?;
        }
        for worker in names.workers.iter() {
            let queue = names.worker(worker);
            current = format!("queue {queue}");
            let parking_lot = names.parked(worker.name());
            let declare = QueueDeclareArguments::durable_client_named(&queue).arguments(table(queues.worker(&parking_lot))).finish();
            channel.queue_declare(declare).await?;
            for event_type in worker.event_types() {
                channel.queue_bind(QueueBindArguments::new(&queue, &names.events(), event_type)).await?;
            }
            for millis in &names.levels {
                let retry = names.retry(worker, *millis);
                current = format!("queue {retry}");
                let declare = QueueDeclareArguments::durable_client_named(&retry).arguments(table(queues.retry(*millis, &queue))).finish();
                channel.queue_declare(declare).await?;
            }
        }
        Ok::<(), amqprs::error::Error>(())
    }
    .await;
    match declared {
        Ok(()) => {
            let _ = channel.close().await;
            Ok(())
        }
        Err(e) => Err(declare_error(&current, e, &reason)),
    }
}

fn declare_error(what: &str, error: amqprs::error::Error, reason: &CloseReason) -> TransportError {
    match reason.get() {
        Some((406, text)) if text.contains("x-queue-type") => TransportError::refused(
            format!(
                "RabbitMQ refused to declare {what}: it exists as another queue type than BLOG_AMQP_QUEUE_TYPE asks for. \
                 Set BLOG_AMQP_QUEUE_TYPE to the type it has, or migrate the queues (README: \"Moving from classic to quorum queues\")"
            ),
            BrokerReply { code: 406, text },
        ),
        Some((406, text)) => TransportError::refused(
            format!(
                "RabbitMQ refused to declare {what}: it already exists with other settings. \
                 Delete it (e.g. `rabbitmqctl delete_queue <name>`), pick another prefix (BLOG_AMQP_PREFIX) \
                 or check BLOG_AMQP_QUEUE_TYPE and BLOG_AMQP_DELIVERY_LIMIT"
            ),
            BrokerReply { code: 406, text },
        ),
        Some((code, text)) => TransportError::unavailable(format!("cannot declare {what}"), BrokerReply { code, text }),
        None => TransportError::unavailable(format!("cannot declare {what}"), error),
    }
}

/// Ready messages in `queues` (passive declares on a channel of their own).
pub(super) async fn message_count(link: &Link, queues: &[String]) -> Result<u64, TransportError> {
    Ok(message_counts(link, queues).await?.into_iter().sum())
}

/// Ready messages in each of `queues`, in their order.
pub(super) async fn message_counts(link: &Link, queues: &[String]) -> Result<Vec<u64>, TransportError> {
    let (channel, reason) = open_channel(link, &CancellationToken::new(), None).await?;
    let mut counts = Vec::with_capacity(queues.len());
    for queue in queues {
        let passive = QueueDeclareArguments::new(queue).passive(true).finish();
        match channel.queue_declare(passive).await {
            Ok(Some((_, count, _))) => counts.push(u64::from(count)),
            Ok(None) => counts.push(0),
            Err(e) => {
                return Err(TransportError::unavailable(format!("cannot count queue {queue}"), reply_or(reason.get(), e)));
            }
        }
    }
    let _ = channel.close().await;
    Ok(counts)
}

/// The arguments as a declare takes them.
pub(super) fn table(args: Arguments) -> FieldTable {
    let mut table = FieldTable::new();
    for (name, value) in args {
        table.insert(key(name), value);
    }
    table
}

/// A header or argument name; ours are short ASCII literals.
pub(super) fn key(name: &str) -> amqprs::FieldName {
    name.try_into().unwrap_or_default()
}
