//! The read model refuses older versions and keeps tombstones.

use blog_actors::ports::Applied;
use uuid::Uuid;

use super::{view, TestStore};

pub(crate) async fn a_view_is_stored_only_when_newer_than_what_is_there(store: impl TestStore) {
    let id = Uuid::new_v4();
    assert_eq!(store.upsert_post_view(&view(id, 1, 0, &["a"])).await.unwrap(), Applied::Changed);
    assert_eq!(store.upsert_post_view(&view(id, 1, 0, &["a"])).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.upsert_post_view(&view(id, 3, 0, &["b"])).await.unwrap(), Applied::Changed);
    assert_eq!(store.upsert_post_view(&view(id, 2, 0, &["c"])).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.get_post_view(id).await.unwrap(), Some(view(id, 3, 0, &["b"])));
    assert_eq!(store.list_posts(Some("c"), 1, 10).await.unwrap().total, 0);
}

pub(crate) async fn a_removed_view_cannot_come_back_with_an_older_or_equal_version(store: impl TestStore) {
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

pub(crate) async fn a_deletion_arriving_before_the_creation_leaves_a_tombstone(store: impl TestStore) {
    let id = Uuid::new_v4();
    assert_eq!(store.remove_post_view(id, 2).await.unwrap(), Applied::Changed);
    assert_eq!(store.upsert_post_view(&view(id, 1, 0, &["a"])).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.get_post_view(id).await.unwrap(), None);
    assert_eq!(store.list_posts(None, 1, 10).await.unwrap().total, 0);
}

pub(crate) async fn removing_an_older_version_than_the_view_changes_nothing(store: impl TestStore) {
    let id = Uuid::new_v4();
    store.upsert_post_view(&view(id, 4, 0, &[])).await.unwrap();
    assert_eq!(store.remove_post_view(id, 4).await.unwrap(), Applied::Unchanged);
    assert_eq!(store.get_post_view(id).await.unwrap(), Some(view(id, 4, 0, &[])));
}

pub(crate) async fn a_view_whose_time_changes_moves_under_its_tags(store: impl TestStore) {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    store.upsert_post_view(&view(a, 1, 1, &["t"])).await.unwrap();
    store.upsert_post_view(&view(b, 1, 2, &["t"])).await.unwrap();
    store.upsert_post_view(&view(a, 2, 3, &["t"])).await.unwrap();
    let page = store.list_posts(Some("t"), 1, 10).await.unwrap();
    assert_eq!((page.items.iter().map(|v| v.id).collect::<Vec<_>>(), page.total), (vec![a, b], 2));
}

pub(crate) async fn racing_versions_of_one_view_leave_the_newest(store: impl TestStore) {
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
