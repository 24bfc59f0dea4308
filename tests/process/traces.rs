//! One trace from the HTTP call through the queue into each worker, exported
//! over OTLP to a real receiver, on the embedded queue and on RabbitMQ.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::crash::BackendEnv;
use crate::otlp_receiver::{OtlpReceiver, ReceivedSpan};
use crate::service::{start, Service, API_KEY};

const SERVER: i32 = 2;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

/// A caller's W3C context: the traceparent, its trace id and its span id.
struct Caller {
    traceparent: String,
    trace_id: String,
    span_id: String,
}

impl Caller {
    fn new() -> Self {
        let trace_id = uuid::Uuid::new_v4().simple().to_string();
        let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
        Self { traceparent: format!("00-{trace_id}-{span_id}-01"), trace_id, span_id }
    }
}

/// The names of the registered workers that take `event_type`: one consumer and one handler span each.
fn subscribers(event_type: &str) -> Vec<&'static str> {
    blog::startup::registered_workers().subscribers(event_type).into_iter().map(|w| w.name()).collect()
}

fn find<'a>(spans: &'a [ReceivedSpan], kind: i32, attribute: (&str, &str)) -> Option<&'a ReceivedSpan> {
    spans.iter().find(|s| s.kind == kind && s.attributes.get(attribute.0).map(String::as_str) == Some(attribute.1))
}

/// Whether `ancestor` is `span` or above it in its trace.
fn descends_from(spans: &[ReceivedSpan], span: &ReceivedSpan, ancestor: &str) -> bool {
    let mut current = Some(span);
    while let Some(s) = current {
        if s.span_id == ancestor {
            return true;
        }
        current = spans.iter().find(|p| p.span_id == s.parent_span_id);
    }
    false
}

/// The consumer span of `worker` and its handler's span, both under `parent`.
fn assert_worker_span(trace: &[ReceivedSpan], worker: &str, parent: &str) {
    let delivery = find(trace, CONSUMER, ("worker", worker)).unwrap_or_else(|| panic!("no {worker} span: {trace:#?}"));
    assert_eq!(delivery.parent_span_id, parent, "{worker}'s consumer span: {trace:#?}");
    let handle = trace.iter().find(|s| s.name == "handle" && s.attributes.get("actor").map(String::as_str) == Some(worker));
    let handle = handle.unwrap_or_else(|| panic!("no {worker} handler span: {trace:#?}"));
    assert_eq!(handle.parent_span_id, delivery.span_id, "{worker}'s handler span");
}

/// The request's server span is a child of the caller's span, the relay's publish
/// span descends from it, and each worker's consumer span is a child of the publish span.
fn assert_request_trace(trace: &[ReceivedSpan], caller: &Caller, route: &str, event_type: &str, workers: &[&str]) {
    let server = trace.iter().find(|s| s.kind == SERVER && s.name == route);
    let server = server.unwrap_or_else(|| panic!("no {route} server span: {trace:#?}"));
    assert_eq!(server.parent_span_id, caller.span_id, "the caller's span is the server span's parent");
    assert_eq!(server.attributes.get("http.response.status_code").map(String::as_str), Some(if route == "POST /posts" { "201" } else { "202" }));
    let publish = find(trace, PRODUCER, ("routing_key", event_type)).unwrap_or_else(|| panic!("no publish span: {trace:#?}"));
    assert!(descends_from(trace, publish, &server.span_id), "the publish span descends from the request's: {trace:#?}");
    for worker in workers {
        assert_worker_span(trace, worker, &publish.span_id);
    }
}

/// Whether the trace holds a server span, a publish span, and a consumer and a handler span per worker.
fn complete(trace: &[ReceivedSpan], workers: usize) -> bool {
    let count = |f: &dyn Fn(&ReceivedSpan) -> bool| trace.iter().filter(|s| f(s)).count();
    count(&|s| s.kind == SERVER) == 1
        && count(&|s| s.kind == PRODUCER) == 1
        && count(&|s| s.kind == CONSUMER) == workers
        && count(&|s| s.name == "handle") == workers
}

async fn post(service: &Service, path: &str, body: serde_json::Value, traceparent: &str) -> u16 {
    let request = reqwest::Client::new().post(format!("{}{path}", service.address)).header("traceparent", traceparent);
    request.bearer_auth(API_KEY).json(&body).send().await.expect("request").status().as_u16()
}

fn order(order_id: &str) -> serde_json::Value {
    json!({ "type": "order.fulfilled", "data": {
        "order_id": order_id, "customer": { "name": "Ada", "email": "ada@example.com" },
        "lines": [ { "sku": "BK-1", "name": "Book", "quantity": 1 } ] } })
}

fn publish_with_traceparent(data_dir: &std::path::Path, backend: &BackendEnv, caller: &Caller, order_id: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_blog"))
        .args(["publish", "--traceparent", &caller.traceparent, "order-fulfilled", "--order-id", order_id])
        .args(["--customer-name", "Ada", "--customer-email", "ada@example.com", "--line", "BK-1:Book:1"])
        .env("BLOG_DATA_DIR", data_dir)
        .envs(backend.as_env())
        .output()
        .expect("blog publish runs");
    assert!(output.status.success(), "publish failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// Waits until the service logged `n` handled events.
fn wait_for_handled(service: &Service, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while service.log.lock().unwrap().iter().filter(|l| l.contains("event handled")).count() < n {
        assert!(Instant::now() < deadline, "not {n} events handled: {:?}", service.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(25)); // poll interval under a deadline
    }
}

/// A post, an order through `POST /events` and one through `blog publish`, each
/// with its caller's traceparent. `flush_on_shutdown`: the exporter's delay is
/// longer than the test, so the spans arrive only because SIGTERM flushes them.
async fn follow(backend: BackendEnv, flush_on_shutdown: bool) {
    let receiver = OtlpReceiver::start();
    let hostile = Caller::new();
    let dir = tempfile::tempdir().unwrap();
    let delay = if flush_on_shutdown { "600000" } else { "100" };
    let mut env = backend.as_env();
    env.extend([("BLOG_OTLP_ENDPOINT", receiver.endpoint.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", delay)]);
    let mut service = start(dir.path(), &env);
    let (post_caller, order_caller, cli_caller) = (Caller::new(), Caller::new(), Caller::new());

    // A malformed traceparent (an all-zero parent id) must start a new trace, never be passed on.
    let malformed = hostile.traceparent.replace(&hostile.span_id, "0000000000000000");
    assert_eq!(post(&service, "/events", order("TR-0"), &malformed).await, 202);
    let created = post(&service, "/posts", json!({"title": "Traced", "description": "Across the queue", "tags": ["otel"]}), &post_caller.traceparent);
    assert_eq!(created.await, 201);
    assert_eq!(post(&service, "/events", order("TR-1"), &order_caller.traceparent).await, 202);
    publish_with_traceparent(dir.path(), &backend, &cli_caller, "TR-2");

    let (post_workers, order_workers) = (subscribers("post.created"), subscribers("order.fulfilled"));
    if flush_on_shutdown {
        // Three orders (the malformed one's too) and a post, each once per worker that takes it.
        wait_for_handled(&service, 3 * order_workers.len() + post_workers.len());
        service.signal(libc::SIGTERM);
        assert!(service.wait_exit(Duration::from_secs(30)).success());
    }
    let trace = receiver.wait_for_trace(&post_caller.trace_id, "the post's spans", |t| complete(t, post_workers.len()));
    assert_request_trace(&trace, &post_caller, "POST /posts", "post.created", &post_workers);
    let trace = receiver.wait_for_trace(&order_caller.trace_id, "the order's spans", |t| complete(t, order_workers.len()));
    assert_request_trace(&trace, &order_caller, "POST /events", "order.fulfilled", &order_workers);
    // The consumer span ends after its handler's (once the delivery is settled), so it may come in a later batch.
    let trace = receiver.wait_for_trace(&cli_caller.trace_id, "the order workers' spans", |t| {
        let count = |f: &dyn Fn(&ReceivedSpan) -> bool| t.iter().filter(|s| f(s)).count();
        count(&|s| s.name == "handle") == order_workers.len() && count(&|s| s.kind == CONSUMER) == order_workers.len()
    });
    for worker in &order_workers {
        assert_worker_span(&trace, worker, &cli_caller.span_id);
    }
    // Sent first, so exported with or before the others: its spans are in, under a new trace.
    assert!(receiver.spans().iter().all(|s| s.trace_id != hostile.trace_id), "a malformed traceparent was used");
    let roots = receiver.spans().into_iter().filter(|s| s.name == "POST /events" && s.parent_span_id.is_empty()).count();
    assert_eq!(roots, 1, "the request with the malformed traceparent is the root of a new trace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_each_request_through_the_embedded_queue_and_shutdown_flushes_it() {
    follow(BackendEnv::embedded(), true).await;
}

/// The production set-up: RabbitMQ and MongoDB (the stand-in of the test suite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_each_request_through_rabbitmq_with_the_mongodb_store() {
    let name = |kind: &str| format!("t_{kind}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mongo = std::env::var("BLOG_TEST_MONGO_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27018/?directConnection=true&serverSelectionTimeoutMS=5000".into());
    let backend = BackendEnv::rabbit()
        .with("BLOG_STORE_URL", &mongo)
        .with("BLOG_DB", &name("blog"))
        .with("BLOG_QUERIES_DB", &name("queries"));
    follow(backend, false).await;
}

#[test]
fn a_malformed_traceparent_on_the_command_line_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_blog"))
        .args(["publish", "--traceparent", "00-nope-nope-01", "event", "--type", "order.fulfilled", "--data", "{}"])
        .env("BLOG_DATA_DIR", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--traceparent") && stderr.lines().count() == 1, "{stderr}");
}
