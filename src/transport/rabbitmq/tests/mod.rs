//! Against the broker at 127.0.0.1:5672 (guest/guest). Each test has its own
//! prefix, so they run in parallel, and deletes its queues and exchanges at the end.

mod pause;
mod resilience;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use amqprs::channel::QueueDeclareArguments;
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::FieldValue;
use blog_actors::delivery::{Delivery, DeliverySource, TransportError, Verdict};
use blog_actors::emailer::Emailer;
use blog_actors::projector::Projector;
use blog_actors::trace_context::TraceContext;
use blog_actors::supervision::Worker;
use blog_actors::worker::WorkerKind;

use crate::startup::registered_workers;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::topology::{key, table};
use super::{QueueOptions, QueueType, RabbitTransport};
use crate::transport::fan_out::expected_deliveries;
use crate::transport::OutgoingMessage;
use crate::transport::{DeadLetters, Publisher, Transport};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672";
const LEVELS: [Duration; 2] = [Duration::from_millis(300), Duration::from_secs(2)];
/// Generous: a loaded CI machine; the happy path takes milliseconds.
const DEADLINE: Duration = Duration::from_secs(15);

fn prefix() -> String {
    format!("t-{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// The queues under test: quorum, or classic when the suite runs with
/// `BLOG_AMQP_QUEUE_TYPE=classic` (scripts/test runs the broker tests both ways).
fn queue_options() -> QueueOptions {
    let kind = match std::env::var("BLOG_AMQP_QUEUE_TYPE").as_deref() {
        Ok("classic") => QueueType::Classic,
        _ => QueueType::Quorum,
    };
    QueueOptions { kind, ..QueueOptions::default() }
}

async fn connect(prefix: &str) -> RabbitTransport {
    RabbitTransport::connect_with(URL, prefix, LEVELS.to_vec(), registered_workers(), queue_options())
        .await
        .expect("broker at 127.0.0.1:5672")
}

fn entry(routing_key: &str) -> OutgoingMessage {
    let message_id = Uuid::new_v4();
    let body = serde_json::json!({ "id": message_id, "type": routing_key, "data": {} });
    OutgoingMessage {
        message_id,
        routing_key: routing_key.to_owned(),
        body: serde_json::to_vec(&body).unwrap(),
        correlation_id: Some(format!("corr-{message_id}")),
        trace: TraceContext::parse(&format!("00-{}-00f067aa0ba902b7-01", message_id.simple()), Some("k=v")),
    }
}

async fn next(rx: &mut mpsc::Receiver<Delivery>) -> Delivery {
    tokio::time::timeout(DEADLINE, rx.recv()).await.expect("a delivery in time").expect("the stream goes on")
}

/// The next delivery is `sent`: it is acked.
async fn ack_next(rx: &mut mpsc::Receiver<Delivery>, sent: &OutgoingMessage) {
    let d = next(rx).await;
    assert_eq!(d.body, sent.body);
    d.settler.settle(Verdict::Ack).await.unwrap();
}

/// Polls `probe` until it answers true, failing after the deadline.
async fn until<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !probe().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn pending(t: &RabbitTransport) -> u64 {
    t.pending_deliveries().await.expect("pending")
}

/// A plain amqprs connection on the test's runtime, for setup and cleanup.
async fn raw() -> Connection {
    let args = OpenConnectionArguments::try_from(URL).unwrap();
    Connection::open(&args).await.unwrap()
}

async fn cleanup(prefix: &str) {
    RabbitTransport::delete_topology(URL, prefix, &LEVELS, registered_workers()).await.expect("the topology deleted");
}

/// One test's transport under a prefix of its own. Its queues and exchanges go when
/// it drops, a failed test's too: the broker is shared by every run on this machine.
struct Rig {
    prefix: String,
    transport: RabbitTransport,
}

impl Rig {
    async fn new() -> Rig {
        let prefix = prefix();
        let transport = connect(&prefix).await;
        Rig { prefix, transport }
    }

    /// A rig whose `worker` is already consuming, with `prefetch`.
    async fn with_consumer(worker: WorkerKind, prefetch: u16) -> (Rig, mpsc::Receiver<Delivery>) {
        let rig = Rig::new().await;
        let rx = rig.consuming(worker, prefetch).await;
        (rig, rx)
    }

    async fn consuming(&self, worker: WorkerKind, prefetch: u16) -> mpsc::Receiver<Delivery> {
        self.transport.consume(&[worker], prefetch, CancellationToken::new()).await.unwrap()
    }

    /// Publishes one fresh entry of `routing_key` and hands it back for comparing.
    async fn publish_one(&self, routing_key: &str) -> OutgoingMessage {
        let sent = entry(routing_key);
        self.transport.publish(std::slice::from_ref(&sent)).await.unwrap();
        sent
    }

    /// Publishes one fresh entry of `routing_key` and takes its delivery from `rx`.
    async fn deliver_one(&self, rx: &mut mpsc::Receiver<Delivery>, routing_key: &str) -> (OutgoingMessage, Delivery) {
        let sent = self.publish_one(routing_key).await;
        (sent, next(rx).await)
    }

    /// Waits until nothing is left pending, then closes the transport.
    async fn finish(self) {
        until("nothing is pending", || async { pending(&self.transport).await == 0 }).await;
        self.transport.close().await;
    }
}

impl std::ops::Deref for Rig {
    type Target = RabbitTransport;
    fn deref(&self) -> &RabbitTransport {
        &self.transport
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Err(e) = RabbitTransport::delete_topology_blocking(URL, &self.prefix, &LEVELS, registered_workers()) {
            eprintln!("could not delete the queues of {}: {e}", self.prefix);
        }
    }
}

/// Closes the broker side of the connection named `name` like an operator would.
fn close_from_broker(name: &str) {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl");
    let listing = String::from_utf8_lossy(&out.stdout);
    let pid = listing
        .lines()
        .find(|line| line.contains(&format!("\"{name}\"")))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_else(|| panic!("no connection {name} in:\n{listing}"))
        .to_owned();
    let status = std::process::Command::new("rabbitmqctl").args(["-q", "close_connection", &pid, "test"]).status().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_topology_is_declared_twice_without_error() {
    let p = prefix();
    let first = connect(&p).await;
    let second = connect(&p).await;
    assert!(first.is_connected() && second.is_connected());
    assert_eq!(second.parked_count().await.unwrap(), 0);
    assert_eq!(pending(&first).await, 0);
    first.close().await;
    second.close().await;
    assert!(!first.is_connected());
    assert!(first.publish(&[entry("post.created")]).await.is_err(), "a closed transport refuses work");
    cleanup(&p).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_broker_or_a_bad_url_is_an_error_not_a_hang() {
    let refused = RabbitTransport::connect("amqp://guest:guest@127.0.0.1:1", &prefix(), LEVELS.to_vec(), registered_workers()).await;
    let refused = refused.err().expect("nothing listens on port 1");
    assert!(matches!(refused, TransportError::Unavailable { .. }) && refused.to_string().contains("cannot connect"), "{refused}");
    for url in ["http://127.0.0.1", "amqp://127.0.0.1?heartbeat", "amqp://127.0.0.1,"] {
        let error = RabbitTransport::connect(url, &prefix(), LEVELS.to_vec(), registered_workers()).await.err().expect(url);
        assert!(matches!(error, TransportError::Misconfigured { .. }), "{url}: {error}");
        assert!(error.to_string().contains("invalid AMQP URL"), "{url}: {error}");
    }
    let bad_prefix = RabbitTransport::connect(URL, "bad prefix!", vec![], registered_workers()).await.err().expect("a bad prefix");
    assert!(matches!(bad_prefix, TransportError::Misconfigured { .. }), "{bad_prefix}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_with_other_settings_is_one_clear_error() {
    let p = prefix();
    let conn = raw().await;
    let channel = conn.open_channel(None).await.unwrap();
    let mut args = table(queue_options().plain());
    args.insert(key("x-max-length"), FieldValue::l(1));
    let queue = format!("{p}.emailer");
    channel.queue_declare(QueueDeclareArguments::durable_client_named(&queue).arguments(args).finish()).await.unwrap();
    channel.close().await.unwrap();
    conn.close().await.unwrap();

    let error = RabbitTransport::connect_with(URL, &p, LEVELS.to_vec(), registered_workers(), queue_options())
        .await
        .err()
        .expect("a mismatch is refused");
    assert!(matches!(error, TransportError::Refused { .. }), "{error}");
    let error = error.to_string();
    assert!(error.contains(&format!("queue {queue}")), "{error}");
    assert!(error.contains("PRECONDITION_FAILED") && error.contains("BLOG_AMQP_PREFIX"), "{error}");
    cleanup(&p).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn classic_queues_where_quorum_ones_are_asked_for_are_one_error_naming_the_setting() {
    let p = prefix();
    let classic = QueueOptions { kind: QueueType::Classic, ..QueueOptions::default() };
    RabbitTransport::connect_with(URL, &p, LEVELS.to_vec(), registered_workers(), classic).await.unwrap().close().await;
    let error = connect_quorum(&p).await.err().expect("another queue type is refused");
    assert!(matches!(error, TransportError::Refused { .. }), "{error}");
    let error = error.to_string();
    assert!(error.contains("PRECONDITION_FAILED") && error.contains("BLOG_AMQP_QUEUE_TYPE"), "{error}");
    assert!(error.contains("x-queue-type"), "{error}");
    cleanup(&p).await;
}

async fn connect_quorum(prefix: &str) -> Result<RabbitTransport, blog_actors::delivery::TransportError> {
    RabbitTransport::connect_with(URL, prefix, LEVELS.to_vec(), registered_workers(), QueueOptions::default()).await
}

/// The backstop against a message that kills the process: each time its
/// connection dies holding it, the quorum queue counts a delivery; past the
/// limit the broker parks it, and the parked entry says why.
#[tokio::test(flavor = "multi_thread")]
async fn a_message_returned_past_the_delivery_limit_is_parked_saying_it_was_redelivered_too_often() {
    let p = prefix();
    let limited = QueueOptions { kind: QueueType::Quorum, delivery_limit: 2 };
    let publisher = RabbitTransport::connect_with(URL, &p, LEVELS.to_vec(), registered_workers(), limited).await.unwrap();
    let poison = entry("order.fulfilled");
    publisher.publish(std::slice::from_ref(&poison)).await.unwrap();
    // Three consumers in turn take it and go without settling it (a crash, as the broker sees it).
    for round in 1..=3 {
        let dying = RabbitTransport::connect_with(URL, &p, LEVELS.to_vec(), registered_workers(), limited).await.unwrap();
        let stop = CancellationToken::new();
        let mut rx = dying.consume(&[Emailer::kind()], 10, stop.clone()).await.unwrap();
        let delivery = next(&mut rx).await;
        assert_eq!(delivery.redelivered, round > 1, "round {round}");
        std::mem::forget(delivery); // never settled: the connection's end hands it back
        dying.close().await;
    }
    until("the broker parked it", || async { publisher.parked_count().await.unwrap() == 1 }).await;
    let parked = publisher.list_parked(10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].worker, "emailer");
    assert_eq!(parked[0].message_id.as_deref(), Some(poison.message_id.to_string().as_str()));
    assert!(parked[0].reason.starts_with("redelivered too often"), "{}", parked[0].reason);
    assert_eq!(pending(&publisher).await, 0);
    publisher.close().await;
    cleanup(&p).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn events_reach_the_workers_subscribed_to_their_type_and_acks_remove_them() {
    let t = Rig::new().await;
    let stop = CancellationToken::new();
    let mut rx = t.consume(registered_workers().all(), 10, stop.clone()).await.unwrap();
    assert!(t.is_consuming());
    let (post, order) = (entry("post.created"), entry("order.fulfilled"));
    t.publish(&[post.clone(), order.clone()]).await.unwrap();

    let mut got = HashSet::new();
    let expected = expected_deliveries(&["post.created", "order.fulfilled"]);
    for _ in 0..expected.len() {
        let d = next(&mut rx).await;
        let sent = if d.routing_key == "post.created" { &post } else { &order };
        assert_eq!((d.attempt, d.redelivered), (1, false));
        assert_eq!(d.body, sent.body);
        assert_eq!(d.correlation_id, sent.correlation_id);
        got.insert((d.worker, d.routing_key.clone()));
        d.settler.settle(Verdict::Ack).await.unwrap();
    }

    assert_eq!(got, expected);
    until("acked deliveries are gone", || async { pending(&t).await == 0 }).await;

    stop.cancel();
    assert!(tokio::time::timeout(DEADLINE, rx.recv()).await.unwrap().is_none(), "stop ends the stream");
    assert!(!t.is_consuming());
    t.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_no_worker_takes_is_parked_as_unrouted_with_the_reason() {
    let (t, _rx) = Rig::with_consumer(Emailer::kind(), 5).await;
    let odd = t.publish_one("thing.happened").await;
    until("the event is parked", || async { t.parked_count().await.unwrap() == 1 }).await;

    let parked = t.list_parked(10).await.unwrap();
    assert_eq!(parked.len(), 1);
    let m = &parked[0];
    assert_eq!((m.worker.as_str(), m.routing_key.as_str(), m.attempts), ("unrouted", "thing.happened", 0));
    assert_eq!(m.reason, r#"no worker subscribes to event type "thing.happened""#);
    assert_eq!(m.message_id, Some(odd.message_id.to_string()));
    assert_eq!(m.body["type"], "thing.happened");
    assert_eq!(t.parked_count().await.unwrap(), 1, "listing leaves messages in place");
    t.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_comes_back_after_its_delay_as_the_next_attempt() {
    let (t, mut rx) = Rig::with_consumer(Emailer::kind(), 5).await;
    let (sent, first) = t.deliver_one(&mut rx, "order.fulfilled").await;
    assert_eq!(first.trace, sent.trace, "the W3C headers arrive");
    let body = first.body.clone();
    let retried_at = Instant::now();
    let retry = Verdict::Retry { delay: Duration::from_millis(250), next_attempt: 2, reason: "smtp down".into() };
    first.settler.settle(retry).await.unwrap();

    let again = next(&mut rx).await;
    assert!(retried_at.elapsed() >= Duration::from_millis(250), "came back after {:?}", retried_at.elapsed());
    assert_eq!((again.worker, again.routing_key.as_str(), again.attempt), (Emailer::kind(), "order.fulfilled", 2));
    assert_eq!(again.body, body);
    assert_eq!(again.trace, sent.trace, "a retry keeps the trace context");
    again.settler.settle(Verdict::Ack).await.unwrap();
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parked_message_is_listed_and_replayed_as_a_first_attempt() {
    let (t, mut rx) = Rig::with_consumer(Projector::kind(), 5).await;
    let (sent, d) = t.deliver_one(&mut rx, "post.updated").await;
    d.settler.settle(Verdict::Park { reason: "gave up after 3 attempts: boom".into(), attempts: 3 }).await.unwrap();

    let parked = t.list_parked(10).await.unwrap();
    assert_eq!(parked.len(), 1);
    let m = &parked[0];
    assert_eq!((m.worker.as_str(), m.routing_key.as_str(), m.attempts), ("projector", "post.updated", 3));
    assert_eq!(m.reason, "gave up after 3 attempts: boom");
    assert_eq!(m.correlation_id, sent.correlation_id);
    assert!(m.parked_at <= chrono::Utc::now() && m.parked_at > chrono::Utc::now() - chrono::Duration::minutes(1));

    assert!(t.replay_parked(&m.id).await.unwrap());
    let again = next(&mut rx).await;
    assert_eq!((again.worker, again.routing_key.as_str(), again.attempt), (Projector::kind(), "post.updated", 1));
    assert_eq!(again.body, sent.body);
    assert_eq!(again.trace, sent.trace, "parking and replay keep the trace context");
    again.settler.settle(Verdict::Ack).await.unwrap();
    assert_eq!(t.parked_count().await.unwrap(), 0);
    assert!(!t.replay_parked(&m.id).await.unwrap(), "a replayed message is gone from the lot");
    t.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_parked_message_is_gone_and_the_others_stay() {
    let (t, mut rx) = Rig::with_consumer(Emailer::kind(), 5).await;
    t.publish(&[entry("order.fulfilled"), entry("order.fulfilled")]).await.unwrap();
    for reason in ["first", "second"] {
        let d = next(&mut rx).await;
        d.settler.settle(Verdict::Park { reason: reason.into(), attempts: 1 }).await.unwrap();
    }
    let parked = t.list_parked(10).await.unwrap();
    assert_eq!(parked.len(), 2);
    assert_ne!(parked[0].id, parked[1].id);

    assert!(t.delete_parked(&parked[1].id).await.unwrap());
    assert!(!t.delete_parked(&parked[1].id).await.unwrap());
    assert!(!t.delete_parked("no-such-id").await.unwrap());
    let left = t.list_parked(10).await.unwrap();
    assert_eq!(left.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), vec![parked[0].id.as_str()]);
    assert_eq!(t.list_parked(1).await.unwrap().len(), 1, "the limit holds");
    t.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_released_delivery_comes_again_flagged_redelivered() {
    let (t, mut rx) = Rig::with_consumer(Emailer::kind(), 5).await;
    t.publish(&[entry("order.fulfilled")]).await.unwrap();
    next(&mut rx).await.settler.settle(Verdict::Release).await.unwrap();
    let again = next(&mut rx).await;
    assert!(again.redelivered);
    assert_eq!(again.attempt, 1);
    // Dropped without a verdict: handed back as well.
    drop(again);
    let third = next(&mut rx).await;
    assert!(third.redelivered);
    third.settler.settle(Verdict::Ack).await.unwrap();
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acks_held_for_a_group_never_cover_a_delivery_handed_back() {
    let (t, mut rx) = Rig::with_consumer(Emailer::kind(), 10).await;
    let sent: Vec<OutgoingMessage> = (0..6).map(|_| entry("order.fulfilled")).collect();
    t.publish(&sent).await.unwrap();
    let mut deliveries = Vec::new();
    for _ in 0..6 {
        deliveries.push(next(&mut rx).await);
    }
    let handed_back = deliveries[1].body.clone();
    // All settled at once, as a worker's group commit answers them: the acks
    // linger for one multiple ack, which must stop below the released second one.
    let settles = deliveries.into_iter().enumerate().map(|(i, d)| {
        let verdict = if i == 1 { Verdict::Release } else { Verdict::Ack };
        tokio::spawn(d.settler.settle(verdict))
    });
    for settled in futures::future::join_all(settles).await {
        settled.unwrap().unwrap();
    }
    let again = next(&mut rx).await;
    assert!(again.redelivered);
    assert_eq!(again.body, handed_back, "only the released delivery comes again");
    again.settler.settle(Verdict::Ack).await.unwrap();
    until("nothing is pending", || async { pending(&t).await == 0 }).await;
    assert!(rx.try_recv().is_err(), "no acked delivery came back");
    t.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_prefetch_one_every_delivery_is_acked_in_turn() {
    let t = Rig::new().await;
    // The next delivery comes only once the ack went out; one ack is half of
    // prefetch 1, so each flush goes without lingering and the flow goes on.
    let mut rx = t.consuming(Emailer::kind(), 1).await;
    let sent: Vec<OutgoingMessage> = (0..20).map(|_| entry("order.fulfilled")).collect();
    t.publish(&sent).await.unwrap();
    for _ in 0..20 {
        let d = next(&mut rx).await;
        assert!(!d.redelivered);
        d.settler.settle(Verdict::Ack).await.unwrap();
    }
    t.finish().await;
}
