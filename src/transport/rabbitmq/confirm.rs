//! Publisher confirms: a channel in confirm mode that tells each publisher
//! when the broker has its message.
//!
//! amqprs does not return the sequence number from `basic_publish`, so this
//! counts it: the broker numbers a channel's publishes 1, 2, 3… from
//! `confirm_select` on, in the order they arrive; a lock keeps "take a number"
//! and "send the frame" together so the order matches.

use std::sync::Arc;
use std::time::Duration;

use amqprs::channel::{BasicPublishArguments, Channel, ConfirmSelectArguments};
use amqprs::BasicProperties;
use blog_actors::delivery::TransportError;
use blog_actors::ports::Reason;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::broker_said::Said;
use super::connection::{open_channel, usable, Link};
use super::confirms::{Answer, Confirms};

/// A confirm that takes longer than this counts as failed (the caller retries;
/// consumers are idempotent, so a late duplicate is harmless).
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// A channel in confirm mode.
pub(super) struct ConfirmChannel {
    channel: Channel,
    confirms: Arc<Confirms>,
    /// Held from taking a sequence number until the frame is queued.
    order: tokio::sync::Mutex<()>,
}

/// A publish the broker has not confirmed yet.
pub(super) struct Pending(oneshot::Receiver<Answer>);

impl ConfirmChannel {
    /// Opens it on `link`; a close of this channel cancels `lost`.
    pub(super) async fn open(link: &Link, lost: &CancellationToken) -> Result<Self, TransportError> {
        let confirms = Arc::new(Confirms::default());
        let (channel, _) = open_channel(link, lost, Some(confirms.clone())).await?;
        if let Err(e) = channel.confirm_select(ConfirmSelectArguments::new(false)).await {
            let _ = channel.close().await;
            return Err(TransportError::unavailable("cannot turn on publisher confirms", e));
        }
        Ok(Self { channel, confirms, order: tokio::sync::Mutex::new(()) })
    }

    /// Sends one message; await the returned `Pending` for the broker's confirm.
    pub(super) async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        properties: BasicProperties,
        body: Vec<u8>,
    ) -> Result<Pending, TransportError> {
        check_short(routing_key, "routing key")?;
        let _order = self.order.lock().await;
        if !usable(&self.channel) {
            return Err(TransportError::unavailable("cannot publish", Reason("the publisher channel is closed")));
        }
        let (_seq, rx) = self.confirms.register()?;
        let args = BasicPublishArguments::new(exchange, routing_key);
        if let Err(e) = self.channel.basic_publish(properties, body, args).await {
            // The frame did not go out, so the numbering is off from here: end the channel's use.
            self.confirms.fail_all(&format!("publish failed: {e}"));
            return Err(TransportError::unavailable("cannot publish", e));
        }
        Ok(Pending(rx))
    }

    /// Publishes and waits for the confirm.
    pub(super) async fn publish_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        properties: BasicProperties,
        body: Vec<u8>,
    ) -> Result<(), TransportError> {
        self.publish(exchange, routing_key, properties, body).await?.confirmed().await
    }

    /// Whether it can take no more publishes (closed, or its numbering broke).
    pub(super) fn is_failed(&self) -> bool {
        !usable(&self.channel) || self.confirms.failed()
    }

    pub(super) async fn close(&self) {
        self.confirms.fail_all("the publisher channel was closed");
        if let Err(e) = self.channel.clone().close().await {
            tracing::debug!(error = %e, "closing a publisher channel");
        }
    }
}

impl Pending {
    pub(super) async fn confirmed(self) -> Result<(), TransportError> {
        match tokio::time::timeout(CONFIRM_TIMEOUT, self.0).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(reason))) => Err(TransportError::unavailable("not confirmed", Said(reason))),
            Ok(Err(_)) => Err(TransportError::unavailable("not confirmed", Reason("the channel went away"))),
            Err(e) => Err(TransportError::unavailable(format!("not confirmed within {CONFIRM_TIMEOUT:?}"), e)),
        }
    }
}

/// AMQP short strings (routing keys, names) hold at most 255 bytes; amqprs
/// panics on longer ones, so they are refused here.
pub(super) fn check_short(value: &str, what: &str) -> Result<(), TransportError> {
    if value.len() > 255 {
        return Err(TransportError::refused(format!("{what} longer than 255 bytes"), Said(format!("{}…", truncate(value, 40)))));
    }
    Ok(())
}

/// `value` cut to at most `max` bytes on a character boundary.
pub(super) fn truncate(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("añb", 2), "a");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
