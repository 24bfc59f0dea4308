//! A corpus of hostile input thrown at every door at once: every write route,
//! the read routes' parameters, `POST /events` and raw messages on the
//! transport. Afterwards: no 5xx, no actor restart, nothing parked that the
//! door should have refused, and a normal post and a normal order still flow exactly.

use serde_json::{json, Value};

use crate::helpers::{eventually, order_event, spawn_app_on, Backend, TestApp, API_KEY};
use crate::hostile::{envelope, publish_raw};
use crate::on_every_backend;

/// One request of the corpus.
struct Case {
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn json_case(method: &'static str, path: &str, body: Value) -> Case {
    Case { method, path: path.to_owned(), content_type: Some("application/json"), body: body.to_string().into_bytes() }
}

fn raw_case(method: &'static str, path: &str, content_type: Option<&'static str>, body: &[u8]) -> Case {
    Case { method, path: path.to_owned(), content_type, body: body.to_vec() }
}

/// Strings at and past every bound, with every kind of character that has caused trouble somewhere.
fn hostile_strings() -> Vec<String> {
    vec![
        String::new(),
        " ".into(),
        "\u{0}".into(),
        "a\r\nBcc: x@example.com".into(),
        "\u{202E}txt.exe".into(),
        "\u{2066}bidi\u{2069}".into(),
        "\u{FEFF}bom".into(),
        "\u{7f}\u{85}\u{9f}".into(),
        "$where".into(),
        "<script>alert(1)</script>".into(),
        "'; DROP TABLE posts; --".into(),
        "{{ 7*7 }}".into(),
        "../../etc/passwd".into(),
        "x".repeat(33),
        "x".repeat(201),
        "é".repeat(20_001),
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢".into(),
        "Z̴̡̛a̸l̷g̶o̵".into(),
    ]
}

fn post_bodies(strings: &[String]) -> Vec<Value> {
    let mut bodies: Vec<Value> = Vec::new();
    for s in strings {
        bodies.push(json!({"title": s, "description": "D", "tags": []}));
        bodies.push(json!({"title": "T", "description": s, "tags": []}));
        bodies.push(json!({"title": "T", "description": "D", "tags": [s]}));
    }
    bodies.extend([
        json!({"title": 5, "description": "D"}),
        json!({"title": "T", "description": "D", "tags": "rust"}),
        json!({"title": "T", "description": "D", "tags": [1, 2]}),
        json!({"title": "T", "description": "D", "tags": [null]}),
        json!({"title": "T", "description": "D", "tags": (0..41).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
        json!({"title": "T", "description": "D", "tags": (0..11).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
        json!({"title": "T", "description": "D", "extra": true}),
        json!({"title": null, "description": "D"}),
        json!({"description": "D"}),
        json!([]),
        json!("post"),
        json!(null),
        json!(1e308),
    ]);
    bodies
}

fn order_bodies(strings: &[String]) -> Vec<Value> {
    let order = |order_id: Value, name: Value, email: Value, lines: Value| {
        json!({"type": "order.fulfilled", "data": {"order_id": order_id, "customer": {"name": name, "email": email}, "lines": lines}})
    };
    let line = json!([{"sku": "S", "name": "N", "quantity": 1}]);
    let mut bodies = Vec::new();
    for s in strings {
        bodies.push(order(json!(s), json!("Ada"), json!("a@example.com"), line.clone()));
        bodies.push(order(json!("A-1"), json!(s), json!("a@example.com"), line.clone()));
        bodies.push(order(json!("A-1"), json!("Ada"), json!(s), line.clone()));
        bodies.push(order(json!("A-1"), json!("Ada"), json!("a@example.com"), json!([{"sku": s, "name": "N", "quantity": 1}])));
    }
    for quantity in [json!(0), json!(-1), json!(10_001), json!(4294967295u32), json!(4294967296u64), json!(1.5), json!("1"), json!(null)] {
        bodies.push(order(json!("Q-1"), json!("Ada"), json!("a@example.com"), json!([{"sku": "S", "name": "N", "quantity": quantity}])));
    }
    bodies.extend([
        order(json!("L-1"), json!("Ada"), json!("a@example.com"), json!([])),
        order(json!("L-2"), json!("Ada"), json!("a@example.com"), json!(vec![json!({"sku": "S", "name": "N", "quantity": 1}); 101])),
        order(json!(1), json!("Ada"), json!("a@example.com"), line.clone()),
        order(json!("E-1"), json!("Ada"), json!("a@@example.com"), line.clone()),
        order(json!("E-2"), json!("Ada"), json!("Ada <a@example.com>"), line.clone()),
        order(json!("E-3"), json!("Ada"), json!("a@example.com, b@example.com"), line.clone()),
        json!({"type": "post.created", "data": {}}),
        json!({"type": "post.deleted", "data": {"id": uuid::Uuid::now_v7(), "version": 1, "tags": []}}),
        json!({"type": "user.signed_up", "data": {}}),
        json!({"type": "order.fulfilled"}),
        json!({"type": "order.fulfilled", "data": "x"}),
        json!({"type": "order.fulfilled", "data": {}, "id": "not-a-uuid"}),
        json!({"type": "order.fulfilled", "data": {}, "occurred_at": "yesterday"}),
        json!({"type": "x".repeat(10_000), "data": {}}),
    ]);
    bodies
}

/// Bodies that are not JSON, or JSON no parser should have to take.
fn malformed_bodies() -> Vec<(Option<&'static str>, Vec<u8>)> {
    let deep = "[".repeat(100_000);
    let wide = format!("{{\"title\":\"{}\"}}", "x".repeat(70 * 1024));
    vec![
        (Some("application/json"), b"\xff\xfe\xfd".to_vec()),
        (Some("application/json"), b"{\"title\": \"\xc3\x28\"}".to_vec()),
        (Some("application/json"), deep.into_bytes()),
        (Some("application/json"), wide.into_bytes()),
        (Some("application/json"), br#"{"title":"A","title":"B","description":"D"}"#.to_vec()),
        (Some("application/json"), b"{".to_vec()),
        (Some("application/json"), b"".to_vec()),
        (Some("application/json"), b"null".to_vec()),
        (Some("application/json"), b"1e999999".to_vec()),
        (Some("text/plain"), br#"{"title":"T","description":"D"}"#.to_vec()),
        (Some("application/x-www-form-urlencoded"), b"title=T&description=D".to_vec()),
        (None, br#"{"title":"T","description":"D"}"#.to_vec()),
    ]
}

fn corpus(existing_post: &str) -> Vec<Case> {
    let strings = hostile_strings();
    let mut cases = Vec::new();
    for body in post_bodies(&strings) {
        cases.push(json_case("POST", "/posts", body.clone()));
        cases.push(json_case("PUT", &format!("/posts/{existing_post}"), body));
    }
    for body in order_bodies(&strings) {
        cases.push(json_case("POST", "/events", body));
    }
    for (content_type, body) in malformed_bodies() {
        for path in ["/posts".to_owned(), format!("/posts/{existing_post}"), "/events".into()] {
            let method = if path.starts_with("/posts/") { "PUT" } else { "POST" };
            cases.push(raw_case(method, &path, content_type, &body));
        }
    }
    let ids = ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "%00", "..%2F..%2Fetc", &"9".repeat(5000)];
    for id in ids {
        cases.push(raw_case("GET", &format!("/posts/{id}"), None, b""));
        cases.push(raw_case("DELETE", &format!("/posts/{id}"), None, b""));
        cases.push(raw_case("POST", &format!("/dead-letters/{id}/replay"), None, b""));
        cases.push(raw_case("DELETE", &format!("/dead-letters/{id}"), None, b""));
    }
    let queries = ["page=0", "page=-1", "per_page=0", "per_page=100000", "page=18446744073709551616", "tag=%00", "tag=$where",
        "tag=%3Cimg%3E", &format!("tag={}", "x".repeat(5000)), "page=1&page=2", "limit=-5", "limit=99999999999"];
    for query in queries {
        cases.push(raw_case("GET", &format!("/posts?{query}"), None, b""));
        cases.push(raw_case("GET", &format!("/tags?{query}"), None, b""));
        cases.push(raw_case("GET", &format!("/dead-letters?{query}"), None, b""));
    }
    cases.push(raw_case("POST", "/admin/tag-cloud/rebuild", Some("text/plain"), b"x"));
    cases.push(raw_case("PATCH", "/posts", None, b""));
    cases
}

async fn send(app: &TestApp, case: &Case) -> u16 {
    let url = format!("{}{}", app.address, case.path);
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).expect("a method");
    let mut request = app.client.request(method, url).header("Authorization", format!("Bearer {API_KEY}"));
    if let Some(content_type) = case.content_type {
        request = request.header("Content-Type", content_type);
    }
    if !case.body.is_empty() {
        request = request.body(case.body.clone());
    }
    request.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Raw messages on the transport: what another service (or an attacker with broker
/// access) could publish. Every one must be parked, none may hurt a worker.
fn raw_messages(strings: &[String]) -> Vec<(&'static str, Vec<u8>)> {
    let mut messages: Vec<(&'static str, Vec<u8>)> = vec![
        ("order.fulfilled", b"\xff\xfe".to_vec()),
        ("order.fulfilled", "[".repeat(100_000).into_bytes()),
        ("order.fulfilled", b"{}".to_vec()),
        ("order.fulfilled", b"null".to_vec()),
        ("post.created", envelope("post.created", json!({"id": "x"}))),
        ("post.deleted", envelope("post.deleted", json!({"id": uuid::Uuid::now_v7(), "version": 0, "tags": []}))),
        ("post.deleted", envelope("post.deleted", json!({"id": uuid::Uuid::now_v7(), "version": 1, "tags": ["UPPER"]}))),
    ];
    // The names the rules refuse (a CR/LF, a bidi control, blank, too long), so each is parked.
    let refused = |s: &&String| blog_actors::rules::text::check_line(s, blog_actors::rules::order::CUSTOMER_NAME_MAX_CHARS).is_err();
    for s in strings.iter().filter(refused) {
        let data = json!({"order_id": "R-1", "customer": {"name": s, "email": "a@example.com"}, "lines": [{"sku": "S", "name": "N", "quantity": 1}]});
        messages.push(("order.fulfilled", envelope("order.fulfilled", data)));
    }
    messages
}

on_every_backend!(a_corpus_of_hostile_input_breaks_nothing_and_normal_work_still_flows_exactly);
async fn a_corpus_of_hostile_input_breaks_nothing_and_normal_work_still_flows_exactly(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let existing = app.created_post("Existing", &["keep"]).await;
    let cases = corpus(existing["id"].as_str().unwrap());
    let strings = hostile_strings();
    let raw = raw_messages(&strings);
    assert!(cases.len() + raw.len() >= 150, "{} inputs", cases.len() + raw.len());

    // One mail per order id: several accepted events may share one.
    let mut accepted_orders = std::collections::HashSet::new();
    let mut accepted_posts = 0;
    for case in &cases {
        let status = send(&app, case).await;
        assert!((200..500).contains(&status), "{} {} ({} bytes) answered {status}", case.method, case.path, case.body.len());
        if case.path == "/events" && status == 202 {
            let body: Value = serde_json::from_slice(&case.body).expect("an accepted body is JSON");
            accepted_orders.insert(body["data"]["order_id"].as_str().expect("an order id").to_owned());
        }
        accepted_posts += usize::from(case.method == "POST" && case.path == "/posts" && status == 201);
    }
    for (routing_key, body) in &raw {
        publish_raw(&app, routing_key, body).await;
    }
    // One parked copy per worker the key reaches (the unrouted queue when none).
    let workers = blog::startup::registered_workers();
    let expected_parked: usize = raw.iter().map(|(key, _)| workers.subscribers(key).len().max(1)).sum();

    // Normal work after all that: one post, one order, exactly.
    let post = app.created_post("After the storm", &["calm"]).await;
    assert_eq!(app.post_event(&order_event("AFTER-1", "ada@example.com")).await.status(), 202);
    let mails = accepted_orders.len() + 1;
    eventually("every accepted order mailed", || async { (app.mail_files().len() >= mails).then_some(()) }).await;
    eventually(&format!("only the {expected_parked} raw messages parked"), || async {
        (app.dead_letters().await["total"].as_u64() == Some(expected_parked as u64)).then_some(())
    })
    .await;
    app.wait_until_idle().await;
    assert_eq!(app.mail_files().len(), mails, "each accepted order mailed once");
    assert_eq!(app.get_json(&format!("/posts/{}", post["id"].as_str().unwrap())).await["title"], "After the storm");
    let cloud = app.tag_cloud().await;
    assert!(cloud.contains(&("calm".to_owned(), 1)), "{cloud:?}");
    assert_eq!(app.get_json("/posts").await["total"].as_u64(), Some(2 + accepted_posts as u64));
    for actor in ["tag_aggregator", "emailer", "projector"] {
        assert_eq!(app.restarts(actor).await, 0, "{actor} restarted");
    }
}
