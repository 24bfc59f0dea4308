//! No silent stalls: a store that stops answering (its process SIGSTOPped, its
//! sockets open) while posts flow makes readiness name the stalled workers;
//! once it answers again every effect lands exactly once. A rebuild against the
//! frozen store fails within its deadline and leaves its worker free.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use blog::configuration::Settings;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::helpers::{eventually, post_body, spawn_app_with, Backend, TestApp};
use crate::standin::StandIn;

/// The workers post events reach.
const POST_WORKERS: [&str; 3] = ["tag_aggregator", "projector", "feed_writer"];
const TAGS: [&str; 4] = ["alpha", "beta", "gamma", "delta"];
const STALL_AFTER: Duration = Duration::from_secs(2);
/// How late readiness may name a stall: a check every quarter window, and a
/// readiness answer that itself waits on the frozen store's ping.
const STALL_SEEN_WITHIN: Duration = Duration::from_secs(10);
const REBUILD_DEADLINE: Duration = Duration::from_secs(2);

/// Short timeouts, and enough attempts that nothing is parked while the store is frozen.
/// The store timeout outlasts the freeze (the stall is named after `STALL_AFTER`,
/// then the store thaws): calls in flight wait and then finish, rather than
/// time out and leave the stand-in a pile of orphaned requests to work through.
fn on_own_store(settings: &mut Settings, standin: &StandIn) {
    settings.store_url = Some(standin.url());
    settings.store_timeout = Duration::from_secs(8);
    settings.handler_timeout = Duration::from_secs(12);
    settings.stall_after = STALL_AFTER;
    settings.rebuild_timeout = REBUILD_DEADLINE;
    settings.max_attempts = 1000;
}

/// Posts accepted (201) so far: id and tags.
type Created = Mutex<Vec<(String, Vec<String>)>>;

/// Creates posts one after another until `stop`; a refused one (the store frozen) is tried again.
async fn keep_posting(app: &TestApp, poster: usize, created: &Created, stop: &CancellationToken) {
    let mut n = 0usize;
    while !stop.is_cancelled() {
        n += 1;
        let tags = [TAGS[(poster + n) % TAGS.len()], TAGS[(poster + n + 1 + n % 2) % TAGS.len()]];
        let response = app.create_post(&post_body(&format!("Stall {poster}-{n}"), &tags)).await;
        if response.status() == 201 {
            let post: Value = response.json().await.expect("json");
            let tags = post["tags"].as_array().expect("tags").iter().map(|t| t.as_str().unwrap().to_owned()).collect();
            created.lock().unwrap().push((post["id"].as_str().expect("an id").to_owned(), tags));
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await; // pacing a retry of a refused write, not a sync
        }
    }
}

async fn readiness(app: &TestApp) -> (u16, Value) {
    let response = app.get("/health/ready").await;
    (response.status().as_u16(), response.json().await.expect("json"))
}

fn stalled_workers(body: &Value) -> Vec<String> {
    body["stalled_workers"].as_array().map_or_else(Vec::new, |a| a.iter().map(|w| w.as_str().unwrap().to_owned()).collect())
}

#[actix_web::test]
async fn a_frozen_store_names_the_stalled_workers_and_after_it_thaws_every_effect_lands_once() {
    let standin = StandIn::start();
    let app = spawn_app_with(Backend::MongoRabbit, |s| on_own_store(s, &standin), |_| {}).await;
    let (created, stop) = (Created::default(), CancellationToken::new());
    let posters = futures::future::join_all((0..3).map(|p| keep_posting(&app, p, &created, &stop)));
    let scenario = async {
        // Freeze while a post worker holds deliveries: work that waits on the store.
        let metrics = &app.handles.actor_metrics;
        eventually("posts flowing through the workers", || async {
            let flowing = created.lock().unwrap().len() >= 15 && POST_WORKERS.iter().any(|w| metrics.held(w) > 0);
            flowing.then_some(())
        })
        .await;
        standin.freeze();
        let frozen = Instant::now();
        let named = eventually("readiness naming the stalled workers", || async {
            let (status, body) = readiness(&app).await;
            let stalled = stalled_workers(&body);
            (status == 503 && !stalled.is_empty()).then_some((body, stalled))
        })
        .await;
        let seen_after = frozen.elapsed();
        let (body, stalled) = named;
        assert!(seen_after < STALL_SEEN_WITHIN, "the stall was named {seen_after:?} after the freeze");
        assert_eq!(body["checks"]["workers"], "stalled", "{body}");
        assert!(stalled.iter().all(|w| POST_WORKERS.contains(&w.as_str())), "only post workers hold work: {stalled:?}");
        // What `/actors` and the dashboard show, read in process: over HTTP they
        // would first wait out the frozen store's backlog figure.
        let shown: Vec<String> = metrics.snapshot().into_iter().filter(|a| a.stalled).map(|a| a.name).collect();
        assert_eq!(shown, stalled, "the actor figures mark the same workers");

        standin.thaw();
        eventually("readiness back once the store answers", || async {
            let (status, body) = readiness(&app).await;
            (status == 200 && stalled_workers(&body).is_empty()).then_some(())
        })
        .await;
        stop.cancel();
    };
    tokio::join!(posters, scenario);
    app.wait_until_idle().await;
    every_effect_landed_once(&app, &created.into_inner().unwrap()).await;
}

async fn cloud(app: &TestApp) -> BTreeMap<String, i64> {
    app.tag_cloud().await.into_iter().collect()
}

/// The read model holds every post once, each as stored; the tag cloud counts
/// them exactly (and a full recount agrees); nothing was parked.
async fn every_effect_landed_once(app: &TestApp, created: &[(String, Vec<String>)]) {
    let store = &app.handles.store;
    let posts = store.count_posts().await.expect("count");
    assert!(posts >= created.len() as u64, "{posts} posts stored, {} accepted", created.len());
    // A write whose answer was lost to the timeout may have committed: the store says what exists.
    let views = eventually("the read model holding every stored post", || async {
        let page = store.list_posts(None, 1, u32::try_from(posts).unwrap()).await.ok()?;
        (page.total == posts && page.items.len() as u64 == posts).then_some(page.items)
    })
    .await;
    let ids: HashSet<String> = views.iter().map(|v| v.id.to_string()).collect();
    assert_eq!(ids.len(), views.len(), "a post shown twice");
    for (id, tags) in created {
        assert!(ids.contains(id), "post {id} missing from the read model");
        let view = views.iter().find(|v| &v.id.to_string() == id).unwrap();
        assert_eq!(&view.tags, tags, "post {id}");
    }
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for view in &views {
        for tag in &view.tags {
            *expected.entry(tag.clone()).or_default() += 1;
        }
    }
    eventually("the tag cloud counting every post once", || async { (cloud(app).await == expected).then_some(()) }).await;
    let rebuilt = app.post_authed("/admin/tag-cloud/rebuild", &serde_json::json!({})).await;
    assert_eq!(rebuilt.status(), 200);
    assert_eq!(cloud(app).await, expected, "a full recount agrees with the counts kept");
    for actor in app.handles.actor_metrics.snapshot() {
        assert_eq!(actor.parked, 0, "{} parked a message: {:?}", actor.name, actor.last_error);
    }
}

#[actix_web::test]
async fn a_rebuild_against_a_frozen_store_fails_within_its_deadline_and_the_next_one_succeeds() {
    let standin = StandIn::start();
    let app = spawn_app_with(Backend::MongoRabbit, |s| on_own_store(s, &standin), |_| {}).await;
    for (title, tags) in [("One", ["alpha", "beta"]), ("Two", ["alpha", "gamma"])] {
        app.created_post(title, &tags).await;
    }
    app.wait_for_cloud(&[("alpha", 2), ("beta", 1), ("gamma", 1)]).await;

    standin.freeze();
    let asked = Instant::now();
    let failed = app.post_authed("/admin/tag-cloud/rebuild", &serde_json::json!({})).await;
    let took = asked.elapsed();
    assert_eq!(failed.status(), 503, "{:?}", failed.text().await);
    assert!(took < REBUILD_DEADLINE + Duration::from_secs(3), "the rebuild answered after {took:?}");

    standin.thaw();
    // The aggregator takes tag events again: not wedged by the rebuild that failed.
    app.created_post("Three", &["delta"]).await;
    app.wait_for_cloud(&[("alpha", 2), ("beta", 1), ("delta", 1), ("gamma", 1)]).await;
    let rebuilt = app.post_authed("/admin/tag-cloud/rebuild", &serde_json::json!({})).await;
    assert_eq!(rebuilt.status(), 200, "the next rebuild after the thaw");
    let report: Value = rebuilt.json().await.expect("json");
    assert_eq!((report["posts"].as_u64(), report["tags"].as_u64()), (Some(3), Some(4)), "{report}");
    app.wait_for_cloud(&[("alpha", 2), ("beta", 1), ("delta", 1), ("gamma", 1)]).await;
}
