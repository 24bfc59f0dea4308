//! `blog publish` puts events on the configured transport, as another service would.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::crash::BackendEnv;
use crate::service::start;

/// Runs `blog publish order-fulfilled` with the backend's settings; returns the event id it prints.
fn publish_order(data_dir: &std::path::Path, backend: &BackendEnv, order_id: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_blog"))
        .args(["publish", "order-fulfilled", "--order-id", order_id, "--customer-name", "Ada Lovelace"])
        .args(["--customer-email", "ada@example.com", "--line", "BK-1:Analytical Engines:2"])
        .env("BLOG_DATA_DIR", data_dir)
        .envs(backend.as_env())
        .output()
        .expect("blog publish runs");
    assert!(output.status.success(), "publish failed: {}", String::from_utf8_lossy(&output.stderr));
    let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "prints the event id, got {id:?}");
    id
}

/// The order's mail: its file is named after the order id plus a hash of it.
fn wait_for_mail(data_dir: &std::path::Path, order_id: &str) -> String {
    let prefix = format!("order-{order_id}-");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = std::fs::read_dir(data_dir.join("mail")).ok().and_then(|entries| {
            entries.filter_map(Result::ok).find(|e| e.file_name().to_string_lossy().starts_with(&prefix) && e.file_name().to_string_lossy().ends_with(".eml"))
        });
        if let Some(mail) = found.and_then(|entry| std::fs::read_to_string(entry.path()).ok()) {
            return mail;
        }
        assert!(Instant::now() < deadline, "no mail for {order_id}");
        std::thread::sleep(Duration::from_millis(25)); // poll interval under a deadline
    }
}

#[test]
fn an_order_published_from_the_command_line_is_mailed_on_the_embedded_queue() {
    order_published_from_the_command_line_is_mailed(BackendEnv::embedded());
}

#[test]
fn an_order_published_from_the_command_line_is_mailed_through_rabbitmq() {
    order_published_from_the_command_line_is_mailed(BackendEnv::rabbit());
}

fn order_published_from_the_command_line_is_mailed(backend: BackendEnv) {
    let dir = tempfile::tempdir().unwrap();
    let _service = start(dir.path(), &backend.as_env());
    publish_order(dir.path(), &backend, "CLI-1");
    let mail = wait_for_mail(dir.path(), "CLI-1");
    assert!(mail.contains("Your order CLI-1 is on its way") && mail.contains("2 x Analytical Engines (BK-1)"), "{mail}");
}

#[test]
fn publishing_to_an_unreachable_broker_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_blog"))
        .args(["publish", "event", "--type", "order.fulfilled", "--data", "{}"])
        .env("BLOG_DATA_DIR", dir.path())
        .env("BLOG_BROKER_URL", "amqp://guest:guest@127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BLOG_BROKER_URL"), "{stderr}");
    assert!(!stderr.contains("guest:guest"), "no credentials in the error: {stderr}");
}

#[test]
fn the_command_line_refuses_post_events_and_orders_that_break_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let post = r#"{"id":"01a22228-89fa-753b-8935-69f78e05b686","version":1,"tags":[]}"#;
    let line = "BK-1:Book:1";
    let refused: [&[&str]; 6] = [
        &["publish", "event", "--type", "post.deleted", "--data", post],
        &["publish", "raw", "--routing-key", "post.created", "--body", "{}"],
        &["publish", "order-fulfilled", "--order-id", "E-1", "--customer-name", "Eve\r\nBcc: x", "--customer-email", "e@example.com", "--line", line],
        &["publish", "order-fulfilled", "--order-id", "E-2", "--customer-name", "Eve\u{202e}", "--customer-email", "e@example.com", "--line", line],
        &["publish", "order-fulfilled", "--order-id", "Q-1", "--customer-name", "Q", "--customer-email", "q@example.com", "--line", "A:B:4294967296"],
        &["publish", "order-fulfilled", "--order-id", "Q-2", "--customer-name", "Q", "--customer-email", "q@example.com", "--line", "A:B:10001"],
    ];
    for args in refused {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let output = Command::new(env!("CARGO_BIN_EXE_blog")).args(&args).env("BLOG_DATA_DIR", dir.path()).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line, got {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
