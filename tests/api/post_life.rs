use serde_json::json;

use crate::helpers::{post_body, spawn_app_on, Backend};
use crate::on_every_backend;

on_every_backend!(a_posts_life_moves_the_tag_cloud_and_the_read_model_exactly);
async fn a_posts_life_moves_the_tag_cloud_and_the_read_model_exactly(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let first = app.created_post("First steps", &["Rust", "actix", "rust "]).await;
    let id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(first["tags"], json!(["rust", "actix"]));
    assert_eq!(first["version"], 1);
    app.created_post("Second", &["rust"]).await;
    app.wait_for_cloud(&[("rust", 2), ("actix", 1)]).await;

    let view = app.get_json(&format!("/posts/{id}")).await;
    assert_eq!(view["slug"], "first-steps");
    assert_eq!(view["version"], 1);

    let response = app.update_post(&id, &post_body("First steps, revised", &["tokio", "actix"])).await;
    assert_eq!(response.status(), 200);
    app.wait_for_cloud(&[("actix", 1), ("rust", 1), ("tokio", 1)]).await;
    crate::helpers::eventually("the read model to show version 2", || async {
        let view = app.get_json(&format!("/posts/{id}")).await;
        (view["version"] == 2 && view["tags"] == json!(["tokio", "actix"])).then_some(())
    })
    .await;

    assert_eq!(app.delete_post(&id).await.status(), 204);
    app.wait_for_cloud(&[("rust", 1)]).await;
    crate::helpers::eventually("the read model to drop the post", || async {
        (app.get(&format!("/posts/{id}")).await.status() == 404).then_some(())
    })
    .await;
    let page = app.get_json("/posts").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["title"], "Second");
}

on_every_backend!(many_posts_created_at_once_give_exact_counts);
async fn many_posts_created_at_once_give_exact_counts(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let tags = ["alpha", "beta", "gamma", "delta"];
    let creates = (0..200).map(|i| {
        let app = &app;
        async move {
            let mine: Vec<&str> = tags.iter().enumerate().filter(|(t, _)| i % (t + 2) == 0).map(|(_, tag)| *tag).collect();
            app.created_post(&format!("Post {i}"), &mine).await;
        }
    });
    futures::future::join_all(creates).await;
    let expected: Vec<(String, i64)> = {
        let mut counts: Vec<(String, i64)> = tags
            .iter()
            .enumerate()
            .map(|(t, tag)| (tag.to_string(), (0..200).filter(|i| i % (t + 2) == 0).count() as i64))
            .collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        counts
    };
    let expected: Vec<(&str, i64)> = expected.iter().map(|(t, c)| (t.as_str(), *c)).collect();
    app.wait_for_cloud(&expected).await;
    crate::helpers::eventually("every post in the read model", || async {
        (app.get_json("/posts?per_page=5").await["total"] == 200).then_some(())
    })
    .await;
    let tagged = app.get_json("/posts?tag=gamma&per_page=100").await;
    assert_eq!(tagged["total"], expected.iter().find(|(t, _)| *t == "gamma").unwrap().1);
}

on_every_backend!(a_rebuild_gives_the_same_cloud_as_the_incremental_updates);
async fn a_rebuild_gives_the_same_cloud_as_the_incremental_updates(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let tags: Vec<String> = (0..(i % 4)).map(|t| format!("tag{}", (i + t) % 7)).collect();
        let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        ids.push(app.created_post(&format!("Post {i}"), &refs).await["id"].as_str().unwrap().to_owned());
    }
    for id in ids.iter().step_by(3) {
        assert_eq!(app.update_post(id, &post_body("Changed", &["tag1", "changed"])).await.status(), 200);
    }
    for id in ids.iter().skip(1).step_by(5) {
        assert_eq!(app.delete_post(id).await.status(), 204);
    }
    app.wait_until_idle().await;
    let incremental = app.tag_cloud().await;
    assert!(!incremental.is_empty());

    let response = app.post_authed("/admin/tag-cloud/rebuild", &json!({})).await;
    assert_eq!(response.status(), 200);
    let report: serde_json::Value = response.json().await.unwrap();
    let live = 30 - ids.iter().skip(1).step_by(5).count();
    assert_eq!(report["posts"], live);
    assert_eq!(app.tag_cloud().await, incremental);

    // The rebuild of every worker that keeps state answers one report per worker.
    let response = app.post_authed("/admin/rebuild", &json!({})).await;
    assert_eq!(response.status(), 200);
    let reports: serde_json::Value = response.json().await.unwrap();
    assert_eq!(reports["tag_aggregator"]["posts"], live, "{reports}");
    assert!(reports.get("emailer").is_none(), "the emailer keeps nothing to rebuild: {reports}");
    assert_eq!(app.tag_cloud().await, incremental);
}

on_every_backend!(the_tag_cloud_is_served_most_used_first_ties_by_name_and_cut_at_the_limit);
async fn the_tag_cloud_is_served_most_used_first_ties_by_name_and_cut_at_the_limit(backend: Backend) {
    let app = spawn_app_on(backend).await;
    for (title, tags) in [
        ("A", &["zeta", "beta", "alpha"][..]),
        ("B", &["zeta", "beta"][..]),
        ("C", &["zeta", "gamma"][..]),
        ("D", &["delta"][..]),
    ] {
        app.created_post(title, tags).await;
    }
    app.wait_for_cloud(&[("zeta", 3), ("beta", 2), ("alpha", 1), ("delta", 1), ("gamma", 1)]).await;
    let top: Vec<(String, i64)> = app
        .get_json("/tags?limit=3")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["tag"].as_str().unwrap().to_owned(), t["posts_count"].as_i64().unwrap()))
        .collect();
    assert_eq!(top, vec![("zeta".to_owned(), 3), ("beta".to_owned(), 2), ("alpha".to_owned(), 1)]);
    let response = app.post_authed("/admin/tag-cloud/rebuild", &json!({})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.get_json("/tags?limit=3").await.as_array().unwrap().len(), 3, "the rebuilt cloud keeps order and limit");
    assert_eq!(app.tag_cloud().await[..3], top[..]);
}
