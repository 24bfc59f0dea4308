//! Opening connections and channels, noticing when they go, and the capped
//! backoff between reconnect attempts.
//!
//! amqprs has no automatic reconnect and reports a lost connection three ways:
//! the connection callback (server close, e.g. 320 CONNECTION_FORCED),
//! `listen_network_io_failure` (socket or heartbeat failure) and consumer
//! receivers ending. Each of them cancels one token, `Link::lost`, which is what
//! the rest of the transport watches.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amqprs::callbacks::{ChannelCallback, ConnectionCallback};
use amqprs::channel::Channel;
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{Ack, BasicProperties, Cancel, Close, CloseChannel, Nack, Return};
use async_trait::async_trait;
use blog_actors::delivery::TransportError;
use tokio_util::sync::CancellationToken;

use super::confirms::Confirms;

/// A TCP connect to a black-holed host would otherwise hang for minutes.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a clean close may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Fallback check for a loss that happened before the I/O listener subscribed.
const LIVENESS_POLL: Duration = Duration::from_secs(1);

/// One open connection and the token cancelled when it is gone.
pub(super) struct Link {
    pub conn: Connection,
    pub lost: CancellationToken,
    /// Which node of the list (`Nodes`) it is connected to.
    pub node: usize,
}

impl Link {
    pub(super) fn is_alive(&self) -> bool {
        !self.lost.is_cancelled() && self.conn.is_open()
    }

    /// Closes the connection (a no-op when the broker already dropped it).
    pub(super) async fn close(&self) {
        self.lost.cancel();
        // Bounded: towards a black-holed broker the CloseOk would never come.
        match tokio::time::timeout(CLOSE_TIMEOUT, self.conn.clone().close()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "closing an AMQP connection"),
            Err(_) => tracing::warn!(connection = self.conn.connection_name(), "RabbitMQ did not answer the close in time"),
        }
    }
}

/// Opens a connection named `name` (shown by `rabbitmqctl list_connections`) to
/// node `node` of the list; `Nodes::open` picks the node.
pub(super) async fn open(args: &OpenConnectionArguments, name: &str, node: usize) -> Result<Link, TransportError> {
    let mut args = args.clone();
    args.connection_name(name);
    let conn = match tokio::time::timeout(OPEN_TIMEOUT, Connection::open(&args)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) if e.to_string().contains("certificate") => {
            return Err(TransportError::refused(
                "cannot connect to RabbitMQ: its TLS certificate is not trusted; \
                 BLOG_AMQP_CA_FILE must name the CA that signed it",
                e,
            ))
        }
        Ok(Err(e)) => return Err(TransportError::unavailable("cannot connect to RabbitMQ", e)),
        Err(e) => return Err(TransportError::unavailable(format!("cannot connect to RabbitMQ within {OPEN_TIMEOUT:?}"), e)),
    };
    let lost = CancellationToken::new();
    let callback = ConnectionWatch { name: name.to_owned(), lost: lost.clone() };
    if let Err(e) = conn.register_callback(callback).await {
        let _ = conn.close().await;
        return Err(TransportError::unavailable("cannot watch the RabbitMQ connection", e));
    }
    tokio::spawn(watch_io(conn.clone(), lost.clone()));
    tracing::info!(connection = name, "connected to RabbitMQ");
    Ok(Link { conn, lost, node })
}

/// Cancels `lost` on a network or heartbeat failure, or when the connection is found closed.
async fn watch_io(conn: Connection, lost: CancellationToken) {
    let io_failure = conn.listen_network_io_failure();
    tokio::pin!(io_failure);
    let mut poll = tokio::time::interval(LIVENESS_POLL);
    loop {
        tokio::select! {
            _ = lost.cancelled() => return,
            network = &mut io_failure => {
                tracing::warn!(connection = conn.connection_name(), network, "RabbitMQ connection ended");
                break;
            }
            _ = poll.tick() => if !conn.is_open() { break },
        }
    }
    lost.cancel();
}

/// Opens a channel whose closing, server-side consumer cancel or publisher
/// confirms are reported. Without a callback, a server cancel leaves `recv()` hanging.
pub(super) async fn open_channel(
    link: &Link,
    lost: &CancellationToken,
    confirms: Option<Arc<Confirms>>,
) -> Result<(Channel, CloseReason), TransportError> {
    let channel = link
        .conn
        .open_channel(None)
        .await
        .map_err(|e| TransportError::unavailable("cannot open an AMQP channel", e))?;
    let reason = CloseReason::default();
    let watch = ChannelWatch { lost: lost.clone(), reason: reason.clone(), confirms };
    if let Err(e) = channel.register_callback(watch).await {
        let _ = channel.close().await;
        return Err(TransportError::unavailable("cannot watch an AMQP channel", e));
    }
    Ok((channel, reason))
}

/// Whether a delivery tag or publish may still go out on `channel`. A method sent
/// on a channel the server closed makes it close the whole connection (504).
pub(super) fn usable(channel: &Channel) -> bool {
    channel.is_open() && channel.is_connection_open()
}

/// Why the server closed a channel, e.g. `406 PRECONDITION_FAILED - inequivalent arg ...`.
#[derive(Clone, Default)]
pub(super) struct CloseReason(Arc<Mutex<Option<(u16, String)>>>);

impl CloseReason {
    pub(super) fn get(&self) -> Option<(u16, String)> {
        self.0.lock().ok().and_then(|reason| reason.clone())
    }

    fn set(&self, code: u16, text: String) {
        if let Ok(mut reason) = self.0.lock() {
            *reason = Some((code, text));
        }
    }
}

struct ConnectionWatch {
    name: String,
    lost: CancellationToken,
}

#[async_trait]
impl ConnectionCallback for ConnectionWatch {
    async fn close(&mut self, _: &Connection, close: Close) -> Result<(), amqprs::error::Error> {
        tracing::warn!(connection = %self.name, code = close.reply_code(), reason = %close.reply_text(), "RabbitMQ closed the connection");
        self.lost.cancel();
        Ok(())
    }

    async fn blocked(&mut self, _: &Connection, reason: String) {
        // A resource alarm: publishes (and so confirms) wait until it clears.
        tracing::warn!(connection = %self.name, %reason, "RabbitMQ blocked the connection");
    }

    async fn unblocked(&mut self, _: &Connection) {
        tracing::info!(connection = %self.name, "RabbitMQ unblocked the connection");
    }

    async fn secret_updated(&mut self, _: &Connection) {}
}

struct ChannelWatch {
    lost: CancellationToken,
    reason: CloseReason,
    confirms: Option<Arc<Confirms>>,
}

#[async_trait]
impl ChannelCallback for ChannelWatch {
    async fn close(&mut self, channel: &Channel, close: CloseChannel) -> Result<(), amqprs::error::Error> {
        let text = close.reply_text().clone();
        tracing::warn!(channel = %channel, code = close.reply_code(), reason = %text, "RabbitMQ closed a channel");
        if let Some(confirms) = &self.confirms {
            confirms.fail_all(&format!("channel closed: {} {text}", close.reply_code()));
        }
        self.reason.set(close.reply_code(), text);
        self.lost.cancel();
        // An Err here would stop amqprs from answering CloseOk.
        Ok(())
    }

    async fn cancel(&mut self, channel: &Channel, cancel: Cancel) -> Result<(), amqprs::error::Error> {
        tracing::warn!(channel = %channel, consumer = %cancel.consumer_tag(), "RabbitMQ cancelled a consumer (queue deleted?)");
        self.lost.cancel();
        Ok(())
    }

    async fn flow(&mut self, _: &Channel, _active: bool) -> Result<bool, amqprs::error::Error> {
        Ok(true)
    }

    async fn publish_ack(&mut self, _: &Channel, ack: Ack) {
        if let Some(confirms) = &self.confirms {
            confirms.settle(ack.delivery_tag(), ack.mutiple(), Ok(()));
        }
    }

    async fn publish_nack(&mut self, _: &Channel, nack: Nack) {
        if let Some(confirms) = &self.confirms {
            confirms.settle(nack.delivery_tag(), nack.multiple(), Err("the broker refused the message (nack)"));
        }
    }

    async fn publish_return(&mut self, _: &Channel, ret: Return, _: BasicProperties, _: Vec<u8>) {
        // Nothing is published `mandatory`; unknown event types go to the alternate exchange.
        tracing::warn!(code = ret.reply_code(), reason = %ret.reply_text(), "a message came back unroutable");
    }
}

/// Capped exponential backoff with ±20 % jitter, so instances that lost the same
/// broker do not all knock at once. Written out (15 lines) rather than a crate:
/// the loop around it also has to watch two cancellation tokens.
pub(super) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(super) fn new(min: Duration, max: Duration) -> Self {
        Self { next: min, max }
    }

    pub(super) fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        // A randomly keyed hasher is std's cheapest source of a random number.
        let random = RandomState::new().build_hasher().finish();
        let factor = 0.8 + (random % 401) as f64 / 1000.0;
        base.mul_f64(factor).min(self.max)
    }
}
