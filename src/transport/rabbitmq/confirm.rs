//! Publisher confirms: a channel in confirm mode that tells each publisher
//! when the broker has its message.
//!
//! amqprs does not return the sequence number from `basic_publish`, so this
//! counts it: the broker numbers a channel's publishes 1, 2, 3… from
//! `confirm_select` on, in the order they arrive; a lock keeps "take a number"
//! and "send the frame" together so the order matches.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amqprs::channel::{BasicPublishArguments, Channel, ConfirmSelectArguments};
use amqprs::BasicProperties;
use blog_actors::delivery::TransportError;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::connection::{open_channel, usable, Link};

/// A confirm that takes longer than this counts as failed (the caller retries;
/// consumers are idempotent, so a late duplicate is harmless).
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

type Answer = Result<(), String>;

/// Confirms still to come on one channel.
#[derive(Default)]
pub(super) struct Confirms {
    state: Mutex<ConfirmState>,
}

#[derive(Default)]
struct ConfirmState {
    /// The sequence number the last publish got.
    last_seq: u64,
    waiting: BTreeMap<u64, oneshot::Sender<Answer>>,
    /// Set once the channel closed: nothing more will be confirmed.
    failed: Option<String>,
}

impl Confirms {
    fn register(&self) -> Result<(u64, oneshot::Receiver<Answer>), TransportError> {
        let mut state = self.state.lock().map_err(|_| TransportError("confirm state poisoned".into()))?;
        if let Some(reason) = &state.failed {
            return Err(TransportError(format!("publisher channel unusable: {reason}")));
        }
        state.last_seq += 1;
        let (tx, rx) = oneshot::channel();
        let seq = state.last_seq;
        state.waiting.insert(seq, tx);
        Ok((seq, rx))
    }

    /// Answers the publish `tag`, or with `multiple` every one up to it.
    pub(super) fn settle(&self, tag: u64, multiple: bool, answer: Result<(), &str>) {
        let Ok(mut state) = self.state.lock() else { return };
        let answered: Vec<oneshot::Sender<Answer>> = if multiple {
            let rest = state.waiting.split_off(&(tag + 1));
            std::mem::replace(&mut state.waiting, rest).into_values().collect()
        } else {
            state.waiting.remove(&tag).into_iter().collect()
        };
        for tx in answered {
            let _ = tx.send(answer.map_err(str::to_owned));
        }
    }

    /// Fails every publish still waiting: after a channel close their confirms never come.
    pub(super) fn fail_all(&self, reason: &str) {
        let Ok(mut state) = self.state.lock() else { return };
        state.failed = Some(reason.to_owned());
        for (_, tx) in std::mem::take(&mut state.waiting) {
            let _ = tx.send(Err(reason.to_owned()));
        }
    }
}

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
            return Err(TransportError(format!("cannot turn on publisher confirms: {e}")));
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
            return Err(TransportError("the publisher channel is closed".into()));
        }
        let (_seq, rx) = self.confirms.register()?;
        let args = BasicPublishArguments::new(exchange, routing_key);
        if let Err(e) = self.channel.basic_publish(properties, body, args).await {
            // The frame did not go out, so the numbering is off from here: end the channel's use.
            self.confirms.fail_all(&format!("publish failed: {e}"));
            return Err(TransportError(format!("cannot publish: {e}")));
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
        !usable(&self.channel) || self.confirms.state.lock().map_or(true, |state| state.failed.is_some())
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
            Ok(Ok(Err(reason))) => Err(TransportError(format!("not confirmed: {reason}"))),
            Ok(Err(_)) => Err(TransportError("not confirmed: the channel went away".into())),
            Err(_) => Err(TransportError(format!("not confirmed within {CONFIRM_TIMEOUT:?}"))),
        }
    }
}

/// AMQP short strings (routing keys, names) hold at most 255 bytes; amqprs
/// panics on longer ones, so they are refused here.
pub(super) fn check_short(value: &str, what: &str) -> Result<(), TransportError> {
    if value.len() > 255 {
        return Err(TransportError(format!("{what} longer than 255 bytes: {}…", truncate(value, 40))));
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

    #[tokio::test]
    async fn a_multiple_ack_answers_every_publish_up_to_its_tag() {
        let confirms = Confirms::default();
        let rxs: Vec<_> = (0..4).map(|_| confirms.register().map(|(_, rx)| rx)).collect::<Result<_, _>>().unwrap();
        confirms.settle(3, true, Ok(()));
        confirms.fail_all("gone");
        let answers: Vec<Answer> = futures::future::join_all(rxs).await.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(answers, vec![Ok(()), Ok(()), Ok(()), Err("gone".into())]);
        assert!(confirms.register().is_err(), "a failed channel takes no more publishes");
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("añb", 2), "a");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
