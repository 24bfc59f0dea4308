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

fn wait_for_mail(data_dir: &std::path::Path, order_id: &str) -> String {
    let path = data_dir.join("mail").join(format!("order-{order_id}_blog.local.eml"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mail) = std::fs::read_to_string(&path) {
            return mail;
        }
        assert!(Instant::now() < deadline, "no mail for {order_id}");
        std::thread::sleep(Duration::from_millis(25)); // poll interval under a deadline
    }
}

#[test]
fn an_order_published_from_the_command_line_is_mailed_on_the_embedded_queue() {
    let dir = tempfile::tempdir().unwrap();
    let backend = BackendEnv::embedded();
    let _service = start(dir.path(), &backend.as_env());
    publish_order(dir.path(), &backend, "CLI-1");
    assert!(wait_for_mail(dir.path(), "CLI-1").contains("2 x Analytical Engines (BK-1)"));
}

#[test]
fn an_order_published_from_the_command_line_is_mailed_through_rabbitmq() {
    let dir = tempfile::tempdir().unwrap();
    let backend = BackendEnv::rabbit();
    let _service = start(dir.path(), &backend.as_env());
    publish_order(dir.path(), &backend, "CLI-2");
    assert!(wait_for_mail(dir.path(), "CLI-2").contains("Your order CLI-2 is on its way"));
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
