//! The tasks between amqprs and the reader: one per worker queue forwarding
//! deliveries, one moving unrouted events into their parking lot. Each ends
//! when its session is lost (amqprs ends the receiver, or a callback cancels
//! `lost`) or when consuming stops; on stop it cancels its consumer and hands
//! back what amqprs already buffered. When a worker's feed changes (stopped:
//! breaker open or paused; probe: half-open) its pump cancels the consumer (its
//! messages wait in the queue) and consumes again with the prefetch of the new feed.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use amqprs::channel::{BasicAckArguments, BasicCancelArguments, BasicConsumeArguments, BasicQosArguments, Channel, ConsumerMessage};
use blog_actors::delivery::{Delivery, TransportError};
use blog_actors::pause::{Feed, FeedSwitch};
use blog_actors::worker::WorkerKind;
use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio_util::sync::CancellationToken;

use super::connection::{open_channel, usable, Link};
use super::session::SessionShared;
use super::message::{self, parking_headers, with_headers};
use super::settle::{release as reject_requeue, Delivered, RabbitSettler};
use super::topology::UNROUTED;

/// A consumer: its channel, its queue, its tag and what amqprs delivers to it.
pub(super) struct Subscription {
    pub channel: Channel,
    queue: String,
    tag: String,
    rx: UnboundedReceiver<ConsumerMessage>,
    /// The prefetch of the full feed.
    prefetch: u16,
    /// The feed the consumer was opened for.
    feed: Feed,
}

/// Consuming `queue` on `channel` with manual acks; its prefetch is the channel's.
async fn consume(channel: &Channel, queue: &str) -> Result<(String, UnboundedReceiver<ConsumerMessage>), TransportError> {
    let args = BasicConsumeArguments::new(queue, "").manual_ack(true).finish();
    channel.basic_consume_rx(args).await.map_err(|e| TransportError::unavailable(format!("cannot consume {queue}"), e))
}

/// A channel with `prefetch` consuming `queue` with manual acks.
pub(super) async fn subscribe(link: &Link, queue: &str, prefetch: u16) -> Result<Subscription, TransportError> {
    let (channel, _) = open_channel(link, &link.lost, None).await?;
    // The only bound on what amqprs buffers: its internal queue is unbounded.
    // Not global: it applies to every consumer opened on the channel later, a resumed one too.
    channel
        .basic_qos(BasicQosArguments::new(0, prefetch, false))
        .await
        .map_err(|e| TransportError::unavailable(format!("cannot consume {queue}"), e))?;
    let (tag, rx) = consume(&channel, queue).await?;
    Ok(Subscription { channel, queue: queue.to_owned(), tag, rx, prefetch, feed: Feed::Full })
}

/// Forwards one worker queue's deliveries to the reader.
pub(super) struct Pump {
    pub side_unsettled: Arc<AtomicU64>,
    pub runtime: Handle,
    pub shared: Arc<SessionShared>,
    /// How much each worker may be fed now.
    pub feeds: FeedSwitch,
}

/// How a change of feed ended.
enum Switched {
    Consuming,
    Stopped,
    Lost,
}

impl Pump {
    pub(super) async fn run(
        self,
        worker: WorkerKind,
        mut sub: Subscription,
        tx: mpsc::Sender<Delivery>,
        stop: CancellationToken,
        lost: CancellationToken,
    ) {
        loop {
            let message = tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = lost.cancelled() => return,
                feed = self.feeds.changed_from(worker, sub.feed) => match self.refeed(worker, feed, &mut sub, &tx, &stop, &lost).await {
                    Switched::Consuming => continue,
                    Switched::Stopped => return,
                    Switched::Lost => {
                        lost.cancel();
                        return;
                    }
                },
                message = sub.rx.recv() => message,
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
        stop_consuming(&mut sub).await;
    }

    /// The worker's feed changed: cancel its consumer, pass on what amqprs had
    /// buffered (the reader sends what it cannot take back at the same attempt,
    /// with a confirmed copy and an ack: a reject-requeue would count toward a
    /// quorum queue's delivery limit), wait while it is stopped, then consume
    /// again with the feed's prefetch (one for a probe).
    async fn refeed(
        &self,
        worker: WorkerKind,
        mut feed: Feed,
        sub: &mut Subscription,
        tx: &mpsc::Sender<Delivery>,
        stop: &CancellationToken,
        lost: &CancellationToken,
    ) -> Switched {
        if !usable(&sub.channel) {
            return Switched::Lost;
        }
        // After CancelOk nothing more arrives for this consumer: the drain below is complete.
        if let Err(e) = sub.channel.basic_cancel(BasicCancelArguments::new(&sub.tag)).await {
            tracing::warn!(%worker, error = %e, "cannot cancel a consumer to change its feed");
            return Switched::Lost;
        }
        while let Ok(message) = sub.rx.try_recv() {
            if let Some(delivery) = self.delivery(worker, message) {
                if tx.send(delivery).await.is_err() {
                    return Switched::Stopped;
                }
            }
        }
        sub.feed = Feed::Stopped;
        while feed == Feed::Stopped {
            tracing::info!(%worker, "consumer cancelled: the worker takes nothing now");
            feed = tokio::select! {
                _ = stop.cancelled() => return Switched::Stopped,
                _ = lost.cancelled() => return Switched::Stopped,
                feed = self.feeds.changed_from(worker, Feed::Stopped) => feed,
            };
        }
        let prefetch = if feed == Feed::Probe { 1 } else { sub.prefetch };
        let consumed = async {
            sub.channel
                .basic_qos(BasicQosArguments::new(0, prefetch, false))
                .await
                .map_err(|e| TransportError::unavailable("cannot set the prefetch", e))?;
            consume(&sub.channel, &sub.queue).await
        };
        match consumed.await {
            Ok((tag, rx)) => {
                (sub.tag, sub.rx, sub.feed) = (tag, rx, feed);
                tracing::info!(%worker, prefetch, "consuming again");
                Switched::Consuming
            }
            Err(e) => {
                tracing::warn!(%worker, error = %e, "cannot consume again; reconnecting");
                Switched::Lost
            }
        }
    }

    fn delivery(&self, worker: WorkerKind, message: ConsumerMessage) -> Option<Delivery> {
        let (Some(deliver), Some(props), Some(body)) = (message.deliver, message.basic_properties, message.content) else {
            return None;
        };
        let routing_key = message::routing_key(&props, deliver.routing_key());
        if let Some(window) = self.shared.window(worker) {
            window.delivered(deliver.delivery_tag());
        }
        let (attempt, correlation_id, body) = (message::attempt(&props), props.correlation_id().cloned(), Bytes::from(body));
        let trace = message::trace_context(&props);
        // The settler keeps the properties and shares the body, for a copy (retry, park).
        let delivered = Delivered { worker, tag: deliver.delivery_tag(), routing_key: routing_key.clone(), props, body: body.clone() };
        let settler = RabbitSettler::new(&self.shared, delivered, self.side_unsettled.clone(), self.runtime.clone());
        Some(Delivery {
            worker,
            routing_key,
            body,
            attempt,
            redelivered: deliver.redelivered(),
            correlation_id,
            trace,
            settler: Box::new(settler),
        })
    }
}

/// Cancels the consumer, then hands back what amqprs already buffered for it.
async fn stop_consuming(sub: &mut Subscription) {
    let channel = &sub.channel;
    if !usable(channel) {
        return;
    }
    // After CancelOk nothing more arrives for this consumer: the drain below is complete.
    if let Err(e) = channel.basic_cancel(BasicCancelArguments::new(&sub.tag)).await {
        tracing::debug!(error = %e, "cancelling a consumer");
    }
    while let Ok(message) = sub.rx.try_recv() {
        if let Some(deliver) = message.deliver {
            let _ = reject_requeue(channel, deliver.delivery_tag()).await;
        }
    }
}

/// Moves each unrouted event into `P.unrouted.parked` with the reason, then acks it.
pub(super) async fn park_unrouted(shared: Arc<SessionShared>, mut sub: Subscription, stop: CancellationToken, lost: CancellationToken) {
    let lot = shared.names.parked(UNROUTED);
    loop {
        let message = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = lost.cancelled() => return,
            message = sub.rx.recv() => message,
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
            Ok(()) if usable(&sub.channel) => {
                tracing::warn!(%routing_key, "parked an event no worker subscribes to");
                if let Err(e) = sub.channel.basic_ack(BasicAckArguments::new(delivery_tag, false)).await {
                    tracing::warn!(error = %e, "cannot ack a parked unrouted event; it comes again");
                }
            }
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(error = %e, %routing_key, "cannot park an unrouted event yet");
                // Not a hot loop when the broker keeps refusing.
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = reject_requeue(&sub.channel, delivery_tag).await;
            }
        }
    }
    stop_consuming(&mut sub).await;
}
