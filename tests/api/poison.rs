use crate::helpers::{eventually, order_event, spawn_app_on, Backend};
use crate::hostile::publish_raw;
use crate::on_every_backend;

on_every_backend!(malformed_and_unknown_events_are_parked_with_the_reason_and_the_rest_flow_on);
async fn malformed_and_unknown_events_are_parked_with_the_reason_and_the_rest_flow_on(backend: Backend) {
    let app = spawn_app_on(backend).await;
    publish_raw(&app, "order.fulfilled", b"{ this is not json").await;
    let missing_field = serde_json::json!({
        "id": uuid::Uuid::new_v4(), "type": "order.fulfilled", "occurred_at": "2026-11-28T10:00:00Z",
        "data": { "order_id": "X-1", "lines": [] }
    });
    publish_raw(&app, "order.fulfilled", missing_field.to_string().as_bytes()).await;
    let unknown = serde_json::json!({
        "id": uuid::Uuid::new_v4(), "type": "user.signed_up", "occurred_at": "2026-11-28T10:00:00Z", "data": {}
    });
    publish_raw(&app, "user.signed_up", unknown.to_string().as_bytes()).await;
    assert_eq!(app.post_event(&order_event("OK-1", "ada@example.com")).await.status(), 202);

    eventually("the good order's mail", || async { (app.mail_files().len() == 1).then_some(()) }).await;
    let parked = eventually("three parked messages", || async {
        let parked = app.dead_letters().await;
        (parked["total"] == 3 && parked["items"].as_array().is_some_and(|i| i.len() == 3)).then_some(parked)
    })
    .await;
    let reasons: Vec<String> = parked["items"].as_array().unwrap().iter().map(|i| i["reason"].as_str().unwrap().to_owned()).collect();
    assert!(reasons.iter().any(|r| r.contains("not a valid event envelope")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("missing field `customer`")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("user.signed_up")), "{reasons:?}");
    assert!(parked["items"].as_array().unwrap().iter().all(|i| i["attempts"].as_u64().unwrap() <= 1), "{parked}");
}

on_every_backend!(an_event_whose_type_its_worker_does_not_take_is_parked_by_the_reader);
async fn an_event_whose_type_its_worker_does_not_take_is_parked_by_the_reader(backend: Backend) {
    let app = spawn_app_on(backend).await;
    // Routed by its key to the emailer, but the envelope says it is a post event.
    let mislabelled = serde_json::json!({
        "id": uuid::Uuid::new_v4(), "type": "post.created", "occurred_at": "2026-11-28T10:00:00Z", "data": {}
    });
    publish_raw(&app, "order.fulfilled", mislabelled.to_string().as_bytes()).await;
    let parked = eventually("the mislabelled event parked", || async {
        let parked = app.dead_letters().await;
        (parked["items"].as_array().is_some_and(|i| i.len() == 1)).then_some(parked)
    })
    .await;
    let item = &parked["items"][0];
    assert_eq!(item["worker"], "emailer", "{parked}");
    assert!(item["reason"].as_str().unwrap().contains(r#"emailer does not take "post.created" events"#), "{parked}");
    assert_eq!(app.restarts("emailer").await, 0);
}
