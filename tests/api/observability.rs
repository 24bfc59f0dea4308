//! What operators see: `/metrics` (checked by promtool), `/actors`, the
//! dashboard in a real headless browser, and the correlation id on parked messages.
//!
//! The tools come from `scripts/install-test-tools`; a missing tool fails the
//! test, so a green run always means the check really ran.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::faults::{FlakyMailer, PanickingReadModel};
use crate::helpers::{eventually, order_event, spawn_app, spawn_app_with, Backend, TestApp, API_KEY};
use crate::on_every_backend;

const TOOL_TIMEOUT: Duration = Duration::from_secs(90);

/// A tool from `$ENV_VAR`, else the first of `paths` that exists; panics naming the install script.
fn tool(env_var: &str, paths: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return path.into();
    }
    paths.iter().map(PathBuf::from).find(|p| p.exists()).unwrap_or_else(|| {
        panic!("{env_var}: none of {paths:?} exists; run scripts/install-test-tools (or set {env_var})")
    })
}

/// Runs a tool without blocking the app, which serves from this same thread.
async fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut command = tokio::process::Command::new(program);
    command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let mut input = child.stdin.take().expect("piped stdin");
    let text = stdin.unwrap_or_default().to_owned();
    let feed = async move {
        tokio::io::AsyncWriteExt::write_all(&mut input, text.as_bytes()).await.expect("stdin written");
    };
    let (_, output) = tokio::time::timeout(TOOL_TIMEOUT, async { tokio::join!(feed, child.wait_with_output()) })
        .await
        .unwrap_or_else(|_| panic!("{} did not finish within {TOOL_TIMEOUT:?}", program.display()));
    output.expect("the tool ran")
}

/// The value of the one sample named `series` exactly (name and labels), e.g. `x_total{a="b"}`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn metrics_text(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    response.text().await.unwrap()
}

async fn promtool_accepts(text: &str) {
    let promtool = tool("PROMTOOL", &["/usr/bin/promtool"]);
    let out = run(&promtool, &["check", "metrics"], Some(text)).await;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // promtool exits 0 with lint findings on stderr; a clean scrape says nothing at all.
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics: {said}\n{text}");
}

fn actor<'a>(actors: &'a Value, name: &str) -> &'a Value {
    actors.as_array().unwrap().iter().find(|a| a["name"] == name).unwrap_or_else(|| panic!("no actor {name} in {actors}"))
}

on_every_backend!(metrics_pass_promtool_and_move_as_events_succeed_fail_park_and_restart_actors);
async fn metrics_pass_promtool_and_move_as_events_succeed_fail_park_and_restart_actors(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}, |adapters| {
        adapters.mailer = Arc::new(FlakyMailer::new(adapters.mailer.clone(), u32::MAX));
        adapters.read_model =
            Arc::new(PanickingReadModel { inner: adapters.read_model.clone(), panics_left: AtomicU32::new(1) });
    })
    .await;
    let before = metrics_text(&app).await;
    promtool_accepts(&before).await;
    for series in [
        r#"blog_actor_messages_total{actor="projector",outcome="ok"}"#,
        r#"blog_actor_restarts_total{actor="projector"}"#,
        r#"blog_actor_messages_total{actor="emailer",outcome="parked"}"#,
        r#"blog_queue_reader_deliveries_total{worker="emailer"}"#,
    ] {
        assert_eq!(sample(&before, series), Some(0.0), "{series} should start at 0:\n{before}");
    }

    // The projector panics on the post once; the mailer never succeeds, so the order is parked.
    app.created_post("Observed", &["metrics"]).await;
    let order = app
        .client
        .post(format!("{}/events", app.address))
        .header("Authorization", format!("Bearer {API_KEY}"))
        .header("X-Request-Id", "order-flow-7")
        .json(&order_event("M-1", "ada@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(order.status(), 202);
    let parked = eventually("the order to be parked", || async {
        let parked = app.dead_letters().await;
        (parked["total"] == 1 && parked["items"].as_array().is_some_and(|i| i.len() == 1)).then_some(parked)
    })
    .await;
    assert_eq!(parked["items"][0]["correlation_id"], "order-flow-7", "{parked}");
    app.wait_for_cloud(&[("metrics", 1)]).await;
    eventually("the post in the read model", || async { (app.get_json("/posts").await["total"] == 1).then_some(()) }).await;

    let after = metrics_text(&app).await;
    promtool_accepts(&after).await;
    let value = |series: &str| sample(&after, series).unwrap_or_else(|| panic!("no {series} in\n{after}"));
    assert_eq!(value(r#"blog_actor_messages_total{actor="projector",outcome="ok"}"#), 1.0);
    assert_eq!(value(r#"blog_actor_messages_total{actor="projector",outcome="retried"}"#), 1.0, "the panic was a failed attempt");
    assert_eq!(value(r#"blog_actor_restarts_total{actor="projector"}"#), 1.0);
    assert_eq!(value(r#"blog_actor_state{actor="projector",state="running"}"#), 1.0);
    assert_eq!(value(r#"blog_actor_messages_total{actor="tag_aggregator",outcome="ok"}"#), 1.0);
    // Four attempts (the test settings), three retried, then parked.
    assert_eq!(value(r#"blog_actor_messages_total{actor="emailer",outcome="retried"}"#), 3.0);
    assert_eq!(value(r#"blog_actor_messages_total{actor="emailer",outcome="parked"}"#), 1.0);
    assert_eq!(value(r#"blog_queue_reader_deliveries_total{worker="emailer"}"#), 4.0);
    assert_eq!(value(r#"blog_queue_reader_oldest_unacked_seconds{worker="emailer"}"#), 0.0, "nothing is held any more");
    assert_eq!(value("blog_parked_messages"), 1.0);
    assert_eq!(value("blog_outbox_backlog"), 0.0);
    assert_eq!(value("blog_broker_connected"), 1.0);
    assert!(value(r#"blog_actor_handling_seconds_count{actor="emailer"}"#) >= 4.0);
    assert!(value(r#"blog_actor_messages_total{actor="relay",outcome="ok"}"#) >= 2.0);
    // HTTP requests by route pattern, never by raw path.
    assert_eq!(value(r#"blog_http_requests_total{method="POST",route="/posts",status="201"}"#), 1.0);
    assert_eq!(value(r#"blog_http_requests_total{method="POST",route="/events",status="202"}"#), 1.0);
    assert!(value(r#"blog_http_request_duration_seconds_count{method="GET",route="/dead-letters"}"#) >= 1.0);

    let actors = app.get_authed("/actors").await;
    let emailer = actor(&actors, "emailer");
    assert_eq!((emailer["state"].as_str(), emailer["retried"].as_u64(), emailer["parked"].as_u64()), (Some("running"), Some(3), Some(1)));
    assert!(emailer["last_error"].as_str().unwrap().contains("injected"), "{emailer}");
    let projector = actor(&actors, "projector");
    assert_eq!(projector["restarts"], 1);
    assert!(projector["last_error"].as_str().unwrap().contains("injected projector panic"), "{projector}");
    let reader = actor(&actors, "queue_reader");
    // post.created to each post worker, to the projector once more (the panic), the order four times.
    let post_workers = blog::startup::registered_workers().subscribers("post.created").len();
    assert_eq!(reader["reader"]["deliveries"], post_workers + 1 + 4, "{reader}");
    assert_eq!(reader["transport"]["parked_messages"], 1);
    assert_eq!(reader["transport"]["connected"], true);
    assert_eq!(actor(&actors, "relay")["backlog"], 0);
    assert_eq!(projector["history"]["ok"].as_array().unwrap().len(), blog_actors::metrics::HISTORY_SLOTS);
}

#[actix_web::test]
async fn unmatched_paths_share_one_series_so_scanners_cannot_multiply_them() {
    let app = spawn_app().await;
    for i in 0..5 {
        assert_eq!(app.get(&format!("/wp-admin/{i}.php")).await.status(), 404);
    }
    assert_eq!(app.get("/posts/not-a-uuid").await.status(), 404);
    let text = metrics_text(&app).await;
    assert_eq!(sample(&text, r#"blog_http_requests_total{method="GET",route="unmatched",status="404"}"#), Some(5.0), "{text}");
    assert_eq!(sample(&text, r#"blog_http_requests_total{method="GET",route="/posts/{id}",status="404"}"#), Some(1.0), "{text}");
    assert!(!text.contains("wp-admin"), "{text}");
}

fn chromium_args<'a>(profile: &'a str, extra: &[&'a str], url: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        profile,
    ];
    args.extend_from_slice(extra);
    args.push(url);
    args
}

#[actix_web::test]
async fn the_dashboard_shows_the_tags_of_new_posts_and_every_actor_in_a_real_browser() {
    let chromium = tool("CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
    let app = spawn_app().await;
    let tags = ["observability", "rust", "dashboards", "actix", "prometheus", "tracing", "queues", "cqrs"];
    for (i, _) in tags.iter().enumerate() {
        // Post i carries the first i+1 tags, so the counts differ and the cloud has sizes to show.
        app.created_post(&format!("Dashboard post {i}"), &tags[..=i]).await;
    }
    let mut expected: Vec<(&str, i64)> = tags.iter().enumerate().map(|(i, t)| (*t, (tags.len() - i) as i64)).collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    app.wait_for_cloud(&expected).await;
    let page = app.get("/").await;
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"), "{csp}");

    let url = format!("{}/", app.address);
    let profile_dir = tempfile::tempdir().unwrap();
    let profile = format!("--user-data-dir={}", profile_dir.path().display());
    let dump = run(&chromium, &chromium_args(&profile, &["--virtual-time-budget=5000", "--dump-dom"], &url), None).await;
    let dom = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.status.success(), "chromium failed: {}", String::from_utf8_lossy(&dump.stderr));
    assert!(dom.contains(r#"<main id="app" data-state="live">"#), "the script never rendered the actors:\n{dom}");
    for tag in tags {
        assert!(dom.contains(&format!(r#"data-tag="{tag}""#)), "tag {tag} is not in the cloud:\n{dom}");
    }
    assert!(dom.contains(r#"data-tag="observability" data-posts="8""#), "{dom}");
    let workers = blog::startup::registered_workers();
    for name in ["relay", "queue_reader"].into_iter().chain(workers.iter().map(|w| w.name())) {
        assert!(dom.contains(&format!(r#"<tr data-actor="{name}" data-state="running">"#)), "no running row for {name}:\n{dom}");
    }
    assert!(dom.contains("broker connected"), "{dom}");

    // For people: target/dashboard.png shows what the page looked like.
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let shot_arg = format!("--screenshot={}", shot.display());
    let profile_dir = tempfile::tempdir().unwrap();
    let profile = format!("--user-data-dir={}", profile_dir.path().display());
    let extra = ["--virtual-time-budget=5000", "--window-size=1280,900", shot_arg.as_str()];
    let out = run(&chromium, &chromium_args(&profile, &extra, &url), None).await;
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "{} is not a real screenshot", shot.display());
}

#[actix_web::test]
async fn the_openapi_document_is_served_and_names_every_route_it_is_generated_from() {
    let app = spawn_app().await;
    let doc = app.get_json("/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 14, "{paths:?}");
    let served: Vec<&str> = paths.keys().map(String::as_str).collect();
    for path in served {
        let probe = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        // Every described path is routed: nothing answers the `unmatched` fallback's 404 with "no route".
        let response = app.get(&probe).await;
        let body = response.text().await.unwrap();
        assert!(!body.contains("no route for"), "{path} is described but not routed");
    }
}
