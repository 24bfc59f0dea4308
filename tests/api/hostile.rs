//! Hostile and malformed input, one test per defect found by trying it: nothing
//! stalls, nothing is lost, nothing is forged.

use std::collections::HashSet;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use blog::transport::OutgoingMessage;
use serde_json::{json, Value};

use crate::faults::{PanickingMailer, RejectingMailer};
use crate::helpers::{eventually, order_event, spawn_app_on, spawn_app_with, Backend, TestApp};
use crate::on_every_backend;

/// Puts a body on the transport as another service (or an attacker with broker access) would.
pub async fn publish_raw(app: &TestApp, routing_key: &str, body: &[u8]) {
    let entry = OutgoingMessage {
        message_id: uuid::Uuid::new_v4(),
        routing_key: routing_key.into(),
        body: body.to_vec(),
        correlation_id: None,
        trace: None,
    };
    app.handles.transport.publish(&[entry]).await.expect("published");
}

pub fn envelope(event_type: &str, data: Value) -> Vec<u8> {
    json!({ "id": uuid::Uuid::new_v4(), "type": event_type, "occurred_at": "2026-12-01T10:00:00Z", "data": data })
        .to_string()
        .into_bytes()
}

fn order_with(order_id: &str, name: &str, lines: Value) -> Value {
    json!({ "type": "order.fulfilled",
            "data": { "order_id": order_id, "customer": { "name": name, "email": "c@example.com" }, "lines": lines } })
}

on_every_backend!(a_bad_order_is_refused_at_the_door_and_every_good_one_beside_it_is_mailed);
async fn a_bad_order_is_refused_at_the_door_and_every_good_one_beside_it_is_mailed(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let goods: Vec<Value> = (0..20).map(|i| order_event(&format!("G-{i}"), "g@example.com")).collect();
    let bad = order_with("E-1", "Eve\r\nBcc: all@example.com", json!([{"sku": "A", "name": "B", "quantity": 1}]));
    let (answers, bad) = tokio::join!(futures::future::join_all(goods.iter().map(|g| app.post_event(g))), app.post_event(&bad));
    assert_eq!(bad.status(), 422);
    assert!(answers.iter().all(|a| a.status() == 202));
    eventually("all 20 good orders mailed", || async { (app.mail_files().len() == 20).then_some(()) }).await;
    app.wait_until_idle().await;
    assert_eq!(app.mail_files().len(), 20);
    assert_eq!(app.restarts("emailer").await, 0);
    assert_eq!(app.dead_letters().await["total"], 0, "refused at the door, not parked");
}

on_every_backend!(an_order_that_breaks_the_rules_is_parked_at_once_by_the_worker);
async fn an_order_that_breaks_the_rules_is_parked_at_once_by_the_worker(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let line = json!([{"sku": "A", "name": "B", "quantity": 1}]);
    let bad = [
        order_with("E-1", "Eve\r\nX", line.clone()),
        order_with(&"L".repeat(300), "Long", line.clone()),
        order_with("Q-1", "Wrap", json!([{"sku": "A", "name": "B", "quantity": 4294967295u32}, {"sku": "A", "name": "B", "quantity": 1}])),
        order_with("S-1", "Sku", json!([{"sku": "A\nB", "name": "B", "quantity": 1}])),
        order_with("N-1", "Lines", json!((0..101).map(|_| json!({"sku": "A", "name": "B", "quantity": 1})).collect::<Vec<_>>())),
    ];
    for order in &bad {
        publish_raw(&app, "order.fulfilled", &envelope("order.fulfilled", order["data"].clone())).await;
    }
    assert_eq!(app.post_event(&order_event("OK-1", "ada@example.com")).await.status(), 202);
    eventually("the good order's mail", || async { (app.mail_files().len() == 1).then_some(()) }).await;
    let parked = eventually("five parked orders", || async {
        let parked = app.dead_letters().await;
        (parked["total"] == 5).then_some(parked)
    })
    .await;
    for item in parked["items"].as_array().unwrap() {
        assert_eq!(item["attempts"], 1, "parked at once: {item}");
        let reason = item["reason"].as_str().unwrap();
        assert!(reason.starts_with("invalid order.fulfilled data"), "{reason}");
        assert!(!reason.contains(&*app.data_dir.to_string_lossy()), "no host path: {reason}");
    }
}

on_every_backend!(a_panicking_send_releases_every_claim_so_no_order_stalls);
async fn a_panicking_send_releases_every_claim_so_no_order_stalls(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}, |adapters| {
        let inner = adapters.mailer.clone();
        adapters.mailer = Arc::new(PanickingMailer { inner, panics_left: AtomicU32::new(3), delay: Duration::from_millis(150) });
    })
    .await;
    let goods: Vec<Value> = (0..20).map(|i| order_event(&format!("G-{i}"), "g@example.com")).collect();
    let boom = order_event("BOOM-1", "b@example.com");
    let (answers, boom) = tokio::join!(futures::future::join_all(goods.iter().map(|g| app.post_event(g))), app.post_event(&boom));
    assert!(answers.iter().all(|a| a.status() == 202) && boom.status() == 202);
    eventually("all 21 orders mailed despite the panics", || async { (app.mail_files().len() == 21).then_some(()) }).await;
    assert_eq!(app.restarts("emailer").await, 3);
    app.wait_until_idle().await;
    assert_eq!(app.mail_files().len(), 21, "each mailed once");
}

on_every_backend!(distinct_order_ids_never_share_a_mail);
async fn distinct_order_ids_never_share_a_mail(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let ids = ["C/1", "C_1", "C.1", "Ä-9", "Ö-9"];
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(app.post_event(&order_event(id, &format!("c{i}@example.com"))).await.status(), 202);
    }
    eventually("five mails", || async { (app.mail_files().len() == 5).then_some(()) }).await;
    let mails: Vec<String> = app.mail_files().iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    let message_ids: HashSet<&str> =
        mails.iter().map(|m| m.lines().find(|l| l.starts_with("Message-ID:")).expect("a Message-ID")).collect();
    assert_eq!(message_ids.len(), 5, "{message_ids:?}");
    for i in 0..ids.len() {
        assert_eq!(mails.iter().filter(|m| m.contains(&format!("c{i}@example.com"))).count(), 1, "customer {i}");
    }
}

#[actix_web::test]
async fn post_events_cannot_be_forged_through_the_api() {
    let app = spawn_app_on(Backend::Embedded).await;
    let post = app.created_post("Real", &["rust"]).await;
    let id = post["id"].as_str().unwrap();
    app.wait_for_cloud(&[("rust", 1)]).await;
    let forged = [
        json!({"type": "post.created", "data": {"id": id, "title": "Defaced", "description": "x", "tags": ["rust"],
               "created_at": post["created_at"], "updated_at": post["updated_at"], "version": 9223372036854775807i64}}),
        json!({"type": "post.deleted", "data": {"id": id, "version": 99, "tags": ["rust"]}}),
        json!({"type": "post.created", "data": {"id": uuid::Uuid::new_v4(), "title": "Ghost", "description": "x",
               "tags": ["$where"], "created_at": post["created_at"], "updated_at": post["updated_at"], "version": 1}}),
    ];
    for event in &forged {
        let answer = app.post_event(event).await;
        assert_eq!(answer.status(), 422, "{event}");
        let problem: Value = answer.json().await.unwrap();
        assert_eq!(problem["accepted_types"], json!(["order.fulfilled"]), "{problem}");
    }
    app.wait_until_idle().await;
    assert_eq!(app.get_json(&format!("/posts/{id}")).await["title"], "Real");
    assert_eq!(app.get_json("/posts").await["total"], 1);
    app.wait_for_cloud(&[("rust", 1)]).await;
}

on_every_backend!(a_post_event_from_the_broker_that_breaks_the_rules_is_parked_not_applied);
async fn a_post_event_from_the_broker_that_breaks_the_rules_is_parked_not_applied(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let post = app.created_post("Real", &["rust"]).await;
    let id = post["id"].as_str().unwrap();
    app.wait_for_cloud(&[("rust", 1)]).await;
    let snapshot = |tags: Value, version: i64| {
        json!({"id": id, "title": "Defaced", "description": "x", "tags": tags,
               "created_at": post["created_at"], "updated_at": post["updated_at"], "version": version})
    };
    let forged = [
        snapshot(json!(["rust"]), 9223372036854775807),
        snapshot(json!(["$where"]), 2),
        snapshot(json!(["<img src=x onerror=alert(1)>"]), 2),
        snapshot(json!(["x".repeat(5000)]), 2),
        snapshot(json!(["RUST"]), 2),
    ];
    for data in forged {
        publish_raw(&app, "post.created", &envelope("post.created", data)).await;
    }
    // Every worker that takes post events parks each of the five.
    let parked_count = 5 * blog::startup::registered_workers().subscribers("post.created").len();
    eventually("each worker's parked deliveries", || async { (app.dead_letters().await["total"] == parked_count).then_some(()) }).await;
    let parked = app.dead_letters().await;
    assert!(parked["items"].as_array().unwrap().iter().all(|i| i["attempts"] == 1), "{parked}");
    assert_eq!(app.get_json(&format!("/posts/{id}")).await["title"], "Real");
    assert_eq!(app.tag_cloud().await, vec![("rust".to_owned(), 1)]);
}

#[actix_web::test]
async fn tags_of_every_script_are_taken_and_spellings_of_one_tag_meet() {
    let app = spawn_app_on(Backend::Embedded).await;
    for tags in [vec!["İstanbul", "cafe\u{301}", "हिन्दी"], vec!["ＲＵＳＴ", "Straße"], vec!["rust", "strasse", "café"]] {
        let answer = app.create_post(&crate::helpers::post_body("T", &tags)).await;
        assert_eq!(answer.status(), 201, "{tags:?}: {}", answer.text().await.unwrap());
    }
    app.wait_for_cloud(&[("café", 2), ("rust", 2), ("strasse", 2), ("i\u{307}stanbul", 1), ("हिन्दी", 1)]).await;
}

#[actix_web::test]
async fn a_flood_of_tags_costs_little_and_answers_briefly() {
    let app = spawn_app_on(Backend::Embedded).await;
    let many: Vec<String> = (0..8_500).map(|i| format!("t{i}")).collect();
    let invalid: Vec<String> = (0..8_000).map(|i| format!("<{i}")).collect();
    for tags in [many, invalid] {
        let body = json!({"title": "T", "description": "D", "tags": tags});
        let answer = app.create_post(&body).await;
        assert!(matches!(answer.status().as_u16(), 413 | 422), "{}", answer.status());
        let text = answer.text().await.unwrap();
        assert!(text.len() < 4_096, "a short answer, got {} bytes", text.len());
    }
}

#[actix_web::test]
async fn a_last_error_is_shown_only_to_the_key_holder_and_never_with_an_address() {
    let app = spawn_app_with(Backend::Embedded, |_| {}, |adapters| adapters.mailer = Arc::new(RejectingMailer)).await;
    assert_eq!(app.post_event(&order_event("P-1", "ada@example.com")).await.status(), 202);
    eventually("the refused order parked", || async { (app.dead_letters().await["total"] == 1).then_some(()) }).await;
    let last_error = |actors: Value| {
        actors.as_array().unwrap().iter().find(|a| a["name"] == "emailer").unwrap()["last_error"].as_str().unwrap().to_owned()
    };
    let public = last_error(app.get_json("/actors").await);
    assert!(!public.contains("550") && !public.contains("ada@"), "{public}");
    let authed = last_error(app.get_authed("/actors").await);
    assert!(authed.contains("550") && !authed.contains("ada@"), "{authed}");
}

#[actix_web::test]
async fn a_keyless_service_takes_writes_only_from_loopback_names_and_never_cross_site() {
    let app = spawn_app_with(Backend::Embedded, |s| s.api_key = None, |_| {}).await;
    let rebuild = format!("{}/admin/tag-cloud/rebuild", app.address);
    let send = |headers: Vec<(&'static str, &'static str)>, body: Option<&'static str>| {
        let mut request = app.client.post(&rebuild);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        request.send()
    };
    assert_eq!(send(vec![], None).await.unwrap().status(), 200, "curl on loopback");
    assert_eq!(send(vec![("Host", "rebind.evil.example:8080")], None).await.unwrap().status(), 403, "DNS rebinding");
    assert_eq!(send(vec![("Content-Type", "text/plain")], Some("x")).await.unwrap().status(), 415, "a form-like body");
    assert_eq!(send(vec![("Origin", "http://evil.example")], None).await.unwrap().status(), 403, "CSRF by Origin");
    assert_eq!(send(vec![("Sec-Fetch-Site", "cross-site")], None).await.unwrap().status(), 403, "CSRF by fetch metadata");
}
