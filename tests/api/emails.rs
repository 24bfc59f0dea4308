use serde_json::json;

use std::sync::atomic::Ordering;

use crate::faults::FlakyMailer;
use crate::helpers::{eventually, order_event, spawn_app_on, spawn_app_with, Backend};
use crate::on_every_backend;

on_every_backend!(one_fulfilled_order_gives_one_mail_to_the_customer_with_its_lines);
async fn one_fulfilled_order_gives_one_mail_to_the_customer_with_its_lines(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let response = app.post_event(&order_event("A-1001", "ada@example.com")).await;
    assert_eq!(response.status(), 202);
    let files = eventually("the mail file", || async {
        let files = app.mail_files();
        (!files.is_empty()).then_some(files)
    })
    .await;
    assert_eq!(files.len(), 1);
    let mail = std::fs::read_to_string(&files[0]).unwrap();
    assert!(mail.contains("To: \"Ada Lovelace\" <ada@example.com>"), "{mail}");
    assert!(mail.contains("Subject: Your order A-1001 is on its way"), "{mail}");
    assert!(mail.contains("2 x Analytical Engines (BK-1)"), "{mail}");
    assert!(mail.contains("1 x Notes on the Engine (BK-7)"), "{mail}");
}

on_every_backend!(the_same_order_event_delivered_twice_still_mails_once);
async fn the_same_order_event_delivered_twice_still_mails_once(backend: Backend) {
    let mut mailer = None;
    let app = spawn_app_with(backend, |_| {}, |adapters| mailer = Some(FlakyMailer::install(adapters, 0))).await;
    let mailer = mailer.expect("the app was built");
    let mut event = order_event("A-2002", "bob@example.com");
    event["id"] = json!(uuid::Uuid::new_v4());
    assert_eq!(app.post_event(&event).await.status(), 202);
    assert_eq!(app.post_event(&event).await.status(), 202);
    // Both deliveries handled (one mailed, one found the order already mailed)…
    eventually("both deliveries handled", || async {
        let snapshot = app.get_json("/actors").await;
        let emailer = snapshot.as_array()?.iter().find(|a| a["name"] == "emailer")?.clone();
        (emailer["handled_ok"] == 2).then_some(())
    })
    .await;
    app.wait_until_idle().await;
    // …and still one mail.
    assert_eq!(app.mail_files().len(), 1);
    assert_eq!(mailer.calls.lock().unwrap().len(), 1, "the mail server saw one send");
    let _ = Ordering::SeqCst;
}
