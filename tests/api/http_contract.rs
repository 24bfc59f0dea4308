use serde_json::{json, Value};

use crate::helpers::{post_body, spawn_app};

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/problem+json"), "content type {content_type}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "a useful detail: {body}");
    body
}

#[actix_web::test]
async fn an_invalid_post_is_refused_with_every_problem_named() {
    let app = spawn_app().await;
    let too_many: Vec<String> = (0..12).map(|i| format!("t{i}")).collect();
    let response = app.create_post(&json!({"title": "  ", "description": "x", "tags": too_many})).await;
    let body = problem(response, 422).await;
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"title") && fields.contains(&"tags"), "{body}");
    let response = app.create_post(&json!({"title": "No body"})).await;
    problem(response, 422).await;
}

#[actix_web::test]
async fn writes_without_the_key_get_401_and_reads_stay_public() {
    let app = spawn_app().await;
    let response = app.client.post(format!("{}/posts", app.address)).json(&post_body("T", &[])).send().await.unwrap();
    problem(response, 401).await;
    let response = app
        .client
        .post(format!("{}/posts", app.address))
        .header("X-API-Key", "wrong")
        .json(&post_body("T", &[]))
        .send()
        .await
        .unwrap();
    problem(response, 401).await;
    let response = app
        .client
        .post(format!("{}/posts", app.address))
        .header("X-API-Key", crate::helpers::API_KEY)
        .json(&post_body("T", &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    for path in ["/dead-letters"] {
        problem(app.get(path).await, 401).await;
    }
    assert_eq!(app.get("/tags").await.status(), 200);
    assert_eq!(app.get("/posts").await.status(), 200);
}

#[actix_web::test]
async fn a_body_over_the_limit_gets_413() {
    let app = spawn_app().await;
    let huge = json!({"title": "Big", "description": "x".repeat(200_000), "tags": []});
    problem(app.create_post(&huge).await, 413).await;
}

#[actix_web::test]
async fn unknown_routes_and_posts_get_404_as_problems() {
    let app = spawn_app().await;
    problem(app.get("/no/such/route").await, 404).await;
    problem(app.get(&format!("/posts/{}", uuid::Uuid::new_v4())).await, 404).await;
    problem(app.update_post(&uuid::Uuid::new_v4().to_string(), &post_body("T", &[])).await, 404).await;
    problem(app.delete_post(&uuid::Uuid::new_v4().to_string()).await, 404).await;
}

#[actix_web::test]
async fn bad_paging_and_bad_events_are_refused_clearly() {
    let app = spawn_app().await;
    problem(app.get("/posts?per_page=0").await, 400).await;
    let body = problem(app.post_event(&json!({"type": "user.signed_up", "data": {}})).await, 422).await;
    assert!(body["detail"].as_str().unwrap().contains("user.signed_up"), "{body}");
    let body = problem(
        app.post_event(&json!({"type": "order.fulfilled", "data": {"order_id": "A", "customer": {"name": "A", "email": "nope"}, "lines": []}}))
            .await,
        422,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("email"), "{body}");
}

#[actix_web::test]
async fn a_stale_if_match_gets_409_with_the_current_version() {
    let app = spawn_app().await;
    let post = app.created_post("Versioned", &[]).await;
    let id = post["id"].as_str().unwrap();
    let url = format!("{}/posts/{id}", app.address);
    let stale = app
        .client
        .put(&url)
        .header("Authorization", format!("Bearer {}", crate::helpers::API_KEY))
        .header("If-Match", "\"7\"")
        .json(&post_body("Versioned", &["x"]))
        .send()
        .await
        .unwrap();
    let body = problem(stale, 409).await;
    assert!(body["detail"].as_str().unwrap().contains('1'), "{body}");
}

#[actix_web::test]
async fn health_answers_live_and_ready() {
    let app = spawn_app().await;
    assert_eq!(app.get_json("/health/live").await["status"], "ok");
    crate::helpers::eventually("readiness", || async { (app.get("/health/ready").await.status() == 200).then_some(()) }).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("blog_actor_messages_total{actor=\"projector\",outcome=\"ok\"}"), "{metrics}");
    assert!(metrics.contains("blog_actor_restarts_total"), "{metrics}");
}
