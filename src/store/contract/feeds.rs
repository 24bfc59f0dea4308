//! The feed writer's entries: newest first, by tag, version-guarded, rebuilt from the posts.

use blog_actors::feed_writer::{entry_of, FeedChange, FeedEntry};
use blog_actors::ports::Applied;
use uuid::Uuid;

use super::{post, TestStore};

fn ids(entries: &[FeedEntry]) -> Vec<Uuid> {
    entries.iter().map(|e| e.id).collect()
}

pub(crate) async fn feed_entries_are_newest_first_by_tag_and_limited(store: impl TestStore) {
    let mut created = Vec::new();
    for (i, tags) in [&["rust"][..], &["web"], &["rust", "web"], &[]].iter().enumerate() {
        let post = store.create_post(post(&format!("P{i}"), tags), None).await.unwrap();
        assert_eq!(store.apply_feed_change(FeedChange::Upsert(entry_of(&post))).await.unwrap(), Applied::Changed);
        created.push(post);
    }
    let newest_first: Vec<Uuid> = created.iter().rev().map(|p| p.id).collect();
    assert_eq!(ids(&store.feed_entries(None, 50).await.unwrap()), newest_first);
    assert_eq!(ids(&store.feed_entries(None, 2).await.unwrap()), newest_first[..2]);
    assert_eq!(ids(&store.feed_entries(Some("rust"), 50).await.unwrap()), vec![created[2].id, created[0].id]);
    assert_eq!(store.feed_entries(Some("nope"), 50).await.unwrap(), vec![]);
    assert_eq!(store.feed_entries(None, 1).await.unwrap(), vec![entry_of(&created[3])], "read back exactly");
}

pub(crate) async fn a_feed_entry_changes_only_for_a_newer_version_and_a_deletion_is_final(store: impl TestStore) {
    let post = store.create_post(post("One", &["a"]), None).await.unwrap();
    let mut entry = entry_of(&post);
    store.apply_feed_change(FeedChange::Upsert(entry.clone())).await.unwrap();
    assert_eq!(store.apply_feed_change(FeedChange::Upsert(entry.clone())).await.unwrap(), Applied::Unchanged);
    entry.version = 2;
    entry.tags = vec!["b".into()];
    assert_eq!(store.apply_feed_change(FeedChange::Upsert(entry.clone())).await.unwrap(), Applied::Changed);
    assert_eq!(store.feed_entries(Some("a"), 50).await.unwrap(), vec![], "it left the tag it lost");
    assert_eq!(store.feed_entries(Some("b"), 50).await.unwrap(), vec![entry.clone()]);
    let deletion = FeedChange::Delete { id: post.id, version: 3 };
    assert_eq!(store.apply_feed_change(deletion.clone()).await.unwrap(), Applied::Changed);
    assert_eq!(store.apply_feed_change(deletion).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.apply_feed_change(FeedChange::Upsert(entry)).await.unwrap(), Applied::Unchanged, "a late update");
    assert_eq!(store.feed_entries(None, 50).await.unwrap(), vec![]);
    assert_eq!(store.feed_entries(Some("b"), 50).await.unwrap(), vec![]);
}

pub(crate) async fn a_rebuild_brings_the_feeds_to_the_posts_and_keeps_deletions(store: impl TestStore) {
    let kept = store.create_post(post("Kept", &["a", "b"]), None).await.unwrap();
    let gone = store.create_post(post("Gone", &["a"]), None).await.unwrap();
    store.delete_post(gone.id, None).await.unwrap();
    // A stale entry of the deleted post, as a lost deletion event would leave it.
    store.apply_feed_change(FeedChange::Upsert(entry_of(&gone))).await.unwrap();
    let report = store.rebuild_feed_entries().await.unwrap();
    assert_eq!((report.posts, report.tags), (1, 2));
    assert_eq!(store.feed_entries(None, 50).await.unwrap(), vec![entry_of(&kept)]);
    assert_eq!(ids(&store.feed_entries(Some("a"), 50).await.unwrap()), vec![kept.id]);
    // After the rebuild, the creation events are stale.
    assert_eq!(store.apply_feed_change(FeedChange::Upsert(entry_of(&gone))).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.rebuild_feed_entries().await.unwrap().posts, 1, "a second rebuild finds the same");
}
