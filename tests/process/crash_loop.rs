//! A message whose handling kills the process (the test-only fault hook aborts
//! it): restarted each time it dies, the service meets the message again until
//! the quorum queue's delivery limit, then the broker parks it with its reason,
//! and the events behind it are handled exactly once.

use std::time::{Duration, Instant};

use blog::startup::registered_workers;
use blog::transport::OutgoingMessage;
use blog::transport::rabbitmq::{QueueOptions, QueueType, RabbitTransport};
use blog::transport::Publisher;
use blog::transport::Transport;
use blog_actors::event::Envelope;
use blog_actors::fault_hooks::ABORT_PROCESS;
use blog_actors::retry::RetryPolicy;
use serde_json::json;

use crate::crash::{dead_letters, wait_until_idle, BackendEnv, AMQP_URL};
use crate::instances::mails_per_subject;
use crate::service::{try_start, Service};
use crate::smtp_sink::SmtpSink;

const DELIVERY_LIMIT: u32 = 3;
const BEHIND: usize = 20;

fn order_entry(order_id: &str, correlation_id: Option<&str>) -> OutgoingMessage {
    let data = json!({ "order_id": order_id, "customer": { "name": "Ada", "email": "ada@example.com" },
        "lines": [ { "sku": "BK-1", "name": "Book", "quantity": 1 } ] });
    let envelope = Envelope::new("order.fulfilled", data, correlation_id.map(str::to_owned));
    let correlation_id = envelope.correlation_id.clone();
    OutgoingMessage { message_id: envelope.id, routing_key: "order.fulfilled".into(), body: envelope.to_bytes(), correlation_id, trace: None }
}

/// How one run of the service ended.
enum Run {
    Died,
    MailedAll(Service),
}

/// Waits until the service dies or every order behind the crashing one was mailed.
fn watch(mut service: Service, sink: &SmtpSink) -> Run {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = service.child.try_wait().expect("wait") {
            let log = service.log.lock().unwrap().join("\n");
            assert!(!status.success() && log.contains("fault hook:"), "died for another reason ({status}):\n{log}");
            return Run::Died;
        }
        if sink.received().len() >= BEHIND {
            return Run::MailedAll(service);
        }
        assert!(Instant::now() < deadline, "neither died nor mailed: {:?}", service.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20)); // the poll interval
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_aborts_the_process_is_parked_after_the_delivery_limit_and_the_orders_behind_it_are_mailed_once() {
    let sink = SmtpSink::start(&[]);
    let limit = DELIVERY_LIMIT.to_string();
    // One delivery in flight: the orders behind the crashing one are not held, and
    // so not counted as redelivered, each time the process dies.
    let backend = BackendEnv::rabbit()
        .with("BLOG_SMTP_URL", &sink.url())
        .with("BLOG_AMQP_QUEUE_TYPE", "quorum")
        .with("BLOG_AMQP_DELIVERY_LIMIT", &limit)
        .with("BLOG_PREFETCH", "1");
    let prefix = backend.vars.iter().find(|(k, _)| k == "BLOG_AMQP_PREFIX").map(|(_, v)| v.clone()).unwrap();
    // The service's own topology (same retry levels and limit), with the events waiting before it starts.
    let delays = RetryPolicy { base_delay: Duration::from_millis(50), ..Default::default() }.delay_levels();
    let queues = QueueOptions { kind: QueueType::Quorum, delivery_limit: DELIVERY_LIMIT };
    let transport = RabbitTransport::connect_with(AMQP_URL, &prefix, delays, registered_workers(), queues).await.unwrap();
    let mut entries = vec![order_entry("CRASH-1", Some(ABORT_PROCESS))];
    entries.extend((0..BEHIND).map(|i| order_entry(&format!("AFTER-{i}"), None)));
    transport.publish(&entries).await.unwrap();
    transport.close().await;

    let dir = tempfile::tempdir().unwrap();
    let mut deaths = 0;
    let service = loop {
        assert!(deaths <= DELIVERY_LIMIT + 1, "still dying after {deaths} restarts");
        let run = match try_start(dir.path(), &backend.as_env()) {
            Ok(service) => watch(service, &sink),
            Err((status, log)) => {
                assert!(log.iter().any(|l| l.contains("fault hook:")), "died for another reason ({status}): {log:?}");
                Run::Died
            }
        };
        match run {
            Run::Died => deaths += 1,
            Run::MailedAll(service) => break service,
        }
    };
    assert_eq!(deaths, DELIVERY_LIMIT + 1, "the broker hands it out once, then again up to the limit");

    let client = reqwest::Client::new();
    wait_until_idle(&client, &service).await;
    let parked = dead_letters(&client, &service).await;
    assert_eq!(parked["total"], 1, "{parked}");
    let entry = &parked["items"][0];
    assert_eq!(entry["worker"], "emailer", "{parked}");
    assert!(entry["reason"].as_str().unwrap().starts_with("redelivered too often"), "{parked}");
    assert_eq!(entry["body"]["data"]["order_id"], "CRASH-1", "{parked}");

    let mails_per_order = mails_per_subject(&sink);
    assert_eq!(mails_per_order.len(), BEHIND, "one mail per order behind it: {mails_per_order:?}");
    assert!(mails_per_order.values().all(|n| *n == 1), "none twice: {mails_per_order:?}");
    assert!(!mails_per_order.keys().any(|s| s.contains("CRASH-1")), "the crashing order was never mailed");
}
