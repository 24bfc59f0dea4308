//! Connection loss, stopping, back-pressure and shutdown.

use std::time::Duration;

use blog_actors::delivery::{DeliverySource, Verdict};
use blog_actors::emailer::Emailer;
use blog_actors::supervision::Worker;

use tokio_util::sync::CancellationToken;

use super::{ack_next, cleanup, close_from_broker, connect, entry, next, pending, prefix, until, Rig, DEADLINE};
use crate::transport::{Publisher, Transport};

#[tokio::test(flavor = "multi_thread")]
async fn prefetch_bounds_the_unsettled_deliveries() {
    let (t, mut rx) = Rig::with_consumer(Emailer::kind(), 2).await;
    t.publish(&(0..5).map(|_| entry("order.fulfilled")).collect::<Vec<_>>()).await.unwrap();
    let (a, _b) = (next(&mut rx).await, next(&mut rx).await);
    // Proving an absence needs a window; 500 ms is ample on loopback for a third to show up.
    assert!(tokio::time::timeout(Duration::from_millis(500), rx.recv()).await.is_err(), "a third delivery beyond prefetch 2");
    a.settler.settle(Verdict::Ack).await.unwrap();
    let _c = next(&mut rx).await;
    assert_eq!(pending(&t).await, 5 - 1, "2 waiting in the queue + 2 handed out");
    t.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_consumer_reconnects_by_itself_after_the_broker_closes_its_connection() {
    let (t, mut rx) = Rig::with_consumer(Emailer::kind(), 5).await;
    t.publish(&[entry("order.fulfilled")]).await.unwrap();
    let held = next(&mut rx).await;

    close_from_broker(&t.connection_name("consume"));
    // The unacked delivery comes again on the new connection; its old tag is dead.
    let again = next(&mut rx).await;
    assert!(again.redelivered);
    assert_eq!(t.connection_losses(), 1, "the loss is counted");
    assert!(held.settler.settle(Verdict::Ack).await.is_err(), "a tag from the lost session is not acked");
    again.settler.settle(Verdict::Ack).await.unwrap();
    assert!(t.is_consuming() && t.is_connected());

    let later = t.publish_one("order.fulfilled").await;
    ack_next(&mut rx, &later).await;
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_publisher_reconnects_on_next_use_after_the_broker_closes_it() {
    let (t, mut rx) = Rig::with_consumer(Emailer::kind(), 5).await;
    close_from_broker(&t.connection_name("publish"));
    let sent = entry("order.fulfilled");
    // The first try may still see the old connection as open for a moment.
    until("a publish goes through", || async { t.publish(std::slice::from_ref(&sent)).await.is_ok() }).await;
    ack_next(&mut rx, &sent).await;
    t.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_ends_the_stream_hands_back_the_buffered_and_still_settles_what_is_held() {
    let t = Rig::new().await;
    let stop = CancellationToken::new();
    let mut rx = t.consume(&[Emailer::kind()], 5, stop.clone()).await.unwrap();
    t.publish(&(0..3).map(|_| entry("order.fulfilled")).collect::<Vec<_>>()).await.unwrap();
    let held = next(&mut rx).await;
    until("all three are out", || async { pending(&t).await == 3 && t.is_consuming() }).await;

    stop.cancel();
    // Whatever was already queued for the reader comes out, then the stream ends;
    // dropping those hands them back to the broker.
    while let Some(late) = tokio::time::timeout(DEADLINE, rx.recv()).await.expect("the stream ends") {
        drop(late);
    }
    assert!(!t.is_consuming());
    held.settler.settle(Verdict::Ack).await.expect("the channel stays open for in-flight work");
    until("the two unhandled are back in the queue", || async { pending(&t).await == 2 }).await;
    t.close().await;
}

/// The actix case: the caller's runtime is gone before the last delivery and the
/// transport are dropped. Nothing may panic ("no reactor running").
#[test]
fn dropping_after_the_callers_runtime_stopped_does_not_panic() {
    let p = prefix();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (t, delivery) = runtime.block_on(async {
        let t = connect(&p).await;
        let mut rx = t.consume(&[Emailer::kind()], 5, CancellationToken::new()).await.unwrap();
        t.publish(&[entry("order.fulfilled")]).await.unwrap();
        let delivery = next(&mut rx).await;
        (t, delivery)
    });
    drop(runtime);
    drop(delivery);
    drop(t);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(cleanup(&p));
}
