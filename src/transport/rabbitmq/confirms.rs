//! The publisher confirms still to come on one channel: each publish takes the
//! next sequence number, and the broker's acks and nacks (fed in by the
//! channel's callback, see `connection.rs`) answer them, one or many at a time.

use std::collections::BTreeMap;
use std::sync::Mutex;

use blog_actors::delivery::TransportError;
use blog_actors::ports::Reason;

use super::broker_said::Said;
use tokio::sync::oneshot;

/// What the broker answered about one publish.
pub(super) type Answer = Result<(), String>;

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
    pub(super) fn register(&self) -> Result<(u64, oneshot::Receiver<Answer>), TransportError> {
        let mut state = self.state.lock().map_err(|_| TransportError::defect("publishing", Reason("the confirm state is poisoned")))?;
        if let Some(reason) = &state.failed {
            return Err(TransportError::unavailable("the publisher channel is unusable", Said(reason.clone())));
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

    /// True once the channel closed: nothing more will be confirmed on it.
    pub(super) fn failed(&self) -> bool {
        self.state.lock().map_or(true, |state| state.failed.is_some())
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
}
