//! The circuit breaker per worker and pausing by hand: a mail-server outage
//! parks nothing and mails every order once afterwards; a paused worker takes
//! nothing until resumed; the other workers go on meanwhile.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{order_event, spawn_app_with, within, Backend, TestApp};
use crate::hostile::publish_raw;
use crate::on_every_backend;
use crate::smtp_sink::SmtpSink;

/// The outage the issue describes.
const OUTAGE: Duration = Duration::from_secs(60);
const ORDERS: usize = 300;
/// Enough for 300 mails after the cool-down, on a busy shared machine.
const CATCH_UP: Duration = Duration::from_secs(90);

on_every_backend!(an_smtp_outage_parks_nothing_and_mails_every_order_once, transports);

async fn an_smtp_outage_parks_nothing_and_mails_every_order_once(backend: Backend) {
    let (mut sink, app) = app_mailing_through_a_stopped_sink(backend, Duration::from_secs(2)).await;
    let outage = Instant::now();
    // A malformed order at the head of the queue: parked at once, and not counted as the mail server's fault.
    publish_raw(&app, "order.fulfilled", &malformed("BAD-1")).await;
    for i in 0..ORDERS {
        assert_eq!(app.post_event(&order_event(&format!("OUT-{i}"), "ada@example.com")).await.status(), 202);
    }
    within(Duration::from_secs(30), "the first malformed order parked and the emailer's breaker open", || async {
        let parked = app.dead_letters().await;
        (parked["total"] == 1 && breaker(&app, "emailer").await["opened"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    assert_eq!(app.dead_letters().await["items"][0]["attempts"], 1, "parked at its first attempt");
    // Another one while the breaker is open: it waits in the queue with the orders and is parked on first sight.
    publish_raw(&app, "order.fulfilled", &malformed("BAD-2")).await;
    // The other workers go on while the emailer's breaker is open.
    app.created_post("While the mail server is down", &["outage"]).await;
    app.wait_for_cloud(&[("outage", 1)]).await;
    // Until the outage has lasted its full length: the breaker keeps every order out of the parking lot.
    while outage.elapsed() < OUTAGE {
        let parked = app.dead_letters().await;
        let orders_parked = parked["items"].as_array().unwrap().iter().filter(|i| !is_malformed(i)).count();
        assert_eq!(orders_parked, 0, "an order was parked during the outage: {parked}");
        assert!(sink.received().is_empty());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let opened_during_outage = breaker(&app, "emailer").await["opened"].as_u64().unwrap_or(0);
    sink.restart();
    let back = Instant::now();
    within(CATCH_UP, "every order mailed after the outage", || async { (sink.received().len() >= ORDERS).then_some(()) }).await;
    let caught_up = back.elapsed();
    within(CATCH_UP, "the breaker closed", || async { (breaker(&app, "emailer").await["state"] == "closed").then_some(()) }).await;
    app.wait_until_idle().await;

    let received = sink.received();
    let subjects: HashSet<String> = received.iter().filter_map(|m| m.lines().find(|l| l.starts_with("Subject:")).map(str::to_owned)).collect();
    assert_eq!((received.len(), subjects.len()), (ORDERS, ORDERS), "every order mailed exactly once");
    let parked = app.dead_letters().await;
    let items = parked["items"].as_array().unwrap();
    assert_eq!(parked["total"], 2, "only the two malformed orders are parked: {parked}");
    assert!(items.iter().all(|i| is_malformed(i) && i["attempts"] == 1), "{parked}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let series = |name: &str| metric(&metrics, name).unwrap_or_else(|| panic!("{name} missing from /metrics"));
    assert!(series("blog_breaker_transitions_total{actor=\"emailer\",to=\"open\"}") >= 1.0, "{metrics}");
    assert!(series("blog_breaker_transitions_total{actor=\"emailer\",to=\"half_open\"}") >= 1.0);
    assert!(series("blog_breaker_transitions_total{actor=\"emailer\",to=\"closed\"}") >= 1.0);
    assert_eq!(series("blog_breaker_state{actor=\"emailer\"}"), 0.0, "closed again");
    assert_eq!(series("blog_breaker_transitions_total{actor=\"tag_aggregator\",to=\"open\"}"), 0.0, "only the emailer's opened");
    let emailer = actor(&app, "emailer").await;
    assert!(emailer["breaker"]["postponed"].as_u64() > Some(0), "deliveries went back unspent: {emailer}");
    assert_eq!(series("blog_actor_messages_total{actor=\"emailer\",outcome=\"postponed\"}"), emailer["breaker"]["postponed"].as_f64().unwrap());
    println!(
        "{backend:?}: {ORDERS} orders over a {OUTAGE:?} SMTP outage: breaker opened {opened_during_outage} times, \
         every order mailed {caught_up:?} after the server came back; emailer retries (attempts used) {}, \
         deliveries postponed unspent {}; 0 parked",
        emailer["retried"], emailer["breaker"]["postponed"]
    );
}

on_every_backend!(a_worker_paused_by_hand_takes_nothing_until_resumed, transports);

async fn a_worker_paused_by_hand_takes_nothing_until_resumed(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}, |_| {}).await;
    let keyless = app.client.post(format!("{}/admin/workers/emailer/pause", app.address)).send().await.unwrap();
    assert_eq!(keyless.status(), 401);
    let unknown = app.post_authed("/admin/workers/nobody/pause", &Value::Null).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.headers()["content-type"], "application/problem+json");

    let paused = app.post_authed("/admin/workers/emailer/pause", &Value::Null).await;
    assert_eq!(paused.status(), 200);
    let paused: Value = paused.json().await.unwrap();
    assert_eq!((paused["worker"].as_str(), paused["breaker"]["paused"].as_bool()), (Some("emailer"), Some(true)), "{paused}");
    for i in 0..5 {
        assert_eq!(app.post_event(&order_event(&format!("P-{i}"), "ada@example.com")).await.status(), 202);
    }
    // Events published after the orders are handled by the others: the pipeline moved on past them.
    app.created_post("While the emailer is paused", &["paused"]).await;
    app.wait_for_cloud(&[("paused", 1)]).await;
    assert!(app.mail_files().is_empty(), "a paused worker mails nothing");
    assert_eq!(breaker(&app, "emailer").await["paused"], true);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(metric(&metrics, "blog_worker_paused{actor=\"emailer\"}"), Some(1.0), "{metrics}");
    assert_eq!(metric(&metrics, "blog_operator_actions_total{action=\"pause\"}"), Some(1.0), "an operator action, counted");
    let emailer = actor(&app, "emailer").await;
    assert_eq!(emailer["handled_ok"], 0, "{emailer}");

    assert_eq!(app.post_authed("/admin/workers/emailer/resume", &Value::Null).await.status(), 200);
    within(Duration::from_secs(20), "the five mails after resuming", || async { (app.mail_files().len() == 5).then_some(()) }).await;
    app.wait_until_idle().await;
    assert_eq!(app.mail_files().len(), 5);
    assert_eq!(app.dead_letters().await["total"], 0, "nothing parked, no attempt used up");
    assert_eq!(breaker(&app, "emailer").await["paused"], false);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(metric(&metrics, "blog_operator_actions_total{action=\"resume\"}"), Some(1.0), "{metrics}");
}

on_every_backend!(a_worker_paused_by_hand_stays_paused_through_its_breakers_cool_down, transports);

async fn a_worker_paused_by_hand_stays_paused_through_its_breakers_cool_down(backend: Backend) {
    let (mut sink, app) = app_mailing_through_a_stopped_sink(backend, Duration::from_secs(1)).await;
    for i in 0..10 {
        assert_eq!(app.post_event(&order_event(&format!("H-{i}"), "ada@example.com")).await.status(), 202);
    }
    within(Duration::from_secs(30), "the emailer's breaker open", || async {
        (breaker(&app, "emailer").await["opened"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    assert_eq!(app.post_authed("/admin/workers/emailer/pause", &Value::Null).await.status(), 200);
    sink.restart();
    // The cool-down passes, the breaker would probe, but the hand switch keeps the worker paused.
    within(Duration::from_secs(30), "the breaker half-open with no probe let through", || async {
        (breaker(&app, "emailer").await["state"] == "half_open").then_some(())
    })
    .await;
    app.created_post("While the emailer is held", &["held"]).await;
    app.wait_for_cloud(&[("held", 1)]).await;
    assert!(sink.received().is_empty(), "a worker paused by hand takes nothing, whatever its breaker does");
    assert_eq!(breaker(&app, "emailer").await["state"], "half_open");

    assert_eq!(app.post_authed("/admin/workers/emailer/resume", &Value::Null).await.status(), 200);
    within(Duration::from_secs(30), "the ten mails after resuming", || async { (sink.received().len() == 10).then_some(()) }).await;
    within(Duration::from_secs(10), "the breaker closed by the probe", || async {
        (breaker(&app, "emailer").await["state"] == "closed").then_some(())
    })
    .await;
    app.wait_until_idle().await;
    assert_eq!(sink.received().len(), 10);
    assert_eq!(app.dead_letters().await["total"], 0, "no attempt used up while paused or open");
}

/// An app mailing through an SMTP server that is then stopped; its breakers open
/// after three unavailable failures within 30 s and cool down for `cooldown`.
async fn app_mailing_through_a_stopped_sink(backend: Backend, cooldown: Duration) -> (SmtpSink, TestApp) {
    let mut sink = SmtpSink::start(&[]);
    let app = spawn_app_with(
        backend,
        |s| {
            s.smtp_url = Some(sink.url().into());
            s.breaker_failures = 3;
            s.breaker_window = Duration::from_secs(30);
            s.breaker_cooldown = cooldown;
        },
        |_| {},
    )
    .await;
    sink.stop();
    (sink, app)
}

/// An order envelope missing its customer: invalid, whatever the mail server does.
fn malformed(order_id: &str) -> Vec<u8> {
    serde_json::json!({
        "id": uuid::Uuid::new_v4(), "type": "order.fulfilled", "occurred_at": "2026-12-01T10:00:00Z",
        "data": { "order_id": order_id, "lines": [] }
    })
    .to_string()
    .into_bytes()
}

fn is_malformed(parked: &Value) -> bool {
    parked["reason"].as_str().is_some_and(|r| r.contains("missing field `customer`"))
}

async fn actor(app: &TestApp, name: &str) -> Value {
    let actors = app.get_json("/actors").await;
    actors.as_array().unwrap().iter().find(|a| a["name"] == name).cloned().unwrap_or_else(|| panic!("no {name} in {actors}"))
}

async fn breaker(app: &TestApp, worker: &str) -> Value {
    actor(app, worker).await["breaker"].clone()
}

/// The value of one series in Prometheus text.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}
