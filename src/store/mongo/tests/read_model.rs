//! The read model refuses older versions and keeps tombstones.

use blog_actors::ports::{Applied, ReadModelStore};
use uuid::Uuid;

use super::{store, view};
use crate::store::QueryStore;

#[tokio::test]
async fn a_view_is_stored_only_when_newer_than_what_is_there() {
    let store = store().await;
    let id = Uuid::new_v4();
    assert_eq!(store.upsert_post_view(&view(id, 1, 0, &["a"])).await.unwrap(), Applied::Changed);
    assert_eq!(store.upsert_post_view(&view(id, 1, 0, &["a"])).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.upsert_post_view(&view(id, 3, 0, &["b"])).await.unwrap(), Applied::Changed);
    assert_eq!(store.upsert_post_view(&view(id, 2, 0, &["c"])).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.get_post_view(id).await.unwrap(), Some(view(id, 3, 0, &["b"])));
    assert_eq!(store.list_posts(Some("c"), 1, 10).await.unwrap().total, 0);
}

#[tokio::test]
async fn a_removed_view_cannot_come_back_with_an_older_or_equal_version() {
    let store = store().await;
    let id = Uuid::new_v4();
    store.upsert_post_view(&view(id, 2, 0, &["a"])).await.unwrap();
    assert_eq!(store.remove_post_view(id, 3).await.unwrap(), Applied::Changed);
    assert_eq!(store.remove_post_view(id, 3).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.upsert_post_view(&view(id, 2, 0, &["a"])).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.upsert_post_view(&view(id, 3, 0, &["a"])).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.get_post_view(id).await.unwrap(), None);
    let page = store.list_posts(None, 1, 10).await.unwrap();
    assert_eq!((page.items.len(), page.total), (0, 0));
    assert_eq!(store.list_posts(Some("a"), 1, 10).await.unwrap().total, 0);
}

#[tokio::test]
async fn a_deletion_arriving_before_the_creation_leaves_a_tombstone() {
    let store = store().await;
    let id = Uuid::new_v4();
    assert_eq!(store.remove_post_view(id, 2).await.unwrap(), Applied::Changed);
    assert_eq!(store.upsert_post_view(&view(id, 1, 0, &["a"])).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.get_post_view(id).await.unwrap(), None);
    assert_eq!(store.list_posts(None, 1, 10).await.unwrap().total, 0);
}

#[tokio::test]
async fn removing_an_older_version_than_the_view_changes_nothing() {
    let store = store().await;
    let id = Uuid::new_v4();
    store.upsert_post_view(&view(id, 4, 0, &[])).await.unwrap();
    assert_eq!(store.remove_post_view(id, 4).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.get_post_view(id).await.unwrap(), Some(view(id, 4, 0, &[])));
}

#[tokio::test]
async fn racing_versions_of_one_view_leave_the_newest() {
    let store = store().await;
    let id = Uuid::new_v4();
    let tasks: Vec<_> = (1..=8)
        .rev()
        .map(|version| {
            let store = store.clone();
            tokio::spawn(async move { store.upsert_post_view(&view(id, version, 0, &["a"])).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.get_post_view(id).await.unwrap().map(|v| v.version), Some(8));
}
