//! Starts the real application in this process on port 0 with its own data
//! dir, and talks to it over HTTP like any client.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use blog::configuration::Settings;
use blog::transport::rabbitmq::QueueType;
use blog::adapters::Adapters;
use blog::startup::{registered_workers, AppHandles, Application};
use serde_json::{json, Value};

pub const API_KEY: &str = "test-key";
/// How long a test waits for the workers to catch up before it fails.
pub const EVENTUALLY: Duration = Duration::from_secs(20);

pub struct TestApp {
    pub address: String,
    /// The RabbitMQ names to delete when the test ends, if it used RabbitMQ.
    pub amqp: Option<(String, String, Vec<Duration>)>,
    pub client: reqwest::Client,
    pub handles: AppHandles,
    pub data_dir: PathBuf,
    /// Kept so the folder lives as long as the app.
    _dir: tempfile::TempDir,
}

/// Settings every test starts from: fast retries, no timer, a key.
pub fn test_settings(data_dir: PathBuf) -> Settings {
    Settings {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir,
        api_key: Some(API_KEY.to_string().into()),
        tag_rebuild_interval: Duration::ZERO,
        retry_base_delay: Duration::from_millis(50),
        retry_max_delay: Duration::from_millis(400),
        max_attempts: 4,
        shutdown_timeout: Duration::from_secs(5),
        amqp_queue_type: queue_type_under_test(),
        ..Settings::default()
    }
}

/// Quorum queues, or classic ones when the suite runs with `BLOG_AMQP_QUEUE_TYPE=classic`
/// (scripts/test runs the broker tests both ways).
pub fn queue_type_under_test() -> QueueType {
    match std::env::var("BLOG_AMQP_QUEUE_TYPE").as_deref() {
        Ok("classic") => QueueType::Classic,
        _ => QueueType::Quorum,
    }
}

/// The store and transport a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite store and the embedded queue: `cargo run` with nothing installed.
    Embedded,
    /// SQLite store, RabbitMQ transport.
    Rabbit,
    /// MongoDB store (the stand-in in tests), RabbitMQ transport: production.
    MongoRabbit,
}

/// Writes the behavioural test `$test(backend)` once per backend, as `$test::embedded` etc.
#[macro_export]
macro_rules! on_every_backend {
    ($test:ident) => {
        mod $test {
            $crate::on_every_backend!(@transports $test);

            #[actix_web::test]
            async fn mongodb_and_rabbitmq() {
                super::$test($crate::helpers::Backend::MongoRabbit).await
            }
        }
    };
    // Behaviour of the transports alone (the parking lot, say): the store adds nothing.
    ($test:ident, transports) => {
        mod $test {
            $crate::on_every_backend!(@transports $test);
        }
    };
    (@transports $test:ident) => {
        #[actix_web::test]
        async fn embedded() {
            super::$test($crate::helpers::Backend::Embedded).await
        }

        #[actix_web::test]
        async fn rabbitmq() {
            super::$test($crate::helpers::Backend::Rabbit).await
        }
    };
}

pub fn amqp_url() -> String {
    std::env::var("BLOG_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672".into())
}

pub fn mongo_url() -> String {
    std::env::var("BLOG_TEST_MONGO_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27018/?directConnection=true&serverSelectionTimeoutMS=5000".into())
}

/// A name no other test uses: for queue prefixes and database names.
pub fn unique_name(kind: &str) -> String {
    format!("t_{kind}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Points the settings at the backend, with names of their own.
pub fn use_backend(settings: &mut Settings, backend: Backend) {
    if matches!(backend, Backend::Rabbit | Backend::MongoRabbit) {
        settings.broker_url = amqp_url();
        settings.amqp_prefix = unique_name("q");
    }
    if backend == Backend::MongoRabbit {
        settings.store_url = Some(mongo_url());
        settings.db = unique_name("blog");
        settings.queries_db = unique_name("queries");
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_on(Backend::Embedded).await
}

pub async fn spawn_app_on(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}, |_| {}).await
}

/// Starts the app on `backend` after `configure` adjusted its settings and `wrap` its adapters.
pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
    wrap: impl FnOnce(&mut Adapters),
) -> TestApp {
    init_test_logging();
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut settings = test_settings(dir.path().to_owned());
    use_backend(&mut settings, backend);
    configure(&mut settings);
    let amqp = settings
        .broker_url
        .starts_with("amqp")
        .then(|| (settings.broker_url.clone(), settings.amqp_prefix.clone(), settings.retry_policy().delay_levels()));
    let mut adapters = Adapters::from_settings(&settings, registered_workers()).await.expect("adapters open");
    wrap(&mut adapters);
    let app = Application::build_with(settings, adapters).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handles = app.handles();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp { address, amqp, client: reqwest::Client::new(), handles, data_dir: dir.path().to_owned(), _dir: dir }
}

impl Drop for TestApp {
    /// Stops the app and deletes its queues, so tests leave nothing on the broker.
    fn drop(&mut self) {
        self.handles.shutdown.cancel();
        let Some((url, prefix, delays)) = self.amqp.take() else { return };
        let transport = self.handles.transport.clone();
        // Drop cannot await: a thread with a runtime of its own closes the transport.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(transport.close())
        })
        .join();
        if let Err(e) = blog::transport::rabbitmq::RabbitTransport::delete_topology_blocking(&url, &prefix, &delays, blog::startup::registered_workers()) {
            eprintln!("could not delete the test's RabbitMQ queues: {e}");
        }
    }
}

fn init_test_logging() {
    if std::env::var("TEST_LOG").is_ok() {
        blog::telemetry::init(blog::telemetry::subscriber(
            blog::configuration::LogFormat::Human,
            "info",
            std::io::stdout,
            None,
        ));
    }
}

/// Polls `check` until it returns Some, or fails the test after `EVENTUALLY`.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    within(EVENTUALLY, what, check).await
}

/// Polls `check` until it returns Some, or fails the test after `limit`.
pub async fn within<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn post_body(title: &str, tags: &[&str]) -> Value {
    json!({ "title": title, "description": format!("The body of {title}, with some words."), "tags": tags })
}

pub fn order_event(order_id: &str, email: &str) -> Value {
    json!({
        "type": "order.fulfilled",
        "data": {
            "order_id": order_id,
            "customer": { "name": "Ada Lovelace", "email": email },
            "lines": [ { "sku": "BK-1", "name": "Analytical Engines", "quantity": 2 },
                       { "sku": "BK-7", "name": "Notes on the Engine", "quantity": 1 } ]
        }
    })
}

impl TestApp {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    fn authed(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        builder.header("Authorization", format!("Bearer {API_KEY}"))
    }

    pub async fn create_post(&self, body: &Value) -> reqwest::Response {
        self.authed(self.client.post(self.url("/posts"))).json(body).send().await.expect("request")
    }

    /// Creates a post that must be accepted; returns it.
    pub async fn created_post(&self, title: &str, tags: &[&str]) -> Value {
        let response = self.create_post(&post_body(title, tags)).await;
        assert_eq!(response.status(), 201, "create {title}");
        response.json().await.expect("json")
    }

    pub async fn update_post(&self, id: &str, body: &Value) -> reqwest::Response {
        self.authed(self.client.put(self.url(&format!("/posts/{id}")))).json(body).send().await.expect("request")
    }

    pub async fn delete_post(&self, id: &str) -> reqwest::Response {
        self.authed(self.client.delete(self.url(&format!("/posts/{id}")))).send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.json().await.expect("json")
    }

    pub async fn post_authed(&self, path: &str, body: &Value) -> reqwest::Response {
        self.authed(self.client.post(self.url(path))).json(body).send().await.expect("request")
    }

    pub async fn get_authed(&self, path: &str) -> Value {
        let response = self.authed(self.client.get(self.url(path))).send().await.expect("request");
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.json().await.expect("json")
    }

    pub async fn delete_authed(&self, path: &str) -> reqwest::Response {
        self.authed(self.client.delete(self.url(path))).send().await.expect("request")
    }

    pub async fn post_event(&self, event: &Value) -> reqwest::Response {
        self.post_authed("/events", event).await
    }

    /// The tag cloud as (tag, count) pairs, in the order served.
    pub async fn tag_cloud(&self) -> Vec<(String, i64)> {
        let cloud = self.get_json("/tags").await;
        cloud
            .as_array()
            .expect("an array")
            .iter()
            .map(|t| (t["tag"].as_str().unwrap().to_owned(), t["posts_count"].as_i64().unwrap()))
            .collect()
    }

    /// Waits until the tag cloud is exactly `expected` (order included).
    pub async fn wait_for_cloud(&self, expected: &[(&str, i64)]) {
        let expected: Vec<(String, i64)> = expected.iter().map(|(t, c)| (t.to_string(), *c)).collect();
        let mut last = Vec::new();
        let found = tokio::time::timeout(EVENTUALLY, async {
            loop {
                last = self.tag_cloud().await;
                if last == expected {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
        .await;
        assert!(found.is_ok(), "tag cloud never became {expected:?}; last seen {last:?}");
    }

    /// Waits until every queue is empty and nothing is in flight.
    /// A broker's queue counts miss a message on the wire or between a retry
    /// queue and its work queue for a moment, so idle must be seen on
    /// `IDLE_CHECKS` polls in a row.
    pub async fn wait_until_idle(&self) {
        const IDLE_CHECKS: u32 = 6;
        let deadline = Instant::now() + EVENTUALLY;
        let mut idle_in_a_row = 0;
        while idle_in_a_row < IDLE_CHECKS {
            let depth = self.handles.transport.pending_deliveries().await.ok();
            let backlog = self.handles.store.backlog().await.ok();
            idle_in_a_row = if depth == Some(0) && backlog == Some(0) { idle_in_a_row + 1 } else { 0 };
            assert!(Instant::now() < deadline, "timed out waiting for the queue to drain");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn mail_files(&self) -> Vec<PathBuf> {
        let dir = self.data_dir.join("mail");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect())
            .unwrap_or_default();
        files.sort();
        files
    }

    pub async fn dead_letters(&self) -> Value {
        self.get_authed("/dead-letters").await
    }

    pub async fn restarts(&self, actor: &str) -> u64 {
        self.handles.actor_metrics.restarts(actor)
    }
}
