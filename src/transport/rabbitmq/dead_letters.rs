//! The dead-letter admin over the parking-lot queues (`P.W.parked` per worker
//! and `P.unrouted.parked`).
//!
//! A queue cannot be read without taking messages out, so these read with
//! `basic_get` (manual ack) on a channel of their own and close it: the broker
//! puts every message it handed that channel, unacked, back in its place. The
//! only message acked is the one replayed or deleted. Calls in this process are
//! serialized (see `RabbitTransport`), since messages held by one call are
//! invisible to another; two instances administering at the same instant could
//! miss each other's held messages for that moment.

use amqprs::channel::{BasicAckArguments, BasicGetArguments, Channel};
use amqprs::{BasicProperties, FieldValue};
use blog_actors::delivery::TransportError;
use blog_actors::ports::Reason;
use tokio_util::sync::CancellationToken;

use super::broker_said::{reply_or, Said};
use super::connection::{open_channel, usable, CloseReason};
use super::held_counts::HeldCounts;
use super::message::{parked_id, parked_message, routing_key, with_headers, ATTEMPT, PARKING_HEADERS};
use super::publisher::PubSession;
use super::topology::{self, Names, UNROUTED};
use crate::transport::ParkedMessage;

/// Messages looked at per parking lot when searching for an id.
const MAX_SCAN: usize = 100_000;

/// The oldest parked messages, at most `limit`, over every parking lot.
pub(super) async fn list(session: &PubSession, names: &Names, limit: usize) -> Result<Vec<ParkedMessage>, TransportError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let (channel, reason) = reading_channel(session).await?;
    let read = async {
        let mut parked = Vec::new();
        for (worker, queue) in names.parking_lots() {
            // Each queue is oldest first, so its first `limit` hold the oldest overall.
            for _ in 0..limit {
                let Some((get, props, body)) = get(&channel, &queue, &reason).await? else { break };
                parked.push(parked_message(worker, &get, &props, &body));
            }
        }
        Ok(parked)
    };
    let parked: Result<Vec<ParkedMessage>, TransportError> = read.await;
    give_back(channel).await;
    let mut parked = parked?;
    parked.sort_by_key(|m| m.parked_at);
    parked.truncate(limit);
    Ok(parked)
}

/// Finds the parked message `id`; replays it (a fresh first attempt to its worker,
/// or to the exchange again when it was unrouted) or just drops it. False when no such id.
pub(super) async fn take(session: &PubSession, names: &Names, held: &HeldCounts, id: &str, replay: bool) -> Result<bool, TransportError> {
    let (channel, reason) = reading_channel(session).await?;
    let found = async {
        for (worker, queue) in names.parking_lots() {
            for _ in 0..MAX_SCAN {
                let Some((get, props, body)) = get(&channel, &queue, &reason).await? else { break };
                held.took(&queue);
                if parked_id(&props, &body) != id {
                    continue; // held until the channel closes, then back in place
                }
                if replay {
                    let (exchange, key) = destination(names, worker, &props, get.routing_key())?;
                    session.confirm.publish_confirmed(&exchange, &key, replay_properties(&props), body).await?;
                }
                if !usable(&channel) {
                    return Err(TransportError::unavailable("taking out a parked message", Reason("the dead-letter channel closed; nothing was removed")));
                }
                let ack = BasicAckArguments::new(get.delivery_tag(), false);
                channel.basic_ack(ack).await.map_err(|e| TransportError::unavailable("cannot remove a parked message", e))?;
                held.settled(&queue);
                settle_barrier(&channel, &queue, &reason, held).await?;
                tracing::info!(%id, worker, replay, "parked message taken out");
                return Ok(true);
            }
        }
        Ok(false)
    };
    let found: Result<bool, TransportError> = found.await;
    give_back_counted(channel, session, held).await;
    found
}

/// Where a replay of a message from parking lot `worker` goes: the worker's
/// queue, or the events exchange again when no worker took it (exchange, routing key).
pub(super) fn destination(names: &Names, worker: &str, props: &BasicProperties, delivered_with: &str) -> Result<(String, String), TransportError> {
    if worker == UNROUTED {
        return Ok((names.events(), routing_key(props, delivered_with)));
    }
    let worker = names.workers.find(worker).ok_or_else(|| TransportError::refused("replaying a parked message", Said(format!("unknown worker {worker}"))))?;
    Ok((String::new(), names.worker(worker)))
}

/// A replay is a fresh first attempt: the parking headers go.
pub(super) fn replay_properties(props: &BasicProperties) -> BasicProperties {
    with_headers(props, vec![(ATTEMPT, FieldValue::l(1))], &PARKING_HEADERS)
}

/// A channel whose failure does not end the publisher session.
pub(super) async fn reading_channel(session: &PubSession) -> Result<(Channel, CloseReason), TransportError> {
    open_channel(&session.link, &CancellationToken::new(), None).await
}

pub(super) async fn get(channel: &Channel, queue: &str, reason: &CloseReason) -> Result<Option<amqprs::channel::GetMessage>, TransportError> {
    channel
        .basic_get(BasicGetArguments::new(queue))
        .await
        .map_err(|e| TransportError::unavailable(format!("cannot read parking lot {queue}"), reply_or(reason.get(), e)))
}

/// Waits until `queue` has applied every ack this channel sent it, before the
/// channel closes. A quorum queue applies acks asynchronously, and closing the
/// channel right after them handed the last few back as if unacked (seen: the
/// last 29–67 of a 10,000-message replay stayed parked). A `basic_get` on the
/// same queue from the same channel is applied after those acks, so its answer
/// is the barrier; a message it takes is held and given back with the rest.
pub(super) async fn settle_barrier(channel: &Channel, queue: &str, reason: &CloseReason, held: &HeldCounts) -> Result<(), TransportError> {
    if get(channel, queue, reason).await?.is_some() {
        held.took(queue);
    }
    Ok(())
}

/// Closes the reading channel and waits (briefly) until the broker shows the
/// held messages ready again: a quorum queue takes them back asynchronously,
/// and until then neither the counts nor the next call would see them.
pub(super) async fn give_back_counted(channel: Channel, session: &PubSession, held: &HeldCounts) {
    give_back(channel).await;
    let waiting = held.all();
    let queues: Vec<String> = waiting.iter().map(|(q, _)| q.clone()).collect();
    for _ in 0..RETURN_CHECKS {
        let Ok(ready) = topology::message_counts(&session.link, &queues).await else { break };
        if ready.iter().zip(&waiting).all(|(ready, (_, held))| ready >= held) {
            break;
        }
        tokio::time::sleep(RETURN_PAUSE).await;
    }
    held.released();
}

/// How long `give_back_counted` waits for the broker at most: 40 × 25 ms.
const RETURN_CHECKS: u32 = 40;
const RETURN_PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

/// Closing the channel returns every message it holds unacked to its queue.
pub(super) async fn give_back(channel: Channel) {
    if let Err(e) = channel.close().await {
        tracing::debug!(error = %e, "closing the dead-letter channel");
    }
}
