//! The dead-letter console's API: filters, groups, paging, dry runs, bulk
//! replay and delete, bounds and the key, on the embedded queue and on RabbitMQ.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::faults::FlakyMailer;
use crate::helpers::{eventually, order_event, spawn_app_with, Backend, TestApp, API_KEY};
use crate::hostile::{envelope, publish_raw};
use crate::on_every_backend;

/// Orders the (failing) mail server refused, malformed orders, and events no worker takes.
pub const SMTP_REFUSED: usize = 3;
pub const MALFORMED: usize = 2;
pub const UNROUTED: usize = 1;

/// The warning threshold: the three kinds together pass it.
pub const PARKED_WARN: u64 = 5;

/// An app whose mailer refuses the first `SMTP_REFUSED` mails, with one attempt each.
pub async fn app_with_a_refusing_mailer(backend: Backend) -> (TestApp, Arc<FlakyMailer>) {
    let mut flaky = None;
    let configure = |s: &mut blog::configuration::Settings| {
        s.max_attempts = 1;
        s.parked_warn = PARKED_WARN;
    };
    let app = spawn_app_with(backend, configure, |a| flaky = Some(FlakyMailer::install(a, SMTP_REFUSED as u32))).await;
    (app, flaky.expect("the app was built"))
}

/// Parks three kinds of failure and waits until all are parked.
pub async fn park_three_kinds(app: &TestApp) {
    for i in 0..SMTP_REFUSED {
        assert_eq!(app.post_event(&order_event(&format!("R-{}", 1040 + i), &format!("buyer{i}@example.com"))).await.status(), 202);
    }
    for i in 0..MALFORMED {
        publish_raw(app, "order.fulfilled", &envelope("order.fulfilled", json!({ "order_id": format!("X-{i}"), "lines": [] }))).await;
    }
    for _ in 0..UNROUTED {
        publish_raw(app, "user.signed_up", &envelope("user.signed_up", json!({}))).await;
    }
    let all = SMTP_REFUSED + MALFORMED + UNROUTED;
    eventually("every failure parked", || async { (app.dead_letters().await["total"] == all).then_some(()) }).await;
}

async fn get_with_key(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.get(format!("{}{path}", app.address)).header("X-API-Key", API_KEY).send().await.expect("request")
}

async fn listed(app: &TestApp, query: &str) -> Value {
    let response = get_with_key(app, &format!("/dead-letters?{query}")).await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

fn group<'a>(list: &'a Value, worker: &str, contains: &str) -> &'a Value {
    list["groups"].as_array().unwrap().iter().find(|g| g["worker"] == worker && g["fingerprint"].as_str().unwrap().contains(contains)).unwrap_or_else(|| panic!("no {worker} group with {contains:?} in {list}"))
}

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    response.json().await.unwrap()
}

async fn filters_groups_dry_runs_and_bulk_actions(backend: Backend) {
    let (app, flaky) = app_with_a_refusing_mailer(backend).await;
    park_three_kinds(&app).await;

    let all = listed(&app, "").await;
    assert_eq!(all["groups"].as_array().unwrap().len(), 3, "{all}");
    let smtp = group(&all, "emailer", "try again later");
    assert_eq!(smtp["count"], SMTP_REFUSED);
    assert!(!smtp["fingerprint"].as_str().unwrap().contains("R-104"), "ids are left out: {smtp}");
    assert!(smtp["first_seen"].as_str().unwrap() <= smtp["last_seen"].as_str().unwrap());
    assert_eq!(group(&all, "emailer", "customer")["count"], MALFORMED);
    assert_eq!(group(&all, "unrouted", "")["count"], UNROUTED);
    assert!(all["items"][0]["headers"].is_object(), "{all}");
    assert_eq!(all["parked_warn"], PARKED_WARN);
    let lot = |worker: &str| all["lots"].as_array().unwrap().iter().find(|l| l["worker"] == worker).map(|l| l["parked"].clone());
    assert_eq!((lot("emailer"), lot("unrouted"), lot("projector")), (Some(json!(SMTP_REFUSED + MALFORMED)), Some(json!(UNROUTED)), Some(json!(0))));
    assert!(all["retry_levels"].is_array(), "{all}");

    // Each filter alone, then together.
    let fingerprint = smtp["fingerprint"].as_str().unwrap().to_owned();
    let encoded = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    for (query, expected) in [
        ("worker=unrouted".to_owned(), UNROUTED),
        ("type=user.signed_up".to_owned(), UNROUTED),
        ("reason=MISSING%20FIELD".to_owned(), MALFORMED),
        ("worker=emailer&reason=421".to_owned(), SMTP_REFUSED),
        ("since=2000-01-01T00:00:00Z".to_owned(), SMTP_REFUSED + MALFORMED + UNROUTED),
        ("since=2999-01-01T00:00:00%2B01:00".to_owned(), 0),
        (format!("group={}", encoded(&fingerprint)), SMTP_REFUSED),
    ] {
        let list = listed(&app, &query).await;
        assert_eq!(list["total"], expected, "{query}: {list}");
        assert_eq!(list["items"].as_array().unwrap().len(), expected, "{query}");
    }

    // Pages: every message once, in order, with the offset of the next page.
    let first = listed(&app, "limit=4").await;
    assert_eq!((first["items"].as_array().unwrap().len(), first["next_offset"].as_u64()), (4, Some(4)));
    let second = listed(&app, "limit=4&offset=4").await;
    assert_eq!((second["items"].as_array().unwrap().len(), second["next_offset"].as_u64()), (2, None));
    let mut ids: Vec<&str> = first["items"].as_array().unwrap().iter().chain(second["items"].as_array().unwrap()).map(|i| i["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 6);

    // A dry run counts and leaves everything parked.
    let dry = app.post_authed("/dead-letters/replay", &json!({ "group": fingerprint, "dry_run": true })).await;
    assert_eq!(dry.status(), 200);
    assert_eq!(dry.json::<Value>().await.unwrap(), json!({ "action": "replay", "dry_run": true, "count": SMTP_REFUSED }));
    assert_eq!(app.dead_letters().await["total"], 6);

    // The mail server is back (its refusals are used up): replay the group; only it leaves.
    let replayed = app.post_authed("/dead-letters/replay", &json!({ "worker": "emailer", "group": fingerprint })).await;
    assert_eq!(replayed.json::<Value>().await.unwrap()["count"], SMTP_REFUSED);
    eventually("the replayed orders mailed", || async { (app.mail_files().len() == SMTP_REFUSED).then_some(()) }).await;
    assert_eq!(flaky.calls.lock().unwrap().len(), 2 * SMTP_REFUSED, "each refused once, then sent once");
    let left = app.dead_letters().await;
    assert_eq!(left["total"], MALFORMED + UNROUTED, "{left}");

    let dry = app.post_authed("/dead-letters/delete", &json!({ "dry_run": true })).await;
    assert_eq!(dry.json::<Value>().await.unwrap()["count"], MALFORMED + UNROUTED);
    let deleted = app.post_authed("/dead-letters/delete", &json!({})).await;
    assert_eq!(deleted.json::<Value>().await.unwrap()["count"], MALFORMED + UNROUTED);
    assert_eq!(app.dead_letters().await["total"], 0);

    let metrics = app.get("/metrics").await.text().await.unwrap();
    for series in [r#"blog_operator_actions_total{action="bulk_replay"} 1"#, r#"blog_operator_actions_total{action="bulk_delete"} 1"#, r#"blog_worker_parked_messages{worker="emailer"} 0"#] {
        assert!(metrics.lines().any(|l| l == series), "no {series} in\n{metrics}");
    }
}

async fn every_field_is_bounded_and_every_call_needs_the_key(backend: Backend) {
    let (app, _) = app_with_a_refusing_mailer(backend).await;
    for query in ["limit=0", "limit=1001", "offset=1000001", "limit=x", "since=yesterday"] {
        problem(get_with_key(&app, &format!("/dead-letters?{query}")).await, 400).await;
    }
    let long = "r".repeat(201);
    let body = problem(get_with_key(&app, &format!("/dead-letters?reason={long}")).await, 400).await;
    assert_eq!(body["errors"][0]["field"], "reason", "{body}");
    for (path, body, status) in [
        ("/dead-letters/replay", json!({ "reason": long }), 422),
        ("/dead-letters/delete", json!({ "worker": "w".repeat(65) }), 422),
        ("/dead-letters/replay", json!({ "since": "not a time" }), 422),
        ("/dead-letters/delete", json!({ "dry_run": true, "everything": true }), 422),
        ("/dead-letters/replay", json!({ "dry_run": "yes" }), 422),
    ] {
        problem(app.post_authed(path, &body).await, status).await;
    }
    let no_key = app.client.get(format!("{}/dead-letters", app.address)).send().await.unwrap();
    problem(no_key, 401).await;
    for path in ["/dead-letters/replay", "/dead-letters/delete"] {
        let response = app.client.post(format!("{}{path}", app.address)).json(&json!({ "dry_run": true })).send().await.unwrap();
        problem(response, 401).await;
    }
    let doc = app.get_json("/openapi.json").await;
    for path in ["/dead-letters/replay", "/dead-letters/delete", "/console/dead-letters"] {
        assert!(doc["paths"][path].is_object(), "{path} is not described");
    }
    assert_eq!(doc["components"]["schemas"]["BulkRequest"]["properties"]["reason"]["maxLength"], 200);
}

on_every_backend!(filters_groups_dry_runs_and_bulk_actions, transports);

on_every_backend!(every_field_is_bounded_and_every_call_needs_the_key, transports);
