//! The tag cloud: idempotent steps, reordering, the rebuild, order and limit.

use std::collections::BTreeSet;

use blog_actors::event::Event;
use blog_actors::ports::Applied;
use uuid::Uuid;

use super::{cloud, outbox_events, post, tags, TestStore};

/// Applies an event to the cloud the way the tag aggregator does.
async fn apply_event(store: &impl TestStore, event: &Event) -> Applied {
    let (id, version, tags) = match event {
        Event::PostCreated(p) => (p.id, p.version, Some(p.tags.clone())),
        Event::PostUpdated(u) => (u.post.id, u.post.version, Some(u.post.tags.clone())),
        Event::PostDeleted(d) => (d.id, d.version, None),
        Event::OrderFulfilled(_) => unreachable!("posts only"),
    };
    store.apply_post_tags(id, version, tags.as_deref()).await.unwrap()
}

pub(crate) async fn the_same_event_twice_counts_once(store: impl TestStore) {
    let (p, q) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(store.apply_post_tags(p, 1, Some(&tags(&["a", "b"]))).await.unwrap(), Applied::Changed);
    assert_eq!(store.apply_post_tags(p, 1, Some(&tags(&["a", "b"]))).await.unwrap(), Applied::Unchanged);
    store.apply_post_tags(q, 1, Some(&tags(&["b"]))).await.unwrap();
    assert_eq!(store.tag_cloud(None).await.unwrap(), cloud(&[("b", 2), ("a", 1)]));
}

pub(crate) async fn an_older_version_after_a_newer_one_changes_nothing(store: impl TestStore) {
    let p = Uuid::new_v4();
    store.apply_post_tags(p, 2, Some(&tags(&["b", "c"]))).await.unwrap();
    assert_eq!(store.apply_post_tags(p, 1, Some(&tags(&["a", "b"]))).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.tag_cloud(None).await.unwrap(), cloud(&[("b", 1), ("c", 1)]));
}

pub(crate) async fn an_update_moves_the_counts_by_the_difference_and_drops_empty_tags(store: impl TestStore) {
    let (p, q) = (Uuid::new_v4(), Uuid::new_v4());
    store.apply_post_tags(p, 1, Some(&tags(&["a", "b"]))).await.unwrap();
    store.apply_post_tags(q, 1, Some(&tags(&["a"]))).await.unwrap();
    store.apply_post_tags(p, 2, Some(&tags(&["a", "c"]))).await.unwrap();
    assert_eq!(store.tag_cloud(None).await.unwrap(), cloud(&[("a", 2), ("c", 1)]));
    store.apply_post_tags(p, 3, None).await.unwrap();
    assert_eq!(store.tag_cloud(None).await.unwrap(), cloud(&[("a", 1)]));
}

pub(crate) async fn a_deletion_before_a_late_creation_keeps_the_post_out(store: impl TestStore) {
    let p = Uuid::new_v4();
    assert_eq!(store.apply_post_tags(p, 3, None).await.unwrap(), Applied::Changed);
    assert_eq!(store.apply_post_tags(p, 1, Some(&tags(&["a"]))).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.apply_post_tags(p, 2, Some(&tags(&["b"]))).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.apply_post_tags(p, 3, None).await.unwrap(), Applied::Unchanged);
    assert!(store.tag_cloud(None).await.unwrap().is_empty());
}

pub(crate) async fn concurrent_events_for_many_posts_count_exactly(store: impl TestStore) {
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = Uuid::new_v4();
                store.apply_post_tags(id, 1, Some(&tags(&["hot", "new"]))).await.unwrap();
                store.apply_post_tags(id, 2, Some(&tags(&["hot"]))).await.unwrap();
                store.apply_post_tags(id, 1, Some(&tags(&["hot", "new"]))).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.tag_cloud(None).await.unwrap(), cloud(&[("hot", 64)]));
}

/// Posts whose tags count c:4, a:3, b:3, e:2, d:1, f:1: distinct counts and ties.
const TAGGED: [&[&str]; 5] = [&["c", "a", "b"], &["c", "a", "e"], &["c", "b", "d"], &["c", "a", "b", "e"], &["f"]];
const EXPECTED: [(&str, i64); 6] = [("c", 4), ("a", 3), ("b", 3), ("e", 2), ("d", 1), ("f", 1)];

pub(crate) async fn the_cloud_is_limited_and_ordered_by_count_then_tag(store: impl TestStore) {
    for tag_list in TAGGED {
        store.apply_post_tags(Uuid::new_v4(), 1, Some(&tags(tag_list))).await.unwrap();
    }
    assert_eq!(store.tag_cloud(None).await.unwrap(), cloud(&EXPECTED));
    for limit in 1..=7 {
        let want = &EXPECTED[..EXPECTED.len().min(limit)];
        assert_eq!(store.tag_cloud(Some(limit as u32)).await.unwrap(), cloud(want), "limit {limit}");
    }
    assert!(store.tag_cloud(Some(0)).await.unwrap().is_empty());
}

pub(crate) async fn the_rebuilt_cloud_has_the_aggregated_counts_in_order_and_limited(store: impl TestStore) {
    for (i, tag_list) in TAGGED.iter().enumerate() {
        store.create_post(post(&format!("P{i}"), tag_list), None).await.unwrap();
    }
    store.create_post(post("Untagged", &[]), None).await.unwrap();
    let report = store.rebuild_tag_cloud().await.unwrap();
    assert_eq!((report.posts, report.tags), (6, 6));
    assert_eq!(store.tag_cloud(None).await.unwrap(), cloud(&EXPECTED));
    assert_eq!(store.tag_cloud(Some(3)).await.unwrap(), cloud(&EXPECTED[..3]));
    assert_eq!(store.tag_cloud(Some(5)).await.unwrap(), cloud(&EXPECTED[..5]));
}

pub(crate) async fn a_rebuild_equals_applying_every_event_in_any_order_and_twice(store: impl TestStore) {
    let pool = ["rust", "actix", "sqlite", "cqrs", "mongo", "amqp", "tokio", "serde"];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let random_tags = |next: &mut dyn FnMut(usize) -> usize| -> Vec<&str> {
        (0..next(5)).map(|_| pool[next(pool.len())]).collect::<BTreeSet<_>>().into_iter().collect()
    };
    let mut ids = Vec::new();
    for i in 0..50 {
        let created = store.create_post(post(&format!("P{i}"), &random_tags(&mut next)), None).await.unwrap();
        ids.push(created.id);
    }
    for _ in 0..40 {
        let id = ids[next(ids.len())];
        store.update_post(id, post("Changed", &random_tags(&mut next)), None, None).await.unwrap();
    }
    for _ in 0..12 {
        let id = ids.remove(next(ids.len()));
        store.delete_post(id, None).await.unwrap();
    }

    let events = outbox_events(&store).await;
    for (_, event) in events.iter().rev().chain(events.iter()) {
        apply_event(&store, event).await;
    }
    let incremental = store.tag_cloud(None).await.unwrap();
    assert!(!incremental.is_empty());

    let report = store.rebuild_tag_cloud().await.unwrap();
    assert_eq!(report.posts, 38);
    assert_eq!(report.tags, incremental.len() as u64);
    assert_eq!(store.tag_cloud(None).await.unwrap(), incremental);

    // After the rebuild, every event is stale: replaying them all changes nothing.
    for (_, event) in &events {
        assert_eq!(apply_event(&store, event).await, Applied::Unchanged);
    }
    assert_eq!(store.tag_cloud(None).await.unwrap(), incremental);
}

pub(crate) async fn events_arriving_after_a_rebuild_cannot_count_a_deleted_post_again(store: impl TestStore) {
    let gone = store.create_post(post("Gone", &["a"]), None).await.unwrap();
    let kept = store.create_post(post("Kept", &["a", "b"]), None).await.unwrap();
    store.delete_post(gone.id, None).await.unwrap();
    store.rebuild_tag_cloud().await.unwrap();
    assert_eq!(store.tag_cloud(None).await.unwrap(), cloud(&[("a", 1), ("b", 1)]));

    // Now the events, late: the creations and the deletion are all stale.
    for (_, event) in outbox_events(&store).await {
        assert_eq!(apply_event(&store, &event).await, Applied::Unchanged);
    }
    store.update_post(kept.id, post("Kept", &["b"]), None, None).await.unwrap();
    let (_, update) = outbox_events(&store).await.pop().unwrap();
    assert_eq!(apply_event(&store, &update).await, Applied::Changed);
    assert_eq!(store.tag_cloud(None).await.unwrap(), cloud(&[("b", 1)]));
}

pub(crate) async fn rebuilding_an_empty_store_gives_an_empty_cloud(store: impl TestStore) {
    store.apply_post_tags(Uuid::new_v4(), 1, Some(&tags(&["stray"]))).await.unwrap();
    let report = store.rebuild_tag_cloud().await.unwrap();
    assert_eq!((report.posts, report.tags), (0, 0));
    assert!(store.tag_cloud(None).await.unwrap().is_empty());
}
