//! A delivery held unacked past RabbitMQ's `consumer_timeout`: the broker closes
//! its channel with 406 PRECONDITION_FAILED (delivery acknowledgement timeout).
//! The reader counts the loss, reconnects by itself and goes on consuming; the
//! message comes again, and its effect (one mail) lands once.
//!
//! RabbitMQ 3.10 has only the node-wide `consumer_timeout`, so the test runs on a
//! standalone node of its own (scripts/rabbit-cluster start-timeout: 2 s, checked
//! every 0.2 s), never on 5672 or the cluster. The node is left running for the
//! next run (and for a run in parallel); the test deletes its topology.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use blog::adapters::Adapters;
use blog_actors::ports::{MailError, Mailer, OutgoingMail};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::helpers::{eventually, order_event, spawn_app_with, within, Backend, TestApp};
use crate::support_cluster::run_script;

/// The node `scripts/rabbit-cluster start-timeout` starts.
const NODE_URL: &str = "amqp://guest:guest@127.0.0.1:5705";
/// Its `consumer_timeout`, as the script sets it.
const CONSUMER_TIMEOUT: Duration = Duration::from_secs(2);
/// Well above the consumer timeout: the broker, not the handler deadline, ends the stall.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(60);
const SLOW_ORDER: &str = "SLOW-1";
/// Orders sent while the slow one stalls, and after it.
const DURING: usize = 5;
const AFTER: usize = 5;

/// The node's log, where the broker says why it closed a channel.
fn node_log() -> String {
    let base = std::env::var("BLOG_CLUSTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/rabbit-cluster"));
    std::fs::read_to_string(base.join("timeout/log/blogtest-timeout@localhost.log")).unwrap_or_default()
}

/// The real mailer behind a stall: the first send of one order's mail waits until
/// the test releases it, as a mail server that stops answering would. Counts what
/// the real mailer accepted, per subject (one per order; the .eml files would hide a second send).
struct StallingMailer {
    inner: Arc<dyn Mailer>,
    stall_subject: String,
    stalled: AtomicBool,
    release: CancellationToken,
    sent: Mutex<BTreeMap<String, u32>>,
}

impl StallingMailer {
    fn install(adapters: &mut Adapters, order_id: &str) -> Arc<Self> {
        let mailer = Arc::new(Self {
            inner: adapters.mailer.clone(),
            stall_subject: subject(order_id),
            stalled: AtomicBool::new(false),
            release: CancellationToken::new(),
            sent: Mutex::default(),
        });
        adapters.mailer = mailer.clone();
        mailer
    }

    fn sent(&self) -> BTreeMap<String, u32> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait]
impl Mailer for StallingMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        if mail.subject == self.stall_subject && !self.stalled.swap(true, Ordering::SeqCst) {
            self.release.cancelled().await;
        }
        self.inner.send(mail).await?;
        *self.sent.lock().unwrap().entry(mail.subject.clone()).or_default() += 1;
        Ok(())
    }
}

/// Ends the stall when the test ends, passed or failed: nothing is left waiting.
struct ReleaseOnDrop(CancellationToken);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

async fn emailer(app: &TestApp) -> Value {
    let actors = app.get_authed("/actors").await;
    actors.as_array().unwrap().iter().find(|a| a["name"] == "emailer").cloned().expect("an emailer row")
}

async fn reader_redeliveries(app: &TestApp) -> u64 {
    let actors = app.get_json("/actors").await;
    let reader = actors.as_array().unwrap().iter().find(|a| a["name"] == "queue_reader").cloned().expect("a reader row");
    reader["reader"]["redeliveries"].as_u64().expect("a count")
}

async fn losses_in_metrics(app: &TestApp) -> Option<u64> {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines().find_map(|line| line.strip_prefix("blog_broker_connection_losses_total ")?.trim().parse().ok())
}

/// What the broker logged of closing a channel of connection `name` for the ack
/// timeout. Its lines name the connection by Erlang pid; one line ties the pid to
/// the client's connection name. An error comes as two lines: the channel, the reason.
fn ack_timeouts_logged_for(name: &str) -> Vec<String> {
    let log = node_log();
    let lines: Vec<&str> = log.lines().collect();
    let pids: Vec<String> = lines
        .iter()
        .filter(|line| line.ends_with(&format!("has a client-provided name: {name}")))
        .filter_map(|line| line.split_once("connection <")?.1.split_once('>').map(|(pid, _)| format!("<{pid}>")))
        .collect();
    lines
        .windows(2)
        .filter(|pair| pids.iter().any(|pid| pair[0].contains(&format!("Channel error on connection {pid}"))))
        .filter(|pair| pair[1].contains("delivery acknowledgement on channel"))
        .map(|pair| pair.join("\n"))
        .collect()
}

/// Every queue of `prefix` on the node: (name, ready, unacked).
async fn queues_of(prefix: &str) -> Vec<(String, u64, u64)> {
    let listing = run_script(&["ctl", "timeout", "-q", "list_queues", "name", "messages_ready", "messages_unacknowledged", "--no-table-headers"]).await;
    listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?.to_owned();
            let ready = fields.next()?.parse().ok()?;
            let unacked = fields.next()?.parse().ok()?;
            name.starts_with(&format!("{prefix}.")).then_some((name, ready, unacked))
        })
        .collect()
}

async fn post_order(app: &TestApp, order_id: &str) {
    let response = app.post_event(&order_event(order_id, "ada@example.com")).await;
    assert_eq!(response.status(), 202, "order {order_id}");
}

fn subject(order_id: &str) -> String {
    format!("Your order {order_id} is on its way")
}

#[actix_web::test]
async fn a_delivery_held_past_the_consumer_timeout_is_counted_the_reader_reconnects_and_its_mail_goes_out_once() {
    run_script(&["start-timeout"]).await;
    let mut mailer = None;
    let app = spawn_app_with(
        Backend::Rabbit,
        |s| {
            s.broker_url = NODE_URL.into();
            s.handler_timeout = HANDLER_TIMEOUT;
        },
        |adapters| mailer = Some(StallingMailer::install(adapters, SLOW_ORDER)),
    )
    .await;
    let mailer = mailer.expect("the app was built");
    let _release = ReleaseOnDrop(mailer.release.clone());
    let prefix = app.amqp.as_ref().expect("on RabbitMQ").1.clone();
    let transport = app.handles.transport.clone();
    assert_eq!(transport.connection_losses(), 0);

    // The slow order's mail stalls with its delivery unacked.
    post_order(&app, SLOW_ORDER).await;
    eventually("the slow order's mail to stall", || async { mailer.stalled.load(Ordering::SeqCst).then_some(()) }).await;

    // The broker closes the channel after the consumer timeout (plus a tick): a loss, counted.
    within(CONSUMER_TIMEOUT * 5, "the broker to close the channel and the reader to count it", || async {
        (transport.connection_losses() >= 1).then_some(())
    })
    .await;
    assert_eq!(losses_in_metrics(&app).await, Some(transport.connection_losses()), "/metrics shows the count");
    let connection = format!("blog-{prefix}-consume-{}", std::process::id());
    let closes = eventually("the broker's log to name the ack timeout", || async {
        let closes = ack_timeouts_logged_for(&connection);
        (!closes.is_empty()).then_some(closes)
    })
    .await;
    assert_eq!(closes.len(), 1, "{closes:?}");
    assert!(closes[0].contains("precondition_failed") && closes[0].contains("timed out. Timeout value used: 2000 ms"), "{}", closes[0]);

    // The reader reconnects by itself; the message comes again (redelivered) and meets
    // the claim the stalled handler still holds.
    eventually("the reader consuming again, the slow order redelivered and deferred", || async {
        let deferred = emailer(&app).await["last_error"].as_str().is_some_and(|e| e.contains("being mailed by another delivery"));
        (transport.is_consuming() && reader_redeliveries(&app).await >= 1 && deferred).then_some(())
    })
    .await;

    // Orders sent meanwhile are mailed while the slow one still stalls.
    let during: Vec<String> = (0..DURING).map(|i| format!("DURING-{i}")).collect();
    for order in &during {
        post_order(&app, order).await;
    }
    eventually("the orders sent during the stall mailed", || async {
        let sent = mailer.sent();
        during.iter().all(|o| sent.contains_key(&subject(o))).then_some(())
    })
    .await;

    // The stall ends: its handler mails, its ack is refused (that session is over) and the
    // redelivered copy finds the order mailed. Orders sent after it flow too.
    mailer.release.cancel();
    let after: Vec<String> = (0..AFTER).map(|i| format!("AFTER-{i}")).collect();
    for order in &after {
        post_order(&app, order).await;
    }
    let every: Vec<String> = [SLOW_ORDER.to_owned()].into_iter().chain(during).chain(after).collect();
    eventually("every order mailed", || async {
        let sent = mailer.sent();
        every.iter().all(|o| sent.contains_key(&subject(o))).then_some(())
    })
    .await;
    app.wait_until_idle().await;
    let sent = mailer.sent();
    assert_eq!(sent.len(), every.len(), "{sent:?}");
    assert!(sent.values().all(|n| *n == 1), "every order mailed once: {sent:?}");
    assert_eq!(app.mail_files().len(), every.len());

    // Each close the broker made (one, unless a machine under load held some other
    // delivery past 2 s too) counted once; the broker holds nothing of ours ready or unacked.
    let closes = ack_timeouts_logged_for(&connection).len() as u64;
    assert_eq!(transport.connection_losses(), closes);
    assert_eq!(losses_in_metrics(&app).await, Some(closes));
    assert!(transport.is_consuming());
    let queues = within(Duration::from_secs(10), "the node to hold nothing ready or unacked", || async {
        let queues = queues_of(&prefix).await;
        (!queues.is_empty() && queues.iter().all(|(_, ready, unacked)| *ready == 0 && *unacked == 0)).then_some(queues)
    })
    .await;
    assert!(queues.iter().any(|(name, _, _)| name == &format!("{prefix}.emailer")), "{queues:?}");
}
