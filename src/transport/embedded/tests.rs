use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use blog_actors::delivery::{Delivery, DeliverySource, Verdict};
use blog_actors::emailer::Emailer;
use blog_actors::pause::Feed;
use blog_actors::trace_context::TraceContext;
use blog_actors::supervision::Worker;
use blog_actors::worker::WorkerKind;

use crate::startup::registered_workers;
use tempfile::TempDir;
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::EmbeddedQueue;
use crate::transport::fan_out::expected_deliveries;
use crate::transport::OutgoingMessage;
use crate::transport::{DeadLetters, Publisher, Transport};

/// Generous, so a slow CI machine does not fail a test that would pass.
const DEADLINE: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is watched for: longer than the consumers' poll.
const QUIET: Duration = Duration::from_millis(600);

/// The queue's file in a test's temp dir.
fn queue_file(dir: &TempDir) -> PathBuf {
    dir.path().join("data/queue.sqlite")
}

/// A handle on the queue file; a second one is what another process (or a restart) would have.
fn open(path: &Path) -> EmbeddedQueue {
    EmbeddedQueue::open(path, registered_workers()).unwrap()
}

fn open_temp() -> (TempDir, EmbeddedQueue) {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(&queue_file(&dir));
    (dir, queue)
}

fn body(n: u32) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "n": n })).unwrap()
}

async fn next(rx: &mut Receiver<Delivery>) -> Delivery {
    timeout(DEADLINE, rx.recv()).await.expect("a delivery before the deadline").expect("the channel is open")
}

async fn assert_quiet(rx: &mut Receiver<Delivery>) {
    assert!(timeout(QUIET, rx.recv()).await.is_err(), "nothing more should be delivered");
}

fn number(delivery: &Delivery) -> u64 {
    serde_json::from_slice::<serde_json::Value>(&delivery.body).unwrap()["n"].as_u64().unwrap()
}

async fn consume(
    queue: &EmbeddedQueue,
    workers: &[WorkerKind],
    prefetch: u16,
) -> (CancellationToken, Receiver<Delivery>) {
    let stop = CancellationToken::new();
    let rx = queue.consume(workers, prefetch, stop.clone()).await.unwrap();
    (stop, rx)
}

/// A fresh queue holding one order (`body(1)`), being consumed by the emailer alone.
async fn one_order_for_the_emailer(prefetch: u16) -> (TempDir, EmbeddedQueue, CancellationToken, Receiver<Delivery>) {
    let (dir, queue) = open_temp();
    queue.publish_raw("order.fulfilled", body(1), None).await.unwrap();
    let (stop, rx) = consume(&queue, &[Emailer::kind()], prefetch).await;
    (dir, queue, stop, rx)
}

#[tokio::test]
async fn a_post_created_reaches_the_tag_aggregator_and_the_projector_and_an_order_only_the_emailer() {
    let (_dir, queue) = open_temp();
    queue.publish_raw("post.created", body(1), None).await.unwrap();
    queue.publish_raw("order.fulfilled", body(2), Some("c-2".into())).await.unwrap();
    let (_stop, mut rx) = consume(&queue, registered_workers().all(), 10).await;

    let mut got = HashSet::new();
    let mut held = Vec::new(); // a dropped delivery would go back to the queue
    let expected = expected_deliveries(&["post.created", "order.fulfilled"]);
    for _ in 0..expected.len() {
        let d = next(&mut rx).await;
        assert_eq!((d.attempt, d.redelivered), (1, false));
        got.insert((d.worker, d.routing_key.clone()));
        held.push(d);
    }

    assert_eq!(got, expected);
    assert_quiet(&mut rx).await;
}

#[tokio::test]
async fn an_event_type_no_worker_subscribes_to_is_parked_as_unrouted_with_the_reason() {
    let (_dir, queue) = open_temp();
    queue.publish_raw("thing.happened", b"not json".to_vec(), Some("c-1".into())).await.unwrap();

    assert_eq!(queue.depth().await.unwrap(), 0);
    let parked = queue.list_parked(10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].worker, "unrouted");
    assert_eq!(parked[0].reason, r#"no worker subscribes to event type "thing.happened""#);
    assert_eq!(parked[0].body, serde_json::Value::String("not json".into()));
    assert_eq!(parked[0].correlation_id.as_deref(), Some("c-1"));

    assert!(queue.replay_parked(&parked[0].id).await.unwrap(), "the id exists");
    assert_eq!(queue.parked_count().await.unwrap(), 1, "still no subscriber: it stays parked");
    assert_eq!(queue.depth().await.unwrap(), 0);
}

#[tokio::test]
async fn an_acked_delivery_is_removed_from_the_queue() {
    let (_dir, queue, _stop, mut rx) = one_order_for_the_emailer(10).await;

    next(&mut rx).await.settler.settle(Verdict::Ack).await.unwrap();

    assert_eq!(queue.depth().await.unwrap(), 0);
    assert_quiet(&mut rx).await;
}

#[tokio::test]
async fn a_retried_delivery_comes_back_after_its_delay_as_the_next_attempt() {
    let (_dir, _queue, _stop, mut rx) = one_order_for_the_emailer(10).await;
    let first = next(&mut rx).await;
    assert_eq!(first.attempt, 1);

    let delay = Duration::from_millis(700);
    let retried_at = Instant::now();
    let verdict = Verdict::Retry { delay, next_attempt: 2, reason: "smtp down".into() };
    first.settler.settle(verdict).await.unwrap();

    let second = next(&mut rx).await;
    assert!(retried_at.elapsed() >= delay, "came back after {:?}", retried_at.elapsed());
    assert_eq!((second.attempt, second.redelivered), (2, false));
    assert_eq!(number(&second), 1);
}

#[tokio::test]
async fn a_parked_delivery_is_listed_and_a_replay_delivers_it_again_as_attempt_one() {
    let (_dir, queue) = open_temp();
    let message_id = queue.publish_raw("order.fulfilled", body(7), Some("c-7".into())).await.unwrap();
    let (_stop, mut rx) = consume(&queue, &[Emailer::kind()], 10).await;
    let verdict = Verdict::Park { reason: "gave up after 3 attempts: boom".into(), attempts: 3 };
    next(&mut rx).await.settler.settle(verdict).await.unwrap();

    assert_eq!(queue.depth().await.unwrap(), 0);
    assert_eq!(queue.parked_count().await.unwrap(), 1);
    let parked = queue.list_parked(10).await.unwrap().remove(0);
    assert_eq!(parked.worker, "emailer");
    assert_eq!(parked.routing_key, "order.fulfilled");
    assert_eq!(parked.message_id, Some(message_id.to_string()));
    assert_eq!(parked.correlation_id.as_deref(), Some("c-7"));
    assert_eq!(parked.body, serde_json::json!({ "n": 7 }));
    assert_eq!((parked.reason.as_str(), parked.attempts), ("gave up after 3 attempts: boom", 3));

    assert!(queue.replay_parked(&parked.id).await.unwrap());
    let again = next(&mut rx).await;
    assert_eq!((again.worker, again.attempt, again.redelivered), (Emailer::kind(), 1, false));
    assert_eq!(again.correlation_id.as_deref(), Some("c-7"));
    assert_eq!(number(&again), 7);
    assert_eq!(queue.parked_count().await.unwrap(), 0);
    assert!(!queue.replay_parked(&parked.id).await.unwrap(), "a replayed message is no longer parked");
}

#[tokio::test]
async fn the_trace_context_stays_with_a_message_through_a_retry_a_parking_and_a_replay() {
    let (_dir, queue) = open_temp();
    let trace = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Some("k=v"));
    let entry = OutgoingMessage {
        message_id: uuid::Uuid::now_v7(),
        routing_key: "order.fulfilled".into(),
        body: body(1),
        correlation_id: None,
        trace: trace.clone(),
    };
    queue.publish(std::slice::from_ref(&entry)).await.unwrap();
    let (_stop, mut rx) = consume(&queue, &[Emailer::kind()], 10).await;
    let first = next(&mut rx).await;
    assert_eq!(first.trace, trace);
    let retry = Verdict::Retry { delay: Duration::ZERO, next_attempt: 2, reason: "smtp down".into() };
    first.settler.settle(retry).await.unwrap();
    let second = next(&mut rx).await;
    assert_eq!((second.attempt, &second.trace), (2, &trace));
    second.settler.settle(Verdict::Park { reason: "boom".into(), attempts: 2 }).await.unwrap();
    let parked = queue.list_parked(10).await.unwrap().remove(0);
    assert!(queue.replay_parked(&parked.id).await.unwrap());
    let replayed = next(&mut rx).await;
    assert_eq!((replayed.attempt, &replayed.trace), (1, &trace));
}

#[tokio::test]
async fn a_deleted_parked_message_is_gone_for_good() {
    let (_dir, queue) = open_temp();
    queue.publish_raw("thing.happened", body(1), None).await.unwrap();
    let id = queue.list_parked(10).await.unwrap().remove(0).id;

    assert!(queue.delete_parked(&id).await.unwrap());
    assert!(!queue.delete_parked(&id).await.unwrap());
    assert!(!queue.replay_parked(&id).await.unwrap());
    assert_eq!(queue.parked_count().await.unwrap(), 0);
}

#[tokio::test]
async fn parked_messages_are_listed_oldest_first_up_to_the_limit() {
    let (_dir, queue) = open_temp();
    for n in 0..3 {
        queue.publish_raw(&format!("unknown.{n}"), body(n), None).await.unwrap();
    }
    let keys: Vec<String> = queue.list_parked(2).await.unwrap().into_iter().map(|p| p.routing_key).collect();
    assert_eq!(keys, ["unknown.0", "unknown.1"]);
}

#[tokio::test]
async fn no_more_than_prefetch_deliveries_are_out_per_worker_until_one_is_settled() {
    let (_dir, queue) = open_temp();
    for n in 0..10 {
        queue.publish_raw("order.fulfilled", body(n), None).await.unwrap();
    }
    let (_stop, mut rx) = consume(&queue, &[Emailer::kind()], 3).await;

    let mut out = Vec::new();
    for _ in 0..3 {
        out.push(next(&mut rx).await);
    }
    assert_eq!(out.iter().map(number).collect::<Vec<_>>(), [0, 1, 2], "oldest first");
    assert_quiet(&mut rx).await;

    out.remove(0).settler.settle(Verdict::Ack).await.unwrap();
    out.push(next(&mut rx).await);
    assert_eq!(number(&out[2]), 3);
    assert_quiet(&mut rx).await;
    assert_eq!(queue.depth().await.unwrap(), 9);
}

#[tokio::test]
async fn deliveries_leased_when_the_process_died_come_again_as_redelivered_after_reopening() {
    let (dir, queue) = open_temp();
    let path = queue_file(&dir);
    queue.publish_raw("order.fulfilled", body(1), None).await.unwrap();
    queue.publish_raw("order.fulfilled", body(2), None).await.unwrap();
    let (stop, mut rx) = consume(&queue, &[Emailer::kind()], 10).await;
    for _ in 0..2 {
        // As under SIGKILL: no verdict, and no drop handler hands the row back.
        std::mem::forget(next(&mut rx).await);
    }
    stop.cancel();
    assert!(timeout(DEADLINE, rx.recv()).await.unwrap().is_none());
    drop(queue);

    let reopened = open(&path);
    let (_stop, mut rx) = consume(&reopened, &[Emailer::kind()], 10).await;
    let (a, b) = (next(&mut rx).await, next(&mut rx).await);
    assert_eq!((number(&a), a.attempt, a.redelivered), (1, 1, true));
    assert_eq!((number(&b), b.attempt, b.redelivered), (2, 1, true));
}

#[tokio::test]
async fn a_second_handle_that_only_publishes_does_not_steal_leases_and_is_seen_by_polling() {
    let (dir, service) = open_temp();
    let path = queue_file(&dir);
    service.publish_raw("order.fulfilled", body(1), None).await.unwrap();
    let (_stop, mut rx) = consume(&service, &[Emailer::kind()], 10).await;
    let _held = next(&mut rx).await;

    // Like the `publish` CLI: its own connection, and no wake-up reaches the service.
    let cli = open(&path);
    cli.publish_raw("order.fulfilled", body(2), None).await.unwrap();

    let d = next(&mut rx).await;
    assert_eq!((number(&d), d.redelivered), (2, false));
    assert_quiet(&mut rx).await;
}

#[tokio::test]
async fn a_released_delivery_comes_again_marked_redelivered() {
    let (_dir, _queue, _stop, mut rx) = one_order_for_the_emailer(10).await;

    next(&mut rx).await.settler.settle(Verdict::Release).await.unwrap();

    let again = next(&mut rx).await;
    assert_eq!((again.attempt, again.redelivered), (1, true));
}

#[tokio::test]
async fn a_delivery_dropped_without_a_verdict_goes_back_to_the_queue() {
    let (_dir, _queue, _stop, mut rx) = one_order_for_the_emailer(1).await;

    drop(next(&mut rx).await);

    let again = next(&mut rx).await;
    assert_eq!((number(&again), again.redelivered), (1, true));
}

#[tokio::test]
async fn cancelling_stop_closes_the_receiver_and_ends_consuming() {
    let (_dir, queue) = open_temp();
    let (stop, mut rx) = consume(&queue, registered_workers().all(), 10).await;
    assert!(queue.is_consuming());

    stop.cancel();

    assert!(timeout(DEADLINE, rx.recv()).await.unwrap().is_none(), "the receiver closes");
    assert!(!queue.is_consuming());
    assert!(queue.is_connected());
}

#[tokio::test]
async fn a_paused_workers_deliveries_wait_in_the_file_and_come_once_resumed() {
    let (_dir, queue) = open_temp();
    let (_stop, mut rx) = consume(&queue, &[Emailer::kind()], 10).await;
    queue.set_feed(Emailer::kind(), Feed::Stopped);
    queue.publish_raw("order.fulfilled", body(1), None).await.unwrap();
    assert_quiet(&mut rx).await;
    assert_eq!(queue.depth().await.unwrap(), 1, "waiting in the file");

    queue.set_feed(Emailer::kind(), Feed::Full);
    let d = next(&mut rx).await;
    assert_eq!((number(&d), d.attempt, d.redelivered), (1, 1, false), "as it was published");
    d.settler.settle(Verdict::Ack).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), 0);
}

#[tokio::test]
async fn a_probed_worker_gets_one_delivery_at_a_time() {
    let (_dir, queue) = open_temp();
    let (_stop, mut rx) = consume(&queue, &[Emailer::kind()], 10).await;
    queue.set_feed(Emailer::kind(), Feed::Probe);
    for n in 1..=3 {
        queue.publish_raw("order.fulfilled", body(n), None).await.unwrap();
    }
    let probe = next(&mut rx).await;
    assert_quiet(&mut rx).await;
    probe.settler.settle(Verdict::Ack).await.unwrap();
    let second = next(&mut rx).await;
    assert_quiet(&mut rx).await;
    queue.set_feed(Emailer::kind(), Feed::Full);
    second.settler.settle(Verdict::Ack).await.unwrap();
    assert_eq!(number(&next(&mut rx).await), 3);
}
