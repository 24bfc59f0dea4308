//! The feed writer's Atom feeds, read by a real feed parser (Python's
//! `feedparser`, installed by scripts/test): valid, newest first, and right
//! after creates, updates and deletes; conditional requests get 304.

use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::{post_body, spawn_app_on, Backend, TestApp};
use crate::on_every_backend;

/// Parses `xml` with feedparser: `{bozo, title, entries: [{title, id, tags, summary}]}`.
fn parse_feed(xml: &str) -> Value {
    let python = std::env::var("BLOG_TEST_PYTHON").unwrap_or_else(|_| "target/venv/bin/python".into());
    let script = r#"
import json, sys, feedparser
d = feedparser.parse(sys.stdin.buffer.read())
print(json.dumps({
    "bozo": bool(d.bozo), "version": d.version, "title": d.feed.get("title"),
    "entries": [{"title": e.title, "id": e.id, "summary": e.get("summary"),
                 "tags": [t.term for t in e.get("tags", [])], "link": e.link} for e in d.entries],
}))
"#;
    let mut child = Command::new(&python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python} (BLOG_TEST_PYTHON, with feedparser): {e}"));
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), xml.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "feedparser failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn feed(app: &TestApp, path: &str) -> Value {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(response.headers()["content-type"], "application/atom+xml; charset=utf-8");
    let parsed = parse_feed(&response.text().await.unwrap());
    assert_eq!((&parsed["bozo"], &parsed["version"]), (&json!(false), &json!("atom10")), "{parsed}");
    parsed
}

fn titles(feed: &Value) -> Vec<&str> {
    feed["entries"].as_array().unwrap().iter().map(|e| e["title"].as_str().unwrap()).collect()
}

on_every_backend!(the_feeds_list_the_newest_posts_right_after_creates_updates_and_deletes);
async fn the_feeds_list_the_newest_posts_right_after_creates_updates_and_deletes(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let first = app.created_post("First <one> & only", &["rust", "web"]).await;
    let second = app.created_post("Second", &["web"]).await;
    let third = app.created_post("Third", &["rust"]).await;
    let id = |p: &Value| p["id"].as_str().unwrap().to_owned();
    let updated = app.update_post(&id(&second), &post_body("Second, edited", &["rust"])).await;
    assert_eq!(updated.status(), 200);
    assert_eq!(app.delete_post(&id(&third)).await.status(), 204);
    app.wait_until_idle().await;

    let all = feed(&app, "/feed.xml").await;
    assert_eq!(titles(&all), ["Second, edited", "First <one> & only"], "newest first, the deleted one gone");
    let entry = &all["entries"][1];
    assert_eq!(entry["id"], format!("urn:uuid:{}", id(&first)));
    assert_eq!(entry["tags"], json!(["rust", "web"]));
    assert!(entry["link"].as_str().unwrap().ends_with(&format!("/posts/{}", id(&first))), "{entry}");

    let rust = feed(&app, "/tags/RUST/feed.xml").await;
    assert_eq!(titles(&rust), ["Second, edited", "First <one> & only"], "the update moved it into rust");
    let web = feed(&app, "/tags/web/feed.xml").await;
    assert_eq!(titles(&web), ["First <one> & only"], "and out of web");
    assert_eq!(titles(&feed(&app, "/tags/nothing-yet/feed.xml").await), Vec::<&str>::new());
    assert_eq!(app.get("/tags/%24where/feed.xml").await.status(), 404, "not a tag the API accepts");

    // The admin rebuild finds the same feeds.
    let rebuilt = app.post_authed("/admin/rebuild", &json!({})).await;
    assert_eq!(rebuilt.status(), 200);
    assert_eq!(rebuilt.json::<Value>().await.unwrap()["feed_writer"]["posts"], 2);
    assert_eq!(titles(&feed(&app, "/feed.xml").await), titles(&all));
}

#[actix_web::test]
async fn a_feed_answers_304_to_its_etag_or_date_and_changes_with_a_new_post() {
    let app = spawn_app_on(Backend::Embedded).await;
    app.created_post("One", &["a"]).await;
    app.wait_until_idle().await;
    let first = app.get("/feed.xml").await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let modified = first.headers()["last-modified"].to_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let url = format!("{}/feed.xml", app.address);
    let again = client.get(&url).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    let since = client.get(&url).header("If-Modified-Since", &modified).send().await.unwrap();
    assert_eq!(since.status(), 304);

    app.created_post("Two", &["a"]).await;
    app.wait_until_idle().await;
    let changed = client.get(&url).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(changed.status(), 200, "a new post changes the document and its tag");
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
}
