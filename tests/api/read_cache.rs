//! Read-your-writes on every cached read path: `GET /posts/{id}`, `GET /posts?tag=`
//! and `GET /posts`. Each test reads first (so the embedded store keeps the answer),
//! writes, waits until the projector has *finished* applying the write (its
//! handled count, not a read that could itself be served from the cache), then
//! reads once and must see the write.

use std::time::Duration;

use blog::store::sqlite::SqliteStore;
use blog::store::ReadModelBulk;
use blog_actors::event::PostSnapshot;
use serde_json::{json, Value};

use crate::helpers::{post_body, spawn_app_on, within, Backend, TestApp, EVENTUALLY};
use crate::on_every_backend;

/// Runs `write`, then waits until the projector has settled `events` more deliveries.
async fn projected<F: std::future::Future<Output = ()>>(app: &TestApp, events: u64, write: F) {
    let before = app.handles.actor_metrics.settled_for_good("projector");
    write.await;
    within(EVENTUALLY, "the projector to apply the write", || async {
        (app.handles.actor_metrics.settled_for_good("projector") >= before + events).then_some(())
    })
    .await;
}

/// The ids of a page, in order.
fn ids(page: &Value) -> Vec<&str> {
    page["items"].as_array().expect("items").iter().map(|v| v["id"].as_str().expect("an id")).collect()
}

on_every_backend!(a_post_read_after_its_change_is_the_changed_post);
async fn a_post_read_after_its_change_is_the_changed_post(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let mut id = String::new();
    projected(&app, 1, async { id = app.created_post("Cached once", &["cache"]).await["id"].as_str().unwrap().to_owned() }).await;
    let path = format!("/posts/{id}");
    for _ in 0..2 {
        let first = app.get(&path).await;
        assert_eq!(first.headers()["etag"], "\"1\"");
        assert_eq!(first.headers()["content-type"], "application/json");
        assert_eq!(first.json::<Value>().await.expect("json")["title"], "Cached once");
    }

    projected(&app, 1, async {
        assert_eq!(app.update_post(&id, &post_body("Cached twice", &["cache", "fresh"])).await.status(), 200);
    })
    .await;
    let second = app.get(&path).await;
    assert_eq!(second.headers()["etag"], "\"2\"", "the ETag follows the version");
    let view: Value = second.json().await.expect("json");
    assert_eq!((view["title"].clone(), view["version"].clone(), view["tags"].clone()), (json!("Cached twice"), json!(2), json!(["cache", "fresh"])));

    projected(&app, 1, async { assert_eq!(app.delete_post(&id).await.status(), 204) }).await;
    assert_eq!(app.get(&path).await.status(), 404, "a deleted post is gone at once");
}

on_every_backend!(a_tag_page_read_after_a_change_shows_it);
async fn a_tag_page_read_after_a_change_shows_it(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let mut old = String::new();
    projected(&app, 1, async { old = app.created_post("Old", &["paged"]).await["id"].as_str().unwrap().to_owned() }).await;
    let page = "/posts?tag=paged";
    for _ in 0..2 {
        assert_eq!(ids(&app.get_json(page).await), [old.as_str()]);
    }

    let mut new = String::new();
    projected(&app, 1, async { new = app.created_post("New", &["Paged"]).await["id"].as_str().unwrap().to_owned() }).await;
    let listed = app.get_json(page).await;
    assert_eq!((ids(&listed), listed["total"].clone()), (vec![new.as_str(), old.as_str()], json!(2)), "a created post");

    projected(&app, 1, async {
        assert_eq!(app.update_post(&old, &post_body("Old, retagged", &["elsewhere"])).await.status(), 200);
    })
    .await;
    let listed = app.get_json(page).await;
    assert_eq!((ids(&listed), listed["total"].clone()), (vec![new.as_str()], json!(1)), "a post that left the tag");

    projected(&app, 1, async {
        assert_eq!(app.update_post(&new, &post_body("New, renamed", &["paged"])).await.status(), 200);
    })
    .await;
    assert_eq!(app.get_json(page).await["items"][0]["title"], "New, renamed", "a post changed in place");

    projected(&app, 1, async { assert_eq!(app.delete_post(&new).await.status(), 204) }).await;
    let listed = app.get_json(page).await;
    assert_eq!((listed["items"].clone(), listed["total"].clone()), (json!([]), json!(0)), "a deleted post");
}

on_every_backend!(the_list_of_all_posts_read_after_a_change_shows_it);
async fn the_list_of_all_posts_read_after_a_change_shows_it(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let mut first = String::new();
    projected(&app, 1, async { first = app.created_post("First", &[]).await["id"].as_str().unwrap().to_owned() }).await;
    for path in ["/posts", "/posts?per_page=1"] {
        assert_eq!(ids(&app.get_json(path).await), [first.as_str()], "{path}");
    }

    let mut second = String::new();
    projected(&app, 1, async { second = app.created_post("Second", &["any"]).await["id"].as_str().unwrap().to_owned() }).await;
    assert_eq!(ids(&app.get_json("/posts").await), [second.as_str(), first.as_str()]);
    assert_eq!(ids(&app.get_json("/posts?per_page=1").await), [second.as_str()], "each page size is its own answer");

    projected(&app, 1, async { assert_eq!(app.delete_post(&second).await.status(), 204) }).await;
    let listed = app.get_json("/posts").await;
    assert_eq!((ids(&listed), listed["total"].clone()), (vec![first.as_str()], json!(1)));
}

/// `blog load` writes the read model from another process: its connection, not
/// this process's writer. Another store on the same files stands for it here; the
/// service must show the change within a second without any write of its own.
#[actix_web::test]
async fn a_change_another_process_writes_shows_within_a_second() {
    let app = spawn_app_on(Backend::Embedded).await;
    assert_eq!(app.get_json("/posts?tag=loaded").await["total"], 0);
    let id = uuid::Uuid::now_v7();
    assert_eq!(app.get(&format!("/posts/{id}")).await.status(), 404);

    let other = SqliteStore::open(&app.data_dir).await.expect("a second store on the same files");
    let now = chrono::Utc::now();
    let snapshot = PostSnapshot {
        id,
        title: "Loaded".into(),
        description: "Brought in by another process.".into(),
        tags: vec!["loaded".into()],
        created_at: now,
        updated_at: now,
        version: 1,
    };
    assert_eq!(other.upsert_post_views(vec![blog_actors::projector::view_of(&snapshot)]).await.unwrap(), 1);
    within(Duration::from_secs(1), "the loaded post on the cached tag page", || async {
        (app.get_json("/posts?tag=loaded").await["total"] == 1).then_some(())
    })
    .await;
    assert_eq!(app.get_json(&format!("/posts/{id}")).await["title"], "Loaded");
}
