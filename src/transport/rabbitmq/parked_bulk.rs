//! The console's view of the RabbitMQ parking lots: filtered pages with their
//! groups, bulk replay and delete.
//!
//! A queue is read by taking its messages: each call reads the lots it needs
//! to the end with `basic_get` on a channel of its own, holding every message
//! unacked, acts on the matching ones (publish-confirm then ack, or just ack),
//! and closes the channel, which puts every other message back in its place.
//! Each message is read once per call, so a bulk action over n messages costs
//! O(n), and the set it acts on is fixed by that one pass: a replayed message
//! parked again while the replay goes on is not taken a second time.

use std::collections::HashMap;

use amqprs::channel::{BasicAckArguments, Channel};
use amqprs::BasicProperties;
use blog_actors::delivery::TransportError;
use blog_actors::ports::Reason;

use super::connection::{usable, CloseReason};
use super::held_counts::HeldCounts;
use super::dead_letters::{destination, get, give_back_counted, reading_channel, replay_properties, settle_barrier};
use super::message::parked_message;
use super::publisher::PubSession;
use super::topology::{self, Names};
use crate::transport::parked_query::{Grouper, ParkedFilter, ParkedPage};
use crate::transport::replay_throttle::ReplayThrottle;
use crate::transport::{ParkedMessage, RetryLevelCount};

/// Messages one call reads at most: the bound on what it holds in memory.
pub(super) const MAX_SCAN: usize = 200_000;
/// Looks at a lot that answered "empty" while its count said otherwise, before giving up on it.
const MAX_RECHECKS: u32 = 50;
const RECHECK_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// A parked message taken from its lot and held (unacked) by the reading channel.
struct Held {
    message: ParkedMessage,
    /// The parking queue it came from.
    queue: String,
    /// Its delivery tags on this channel: more than one when the broker handed it out again.
    tags: Vec<u64>,
    delivered_with: String,
    props: BasicProperties,
    body: Vec<u8>,
}

/// Reads every lot `filter` may match to the end; returns the matching messages, oldest first.
///
/// A quorum queue takes back the messages of a closed channel (the previous
/// call's) asynchronously: they may come back after this read found the lot
/// empty, or be handed to this channel once more. So a lot counts as read only
/// when it is empty and its ready count says so too, and a message seen twice
/// (same parking id) is one message whose every delivery tag is settled with it.
async fn scan(channel: &Channel, reason: &CloseReason, session: &PubSession, names: &Names, held_now: &HeldCounts, filter: &ParkedFilter, grouper: &mut Grouper) -> Result<Vec<Held>, TransportError> {
    let mut held: Vec<Held> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut read = 0usize;
    for (worker, queue) in names.parking_lots() {
        if filter.worker.as_deref().is_some_and(|w| w != worker) {
            continue;
        }
        let mut rechecks = 0;
        'lot: while read < MAX_SCAN {
            let Some((got, props, body)) = get(channel, &queue, reason).await? else {
                let ready = topology::message_counts(&session.link, std::slice::from_ref(&queue)).await?;
                rechecks += 1;
                if ready.iter().sum::<u64>() == 0 || rechecks > MAX_RECHECKS {
                    break 'lot;
                }
                tokio::time::sleep(RECHECK_PAUSE).await;
                continue;
            };
            read += 1;
            let message = parked_message(worker, &got, &props, &body);
            held_now.took(&queue);
            if let Some(&at) = seen.get(&message.id) {
                tracing::debug!(queue, "a parked message was handed out twice; it is settled once");
                held[at].tags.push(got.delivery_tag());
                held_now.settled(&queue); // one message, counted once
                continue;
            }
            if filter.matches_message(&message) {
                grouper.add(&message.worker, &message.reason, message.parked_at);
                seen.insert(message.id.clone(), held.len());
                held.push(Held { message, queue: queue.clone(), tags: vec![got.delivery_tag()], delivered_with: got.routing_key().clone(), props, body });
            }
        }
    }
    if read >= MAX_SCAN {
        tracing::warn!(max = MAX_SCAN, "the parking lots hold more than one call reads; acting on the first only");
    }
    held.sort_by_key(|h| h.message.parked_at);
    Ok(held)
}

pub(super) async fn query(session: &PubSession, names: &Names, held: &HeldCounts, filter: &ParkedFilter, offset: usize, limit: usize) -> Result<ParkedPage, TransportError> {
    let (channel, reason) = reading_channel(session).await?;
    let mut grouper = Grouper::default();
    let scanned = scan(&channel, &reason, session, names, held, filter, &mut grouper).await;
    give_back_counted(channel, session, held).await;
    let items = scanned?.into_iter().skip(offset).take(limit).map(|h| h.message).collect();
    Ok(grouper.page(items, offset))
}

/// Replays (throttled) or drops every message `filter` matches; how many.
pub(super) async fn act(session: &PubSession, names: &Names, held_now: &HeldCounts, filter: &ParkedFilter, replay: Option<&ReplayThrottle>) -> Result<u64, TransportError> {
    let (channel, reason) = reading_channel(session).await?;
    let done = async {
        let held = scan(&channel, &reason, session, names, held_now, filter, &mut Grouper::default()).await?;
        let batch = replay.map_or(held.len().max(1), ReplayThrottle::batch);
        let mut taken = 0u64;
        for chunk in held.chunks(batch) {
            if let Some(throttle) = replay {
                throttle.admit(chunk.len()).await;
                republish(session, names, chunk).await?;
            }
            // Acked only once every copy is confirmed: a failure leaves the rest parked.
            for h in chunk {
                for tag in &h.tags {
                    if !usable(&channel) {
                        return Err(TransportError::unavailable("taking out parked messages", Reason("the dead-letter channel closed; the rest stay parked")));
                    }
                    channel.basic_ack(BasicAckArguments::new(*tag, false)).await.map_err(|e| TransportError::unavailable("cannot remove a parked message", e))?;
                }
                held_now.settled(&h.queue);
                taken += 1;
            }
        }
        let mut acked: Vec<&str> = held.iter().map(|h| h.queue.as_str()).collect();
        acked.sort_unstable();
        acked.dedup();
        for queue in acked {
            settle_barrier(&channel, queue, &reason, held_now).await?;
        }
        Ok(taken)
    };
    let done: Result<u64, TransportError> = done.await;
    give_back_counted(channel, session, held_now).await;
    done
}

/// Publishes a batch's fresh copies, then waits for every confirm.
async fn republish(session: &PubSession, names: &Names, chunk: &[Held]) -> Result<(), TransportError> {
    let mut pending = Vec::with_capacity(chunk.len());
    for h in chunk {
        let (exchange, key) = destination(names, &h.message.worker, &h.props, &h.delivered_with)?;
        pending.push(session.confirm.publish(&exchange, &key, replay_properties(&h.props), h.body.clone()).await?);
    }
    for p in pending {
        p.confirmed().await?;
    }
    Ok(())
}

/// Ready messages per lot plus those a dead-letter call holds now.
pub(super) async fn by_worker(session: &PubSession, names: &Names, held: &HeldCounts) -> Result<Vec<(String, u64)>, TransportError> {
    let lots = names.parking_lots();
    let queues: Vec<String> = lots.iter().map(|(_, q)| q.clone()).collect();
    let counts = topology::message_counts(&session.link, &queues).await?;
    Ok(lots.into_iter().zip(counts).map(|((worker, queue), n)| (worker.to_owned(), n + held.of(&queue))).collect())
}

pub(super) async fn waiting_for_retry(session: &PubSession, names: &Names) -> Result<Vec<RetryLevelCount>, TransportError> {
    let levels = names.retry_levels();
    let queues: Vec<String> = levels.iter().map(|(_, _, q)| q.clone()).collect();
    let counts = topology::message_counts(&session.link, &queues).await?;
    Ok(levels.into_iter().zip(counts).map(|((worker, ms, _), waiting)| RetryLevelCount { worker: worker.to_owned(), level: format!("{ms}ms"), waiting }).collect())
}
