//! The emailer against a real SMTP server (aiosmtpd, started per test).

use crate::smtp_sink::SmtpSink;
use crate::helpers::{eventually, order_event, spawn_app_with, Backend};

#[actix_web::test]
async fn an_order_is_mailed_through_smtp_once_with_the_right_headers_and_body() {
    let sink = SmtpSink::start(&[]);
    let app = spawn_app_with(Backend::Embedded, |s| s.smtp_url = Some(sink.url().into()), |_| {}).await;
    assert_eq!(app.post_event(&order_event("S-1", "ada@example.com")).await.status(), 202);
    eventually("the SMTP server to receive the mail", || async { (!sink.received().is_empty()).then_some(()) }).await;
    app.wait_until_idle().await;
    let received = sink.received();
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert!(mail.contains("X-Envelope-To: ada@example.com"), "{mail}");
    assert!(mail.contains("From: Blog <no-reply@blog.local>"), "{mail}");
    assert!(mail.contains("To: \"Ada Lovelace\" <ada@example.com>"), "{mail}");
    assert!(mail.contains("Subject: Your order S-1 is on its way"), "{mail}");
    assert!(mail.contains("Message-ID: <order-S-1-") && mail.contains("@blog.local>"), "{mail}");
    assert!(mail.contains("2 x Analytical Engines (BK-1)"), "{mail}");
    assert!(app.mail_files().is_empty(), "no .eml files when SMTP is configured");
}

#[actix_web::test]
async fn a_server_that_refuses_then_accepts_gets_the_mail_once_after_a_retry() {
    let sink = SmtpSink::start(&["--refuse-first", "1"]);
    let app = spawn_app_with(Backend::Embedded, |s| s.smtp_url = Some(sink.url().into()), |_| {}).await;
    assert_eq!(app.post_event(&order_event("S-2", "bob@example.com")).await.status(), 202);
    eventually("the mail after the retry", || async { (sink.received().len() == 1).then_some(()) }).await;
    app.wait_until_idle().await;
    assert_eq!(sink.received().len(), 1);
    let emailer = app.get_json("/actors").await.as_array().unwrap().iter().find(|a| a["name"] == "emailer").unwrap().clone();
    assert_eq!(emailer["retried"], 1, "{emailer}");
    assert_eq!(emailer["handled_ok"], 1, "{emailer}");
}

#[actix_web::test]
async fn a_recipient_the_server_rejects_is_parked_at_once() {
    let sink = SmtpSink::start(&["--reject"]);
    let app = spawn_app_with(Backend::Embedded, |s| s.smtp_url = Some(sink.url().into()), |_| {}).await;
    assert_eq!(app.post_event(&order_event("S-3", "gone@example.com")).await.status(), 202);
    let parked = eventually("the rejected mail to be parked", || async {
        let parked = app.dead_letters().await;
        (parked["total"] == 1 && parked["items"].as_array().is_some_and(|i| i.len() == 1)).then_some(parked)
    })
    .await;
    assert_eq!(parked["items"][0]["attempts"], 1, "{parked}");
    assert!(parked["items"][0]["reason"].as_str().unwrap().contains("550"), "{parked}");
}
