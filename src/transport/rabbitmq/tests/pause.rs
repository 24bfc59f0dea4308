//! Pausing one worker: its consumer is cancelled, its messages wait ready in its
//! queue, the other workers' consumers go on, and it consumes again once resumed.

use amqprs::channel::QueueDeclareArguments;
use blog_actors::delivery::{DeliverySource, Verdict};
use blog_actors::emailer::Emailer;
use blog_actors::pause::Feed;
use blog_actors::projector::Projector;
use blog_actors::supervision::Worker;
use tokio_util::sync::CancellationToken;

use super::super::topology::Names;
use super::{cleanup, connect, entry, next, prefix, raw, until, LEVELS};
use crate::startup::registered_workers;
use crate::transport::{Publisher, Transport};

/// (ready messages, consumers) of one queue, as the broker counts them.
async fn queue_figures(queue: &str) -> (u32, u32) {
    let conn = raw().await;
    let channel = conn.open_channel(None).await.unwrap();
    let (_, ready, consumers) = channel.queue_declare(QueueDeclareArguments::new(queue).passive(true).finish()).await.unwrap().unwrap();
    let _ = channel.close().await;
    let _ = conn.close().await;
    (ready, consumers)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_workers_messages_wait_ready_in_its_queue_and_come_once_resumed() {
    let p = prefix();
    let names = Names::new(&p, &LEVELS, registered_workers()).unwrap();
    let (emailer, projector) = (names.worker(Emailer::kind()), names.worker(Projector::kind()));
    let t = connect(&p).await;
    let mut rx = t.consume(&[Emailer::kind(), Projector::kind()], 5, CancellationToken::new()).await.unwrap();
    until("both consumers attached", || async { queue_figures(&emailer).await.1 == 1 && queue_figures(&projector).await.1 == 1 }).await;

    t.set_feed(Emailer::kind(), Feed::Stopped);
    until("the emailer's consumer cancelled", || async { queue_figures(&emailer).await.1 == 0 }).await;
    t.publish(&[entry("order.fulfilled"), entry("post.created")]).await.unwrap();
    // The projector's delivery comes; the emailer's waits ready in its queue, untouched.
    let projected = next(&mut rx).await;
    assert_eq!(projected.worker, Projector::kind());
    projected.settler.settle(Verdict::Ack).await.unwrap();
    until("the order ready in the paused emailer's queue", || async { queue_figures(&emailer).await == (1, 0) }).await;

    t.set_feed(Emailer::kind(), Feed::Full);
    let order = next(&mut rx).await;
    assert_eq!((order.worker, order.attempt, order.redelivered), (Emailer::kind(), 1, false), "as it was published");
    order.settler.settle(Verdict::Ack).await.unwrap();
    assert_eq!(queue_figures(&emailer).await.1, 1, "consuming again");
    t.close().await;
    cleanup(&p).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_probed_worker_gets_one_delivery_at_a_time() {
    let p = prefix();
    let names = Names::new(&p, &LEVELS, registered_workers()).unwrap();
    let emailer = names.worker(Emailer::kind());
    let t = connect(&p).await;
    let mut rx = t.consume(&[Emailer::kind()], 5, CancellationToken::new()).await.unwrap();
    t.set_feed(Emailer::kind(), Feed::Stopped);
    until("the emailer's consumer cancelled", || async { queue_figures(&emailer).await.1 == 0 }).await;
    t.publish(&[entry("order.fulfilled"), entry("order.fulfilled"), entry("order.fulfilled")]).await.unwrap();
    until("three orders ready", || async { queue_figures(&emailer).await == (3, 0) }).await;

    t.set_feed(Emailer::kind(), Feed::Probe);
    let probe = next(&mut rx).await;
    until("one out, two ready", || async { queue_figures(&emailer).await == (2, 1) }).await;
    probe.settler.settle(Verdict::Ack).await.unwrap();
    let second = next(&mut rx).await;
    until("one out, one ready", || async { queue_figures(&emailer).await == (1, 1) }).await;
    t.set_feed(Emailer::kind(), Feed::Full);
    second.settler.settle(Verdict::Ack).await.unwrap();
    next(&mut rx).await.settler.settle(Verdict::Ack).await.unwrap();
    until("all taken", || async { queue_figures(&emailer).await == (0, 1) }).await;
    t.close().await;
    cleanup(&p).await;
}
