use crate::faults::FlakyMailer;
use crate::helpers::{eventually, order_event, spawn_app_with, Backend};
use crate::on_every_backend;

on_every_backend!(a_handler_that_fails_twice_is_retried_after_growing_delays_and_succeeds);
async fn a_handler_that_fails_twice_is_retried_after_growing_delays_and_succeeds(backend: Backend) {
    let mut flaky = None;
    let app = spawn_app_with(backend, |_| {}, |adapters| flaky = Some(FlakyMailer::install(adapters, 2))).await;
    let flaky = flaky.expect("the app was built");
    assert_eq!(app.post_event(&order_event("R-1", "ada@example.com")).await.status(), 202);
    eventually("the mail after two failures", || async { (app.mail_files().len() == 1).then_some(()) }).await;
    let calls = flaky.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "two failures and one success");
    let first_gap = calls[1] - calls[0];
    let second_gap = calls[2] - calls[1];
    // base delay 50 ms, doubling: the waits are at least 50 ms then 100 ms. Only the
    // lower bounds are the policy's; how late a retry comes on a loaded machine is not.
    assert!(first_gap.as_millis() >= 50, "first retry came after {first_gap:?}");
    assert!(second_gap.as_millis() >= 100, "second retry came after {second_gap:?}");
    let parked = app.dead_letters().await;
    assert_eq!(parked["total"], 0);
}

on_every_backend!(a_handler_that_always_fails_is_parked_after_the_configured_attempts_and_can_be_replayed);
async fn a_handler_that_always_fails_is_parked_after_the_configured_attempts_and_can_be_replayed(backend: Backend) {
    let mut flaky = None;
    let app = spawn_app_with(backend, |s| s.max_attempts = 3, |adapters| flaky = Some(FlakyMailer::install(adapters, 3))).await;
    let flaky = flaky.expect("the app was built");
    assert_eq!(app.post_event(&order_event("P-1", "ada@example.com")).await.status(), 202);
    let parked = eventually("the message to be parked", || async {
        let parked = app.dead_letters().await;
        (parked["total"] == 1 && parked["items"].as_array().is_some_and(|i| i.len() == 1)).then_some(parked)
    })
    .await;
    let item = &parked["items"][0];
    assert_eq!(item["worker"], "emailer");
    assert_eq!(item["attempts"], 3);
    assert!(item["reason"].as_str().unwrap().contains("gave up after 3 attempts"), "{item}");
    assert!(item["reason"].as_str().unwrap().contains("421"), "{item}");
    assert_eq!(item["body"]["data"]["order_id"], "P-1");
    assert_eq!(flaky.calls.lock().unwrap().len(), 3);
    assert!(app.mail_files().is_empty());

    // The mail server is back (its three failures are used up): replay through the API.
    let id = item["id"].as_str().unwrap();
    let response = app.post_authed(&format!("/dead-letters/{id}/replay"), &serde_json::json!({})).await;
    assert_eq!(response.status(), 202);
    eventually("the replayed mail", || async { (app.mail_files().len() == 1).then_some(()) }).await;
    assert_eq!(app.dead_letters().await["total"], 0);
}

on_every_backend!(a_parked_message_can_be_deleted);
async fn a_parked_message_can_be_deleted(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.max_attempts = 1, |a| {
        FlakyMailer::install(a, 1);
    })
    .await;
    assert_eq!(app.post_event(&order_event("D-1", "ada@example.com")).await.status(), 202);
    let parked = eventually("the message to be parked", || async {
        let parked = app.dead_letters().await;
        (parked["total"] == 1 && parked["items"].as_array().is_some_and(|i| i.len() == 1)).then_some(parked)
    })
    .await;
    let id = parked["items"][0]["id"].as_str().unwrap();
    assert_eq!(app.delete_authed(&format!("/dead-letters/{id}")).await.status(), 204);
    assert_eq!(app.delete_authed(&format!("/dead-letters/{id}")).await.status(), 404);
    assert_eq!(app.dead_letters().await["total"], 0);
}
