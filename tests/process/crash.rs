use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use crate::service::{start, Service, API_KEY};

const TAGS: [&str; 6] = ["rust", "actix", "tokio", "serde", "sqlite", "queues"];

pub fn post(i: usize) -> Value {
    let tags: Vec<&str> = TAGS.iter().enumerate().filter(|(t, _)| i.is_multiple_of(t + 1)).map(|(_, tag)| *tag).collect();
    json!({ "title": format!("Post {i}"), "description": "Words for the read model.", "tags": tags })
}

pub fn order(i: usize) -> Value {
    json!({ "type": "order.fulfilled", "data": {
        "order_id": format!("K-{i}"), "customer": { "name": "Ada", "email": "ada@example.com" },
        "lines": [ { "sku": "BK-1", "name": "Book", "quantity": 1 } ] } })
}

/// Reads one gauge or counter value from the metrics text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{'])).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Waits until the outbox and every queue are empty.
pub async fn wait_until_idle(client: &reqwest::Client, service: &Service) {
    // Seen idle on several scrapes in a row: a broker's queue counts miss a
    // message on the wire for a moment.
    const IDLE_CHECKS: u32 = 6;
    let mut idle_in_a_row = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut idle = false;
        if let Ok(response) = client.get(format!("{}/metrics", service.address)).send().await {
            let text = response.text().await.unwrap_or_default();
            idle = metric(&text, "blog_outbox_backlog") == Some(0.0) && metric(&text, "blog_queue_pending_deliveries") == Some(0.0);
        }
        idle_in_a_row = if idle { idle_in_a_row + 1 } else { 0 };
        if idle_in_a_row >= IDLE_CHECKS {
            return;
        }
        assert!(Instant::now() < deadline, "the service never went idle");
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval under a deadline
    }
}

/// All posts in the read model, paging through.
pub async fn all_posts(client: &reqwest::Client, service: &Service) -> Vec<Value> {
    let mut posts = Vec::new();
    for page in 1.. {
        let body: Value = client
            .get(format!("{}/posts?per_page=100&page={page}", service.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = body["items"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        posts.extend(items);
    }
    posts
}

/// The cloud the read model implies, most used first.
pub fn cloud_of(posts: &[Value]) -> Vec<(String, i64)> {
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for p in posts {
        for t in p["tags"].as_array().unwrap() {
            *counts.entry(t.as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    let mut cloud: Vec<(String, i64)> = counts.into_iter().collect();
    cloud.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    cloud
}

pub async fn served_cloud(client: &reqwest::Client, service: &Service) -> Vec<(String, i64)> {
    let cloud: Value = client.get(format!("{}/tags", service.address)).send().await.unwrap().json().await.unwrap();
    cloud.as_array().unwrap().iter().map(|t| (t["tag"].as_str().unwrap().to_owned(), t["posts_count"].as_i64().unwrap())).collect()
}

/// Sends the writes with some concurrency; records which were accepted.
/// Write `i` is a post when even, an order when odd, numbered from `first`.
pub async fn send_writes(address: String, total: usize, first: usize, accepted_posts: Arc<Mutex<HashSet<String>>>, accepted_orders: Arc<Mutex<HashSet<String>>>, accepted: Arc<AtomicUsize>) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    futures::stream::iter(0..total)
        .map(|i| {
            let (client, address) = (client.clone(), address.clone());
            let (posts, orders, accepted) = (accepted_posts.clone(), accepted_orders.clone(), accepted.clone());
            async move {
                let n = first + i / 2;
                let (path, body) = if i % 2 == 0 { ("posts", post(n)) } else { ("events", order(n)) };
                let Ok(response) = client.post(format!("{address}/{path}")).bearer_auth(API_KEY).json(&body).send().await else {
                    return;
                };
                if response.status().is_success() {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    if path == "posts" {
                        let created: Value = response.json().await.unwrap_or_default();
                        if let Some(id) = created["id"].as_str() {
                            posts.lock().unwrap().insert(id.to_owned());
                        }
                    } else {
                        orders.lock().unwrap().insert(format!("K-{n}"));
                    }
                }
            }
        })
        .buffer_unordered(16)
        .collect::<()>()
        .await;
}

/// Everything accepted is there exactly once: posts projected, counts exact, one mail per order.
async fn assert_exact(service: &Service, data_dir: &std::path::Path, posts: &HashSet<String>, orders: &HashSet<String>) {
    let client = reqwest::Client::new();
    wait_until_idle(&client, service).await;
    let read_model = all_posts(&client, service).await;
    let ids: HashSet<String> = read_model.iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), read_model.len(), "no post twice in the read model");
    assert!(posts.is_subset(&ids), "every accepted post is in the read model ({} of {})", posts.intersection(&ids).count(), posts.len());
    assert_eq!(served_cloud(&client, service).await, cloud_of(&read_model), "the tag cloud counts every post exactly once");
    let mails: HashSet<String> = std::fs::read_dir(data_dir.join("mail"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".eml")).collect())
        .unwrap_or_default();
    for order in orders {
        // The file is named after the order id plus a hash of it.
        let prefix = format!("order-{order}-");
        assert_eq!(mails.iter().filter(|m| m.starts_with(&prefix)).count(), 1, "one mail for accepted order {order}");
    }
    let dead = dead_letters(&client, service).await;
    assert_eq!(dead["total"], 0, "nothing parked: {dead}");
}

/// `GET /dead-letters` with the API key.
pub async fn dead_letters(client: &reqwest::Client, service: &Service) -> Value {
    client.get(format!("{}/dead-letters", service.address)).bearer_auth(API_KEY).send().await.unwrap().json().await.unwrap()
}

/// Env vars that put the service on a backend; the broker's queues are deleted on drop.
pub struct BackendEnv {
    pub vars: Vec<(String, String)>,
    /// The queue prefix and the broker URL(s), for deleting the queues at the end.
    rabbit_prefix: Option<(String, String)>,
}

impl BackendEnv {
    pub fn embedded() -> Self {
        Self { vars: Vec::new(), rabbit_prefix: None }
    }

    pub fn rabbit() -> Self {
        Self::rabbit_at(AMQP_URL)
    }

    /// RabbitMQ at `urls` (one URL or a cluster's node list).
    pub fn rabbit_at(urls: &str) -> Self {
        let prefix = format!("t_p_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        // The retry delay names the retry queues: set here too (not only by `start`) so a
        // `blog publish` run declares the same ones that Drop deletes.
        let vars = vec![
            ("BLOG_BROKER_URL".into(), urls.into()),
            ("BLOG_AMQP_PREFIX".into(), prefix.clone()),
            ("BLOG_RETRY_BASE_DELAY".into(), "50ms".into()),
        ];
        Self { vars, rabbit_prefix: Some((prefix, urls.into())) }
    }

    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.vars.push((key.into(), value.into()));
        self
    }

    pub fn as_env(&self) -> Vec<(&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
}

impl Drop for BackendEnv {
    fn drop(&mut self) {
        if let Some((prefix, urls)) = self.rabbit_prefix.take() {
            let delays = blog_actors::retry::RetryPolicy { base_delay: Duration::from_millis(50), ..Default::default() }.delay_levels();
            if let Err(e) = blog::transport::rabbitmq::RabbitTransport::delete_topology_blocking(&urls, &prefix, &delays, blog::startup::registered_workers()) {
                eprintln!("could not delete a test's RabbitMQ queues: {e}");
            }
        }
    }
}

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672";

/// Writes the process test `$test(backend)` once per transport, as `$test::embedded` and
/// `$test::rabbitmq`; each starts its own service, so they run in parallel.
#[macro_export]
macro_rules! on_both_transports {
    ($test:ident) => {
        mod $test {
            use $crate::crash::BackendEnv;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$test(BackendEnv::embedded()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rabbitmq() {
                super::$test(BackendEnv::rabbit()).await
            }
        }
    };
}

on_both_transports!(after_sigkill_with_two_thousand_events_in_flight_a_restart_makes_every_effect_exactly_once);
async fn after_sigkill_with_two_thousand_events_in_flight_a_restart_makes_every_effect_exactly_once(backend: BackendEnv) {
    let dir = tempfile::tempdir().unwrap();
    let service = start(dir.path(), &backend.as_env());
    let (posts, orders, accepted) = (Arc::default(), Arc::default(), Arc::new(AtomicUsize::new(0)));
    let writes = tokio::spawn(send_writes(service.address.clone(), 2_000, 0, Arc::clone(&posts), Arc::clone(&orders), accepted.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted.load(Ordering::SeqCst) < 1_500 {
        assert!(Instant::now() < deadline, "writes too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    service.signal(libc::SIGKILL);
    let mut service = service;
    let status = service.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), None, "killed by a signal");
    writes.await.unwrap();
    drop(service);

    let restarted = start(dir.path(), &backend.as_env());
    let (posts, orders) = (posts.lock().unwrap().clone(), orders.lock().unwrap().clone());
    assert!(posts.len() + orders.len() >= 1_500);
    assert_exact(&restarted, dir.path(), &posts, &orders).await;
    let actors: Value = reqwest::get(format!("{}/actors", restarted.address)).await.unwrap().json().await.unwrap();
    let finished_after_restart: u64 = actors.as_array().unwrap().iter().map(|a| a["handled_ok"].as_u64().unwrap()).sum();
    assert!(finished_after_restart > 0, "the kill left work in flight for the restart to finish: {actors}");
}

on_both_transports!(sigterm_while_busy_exits_zero_in_time_and_a_restart_loses_nothing);
async fn sigterm_while_busy_exits_zero_in_time_and_a_restart_loses_nothing(backend: BackendEnv) {
    let backend = backend.with("BLOG_SHUTDOWN_TIMEOUT", "5s");
    let dir = tempfile::tempdir().unwrap();
    let mut service = start(dir.path(), &backend.as_env());
    let (posts, orders, accepted) = (Arc::default(), Arc::default(), Arc::new(AtomicUsize::new(0)));
    send_writes(service.address.clone(), 600, 0, Arc::clone(&posts), Arc::clone(&orders), accepted.clone()).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 600);
    service.signal(libc::SIGTERM);
    let status = service.wait_exit(Duration::from_secs(8));
    assert_eq!(status.code(), Some(0), "graceful exit: {:?}", service.log.lock().unwrap().iter().rev().take(10).collect::<Vec<_>>());
    drop(service);

    let restarted = start(dir.path(), &backend.as_env());
    let (posts, orders) = (posts.lock().unwrap().clone(), orders.lock().unwrap().clone());
    assert_exact(&restarted, dir.path(), &posts, &orders).await;
}
