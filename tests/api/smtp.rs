//! The emailer against a real SMTP server (aiosmtpd, started per test).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::helpers::{eventually, order_event, spawn_app_with, Backend};

/// A running SMTP sink; killed on drop.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    fn start(extra: &[&str]) -> Self {
        let python = std::env::var("BLOG_TEST_PYTHON").unwrap_or_else(|_| "target/venv/bin/python".into());
        let dir = tempfile::tempdir().unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/smtp_sink.py");
        let mut child = Command::new(&python)
            .arg(script)
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python} (scripts/test installs aiosmtpd there): {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("listening ").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("sink said {line:?}"));
        Self { child, port, dir }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn received(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path()).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    assert!(mail.contains("Message-ID: <order-S-1@blog.local>"), "{mail}");
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
