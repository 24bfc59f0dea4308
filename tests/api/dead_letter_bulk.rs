//! 10,000 parked messages replayed in bulk: each is handled once more, exactly
//! once, and the replay keeps to `BLOG_REPLAY_RATE` (its lower bound: the
//! elapsed time is at least what the rate allows past the first batch).

use std::time::{Duration, Instant};

use blog::transport::OutgoingMessage;
use serde_json::{json, Value};

use crate::faults::FlakyMailer;
use crate::helpers::{spawn_app_with, within, Backend, TestApp};
use crate::hostile::envelope;
use crate::on_every_backend;

const MESSAGES: usize = 10_000;
const RATE: u32 = 2_000;
/// Parking, then mailing, 10,000 messages on a shared 2-core machine.
const PATIENCE: Duration = Duration::from_secs(300);

async fn publish_orders(app: &TestApp) {
    let orders: Vec<OutgoingMessage> = (0..MESSAGES)
        .map(|i| {
            let data = json!({ "order_id": format!("B-{i}"), "customer": { "name": "Ada", "email": format!("b{i}@example.com") },
                               "lines": [ { "sku": "BK-1", "name": "Notes", "quantity": 1 } ] });
            OutgoingMessage { message_id: uuid::Uuid::new_v4(), routing_key: "order.fulfilled".into(), body: envelope("order.fulfilled", data), correlation_id: None, trace: None }
        })
        .collect();
    for batch in orders.chunks(500) {
        app.handles.transport.publish(batch).await.expect("published");
    }
}

fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn ten_thousand_parked_messages_are_replayed_once_each_at_the_configured_rate(backend: Backend) {
    let mut flaky = None;
    let app = spawn_app_with(
        backend,
        |s| {
            s.max_attempts = 1;
            s.replay_rate = RATE;
            // The pile of dead letters an outage leaves when nothing holds the worker
            // back: with its breaker on, the outage would park none of them.
            s.breaker_failures = u32::MAX;
        },
        |a| flaky = Some(FlakyMailer::install(a, MESSAGES as u32)),
    )
    .await;
    let flaky = flaky.expect("the app was built");
    publish_orders(&app).await;
    let transport = app.handles.transport.clone();
    within(PATIENCE, "10,000 parked", || async { (transport.parked_count().await.ok() == Some(MESSAGES as u64)).then_some(()) }).await;

    // A dry run reads every parked message; meanwhile the count neither dips (the
    // messages it holds still count) nor waits for it.
    let done = std::cell::Cell::new(false);
    let dry_run = async {
        let dry = app.post_authed("/dead-letters/replay", &json!({ "worker": "emailer", "dry_run": true })).await;
        done.set(true);
        dry
    };
    let watch = async {
        let (mut lowest, mut reads) = (u64::MAX, 0);
        while !done.get() {
            lowest = lowest.min(transport.parked_count().await.expect("the count answers during a read"));
            reads += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (lowest, reads)
    };
    let (dry, (lowest, reads)) = tokio::join!(dry_run, watch);
    assert_eq!(dry.json::<Value>().await.unwrap()["count"], MESSAGES);
    assert!(reads >= 1, "the count was read during the dry run");
    // At most the one message on the wire between the broker and the count is missed.
    assert!(lowest + 1 >= MESSAGES as u64, "the count dipped to {lowest} during a dry run ({reads} reads)");
    assert_eq!(transport.parked_count().await.unwrap(), MESSAGES as u64, "the dry run left every message parked");

    let started = Instant::now();
    let replayed = app.post_authed("/dead-letters/replay", &json!({ "worker": "emailer" })).await;
    let elapsed = started.elapsed();
    assert_eq!(replayed.status(), 200);
    assert_eq!(replayed.json::<Value>().await.unwrap()["count"], MESSAGES);
    // The throttle's burst is one batch (a tenth of a second's worth); the rest waits its turn.
    let batch = (RATE / 10) as usize;
    let floor = Duration::from_secs_f64((MESSAGES - batch) as f64 / f64::from(RATE));
    println!("replayed {MESSAGES} at BLOG_REPLAY_RATE={RATE} in {elapsed:?} (floor {floor:?})");
    assert!(elapsed >= floor, "the replay went faster than the rate allows: {elapsed:?} < {floor:?}");

    within(PATIENCE, "10,000 mails", || async { (app.mail_files().len() == MESSAGES).then_some(()) }).await;
    app.wait_until_idle().await;
    let parked_again = app.get_authed("/dead-letters?limit=20").await;
    assert_eq!(parked_again["total"], 0, "nothing parked again: {parked_again}");
    assert_eq!(flaky.calls.lock().unwrap().len(), 2 * MESSAGES, "each refused once, then sent exactly once");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let deliveries = sample(&metrics, r#"blog_queue_reader_deliveries_total{worker="emailer"}"#);
    assert_eq!(deliveries, Some(2.0 * MESSAGES as f64), "each message was delivered once, then replayed once");
}

on_every_backend!(ten_thousand_parked_messages_are_replayed_once_each_at_the_configured_rate, transports);
