//! RabbitMQ-only behaviour: a plain AMQP client as publisher, and the broker
//! closing our connection while events flow.

use std::collections::BTreeMap;
use std::process::Command;

use amqprs::channel::BasicPublishArguments;
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::BasicProperties;
use blog::transport::OutgoingMessage;
use blog_actors::event::{Envelope, PostSnapshot, POST_CREATED};
use serde_json::json;

use crate::helpers::{amqp_url, eventually, order_event, spawn_app_on, Backend, TestApp};

/// The prefix the app's queues and exchange carry.
fn prefix(app: &TestApp) -> String {
    app.amqp.as_ref().expect("a RabbitMQ app").1.clone()
}

#[actix_web::test]
async fn an_event_published_by_a_plain_amqp_client_is_processed() {
    let app = spawn_app_on(Backend::Rabbit).await;
    let mut event = order_event("PLAIN-1", "ada@example.com");
    event["id"] = json!(uuid::Uuid::new_v4());
    event["occurred_at"] = json!("2026-11-28T12:00:00Z");

    // Not our transport: amqprs by hand, as any other service would publish.
    let connection = Connection::open(&OpenConnectionArguments::try_from(amqp_url().as_str()).unwrap()).await.unwrap();
    let channel = connection.open_channel(None).await.unwrap();
    let mut props = BasicProperties::default();
    props.with_content_type("application/json").with_delivery_mode(2).with_message_type("order.fulfilled");
    let exchange = format!("{}.events", prefix(&app));
    channel
        .basic_publish(props, event.to_string().into_bytes(), BasicPublishArguments::new(&exchange, "order.fulfilled"))
        .await
        .unwrap();
    channel.close().await.unwrap();
    connection.close().await.unwrap();

    eventually("the mail for the plain client's event", || async { (app.mail_files().len() == 1).then_some(()) }).await;
    let mail = std::fs::read_to_string(&app.mail_files()[0]).unwrap();
    assert!(mail.contains("Your order PLAIN-1 is on its way"), "{mail}");
}

/// The broker-side pid of our consumer connection, as rabbitmqctl names it.
fn consumer_connection_pid(prefix: &str) -> Option<String> {
    let out = Command::new("rabbitmqctl").args(["-q", "list_connections", "pid", "client_properties"]).output().ok()?;
    let name = format!("\"blog-{prefix}-consume-{}\"", std::process::id());
    String::from_utf8_lossy(&out.stdout).lines().find(|l| l.contains(&name)).and_then(|l| l.split_whitespace().next().map(str::to_owned))
}

fn close_from_broker(pid: &str) {
    let status = Command::new("rabbitmqctl").args(["-q", "close_connection", pid, "closed by the resilience test"]).status().unwrap();
    assert!(status.success(), "rabbitmqctl close_connection failed");
}

const TAGS: [&str; 5] = ["one", "two", "three", "four", "five"];

/// Post `i`, tagged with every one of `TAGS` whose position + 1 divides `i`.
pub(crate) fn post_created(i: usize) -> OutgoingMessage {
    let tags: Vec<String> = TAGS.iter().enumerate().filter(|(t, _)| i.is_multiple_of(t + 1)).map(|(_, tag)| tag.to_string()).collect();
    let now = chrono::Utc::now();
    let post = PostSnapshot {
        id: uuid::Uuid::new_v4(),
        title: format!("Post {i}"),
        description: "A body.".into(),
        tags,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let envelope = Envelope::new(POST_CREATED, serde_json::to_value(post).unwrap(), None);
    OutgoingMessage { message_id: envelope.id, routing_key: POST_CREATED.into(), body: envelope.to_bytes(), correlation_id: None, trace: None }
}

/// The tag cloud of posts `0..events` made by `post_created`, most used first.
pub(crate) fn expected_cloud(events: usize) -> Vec<(&'static str, i64)> {
    let mut expected: BTreeMap<&str, i64> = BTreeMap::new();
    for i in 0..events {
        for (t, tag) in TAGS.iter().enumerate() {
            if i.is_multiple_of(t + 1) {
                *expected.entry(tag).or_default() += 1;
            }
        }
    }
    let mut expected: Vec<(&str, i64)> = expected.into_iter().collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    expected
}

#[actix_web::test]
async fn three_broker_side_connection_closes_during_five_thousand_events_leave_every_effect_exactly_once() {
    const EVENTS: usize = 5_000;
    const BATCH: usize = 250;
    let app = spawn_app_on(Backend::Rabbit).await;
    let prefix = prefix(&app);
    let mut closes = 0;
    for batch in 0..EVENTS / BATCH {
        let entries: Vec<OutgoingMessage> = (batch * BATCH..(batch + 1) * BATCH).map(post_created).collect();
        app.handles.transport.publish(&entries).await.expect("published");
        if batch % 6 == 5 && closes < 3 {
            // Wait for the reader to be connected (again), then cut it off mid-stream.
            let pid = eventually("a consumer connection", || async { consumer_connection_pid(&prefix) }).await;
            close_from_broker(&pid);
            closes += 1;
        }
    }
    assert_eq!(closes, 3);

    let expected = expected_cloud(EVENTS);
    app.wait_for_cloud(&expected).await;
    eventually("every post projected", || async { (app.get_json("/posts?per_page=1").await["total"] == EVENTS).then_some(()) }).await;
    app.wait_until_idle().await;
    assert_eq!(app.handles.transport.pending_deliveries().await.unwrap(), 0, "nothing left unacked");
    assert_eq!(app.dead_letters().await["total"], 0);
    assert!(consumer_connection_pid(&prefix).is_some(), "the reader reconnected by itself");
    assert_eq!(app.get("/health/ready").await.status(), 200);
}
