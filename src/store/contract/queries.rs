//! Pages of post views from the read model: newest first, by tag.

use uuid::Uuid;

use super::{view, TestStore};
use crate::store::PostPage;

fn ids(page: &PostPage) -> Vec<Uuid> {
    page.items.iter().map(|v| v.id).collect()
}

pub(crate) async fn posts_are_listed_newest_first_in_pages(store: impl TestStore) {
    let posted: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    for (minute, id) in posted.iter().enumerate() {
        store.upsert_post_view(&view(*id, 1, minute as i64, &[])).await.unwrap();
    }
    let newest_first: Vec<Uuid> = posted.iter().rev().copied().collect();
    let first = store.list_posts(None, 1, 2).await.unwrap();
    assert_eq!((first.page, first.per_page, first.total), (1, 2, 5));
    assert_eq!(ids(&first), newest_first[..2]);
    assert_eq!(ids(&store.list_posts(None, 2, 2).await.unwrap()), newest_first[2..4]);
    assert_eq!(ids(&store.list_posts(None, 3, 2).await.unwrap()), newest_first[4..]);
    assert!(store.list_posts(None, 4, 2).await.unwrap().items.is_empty());
    assert_eq!(store.list_posts(None, 0, 2).await.unwrap().page, 1, "pages count from 1");
    assert!(store.list_posts(None, 1, 0).await.unwrap().items.is_empty(), "an empty page holds nothing");
}

pub(crate) async fn posts_created_at_the_same_instant_are_ordered_by_id_descending(store: impl TestStore) {
    let mut same: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    for id in &same {
        store.upsert_post_view(&view(*id, 1, 7, &["t"])).await.unwrap();
    }
    // Ids are strings of lower-case hex: their string order is their byte order.
    same.sort_by_key(|id| std::cmp::Reverse(id.hyphenated().to_string()));
    assert_eq!(ids(&store.list_posts(None, 1, 10).await.unwrap()), same);
    assert_eq!(ids(&store.list_posts(Some("t"), 1, 10).await.unwrap()), same);
}

pub(crate) async fn a_tag_filter_lists_only_live_posts_with_that_tag(store: impl TestStore) {
    let (a, b, c, d) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    store.upsert_post_view(&view(a, 1, 1, &["rust", "web"])).await.unwrap();
    store.upsert_post_view(&view(b, 1, 2, &["web"])).await.unwrap();
    store.upsert_post_view(&view(c, 1, 3, &["rust"])).await.unwrap();
    store.upsert_post_view(&view(d, 1, 4, &["rust"])).await.unwrap();
    store.remove_post_view(d, 2).await.unwrap();
    // b gains the tag by an update, a loses it.
    store.upsert_post_view(&view(b, 2, 2, &["web", "rust"])).await.unwrap();
    store.upsert_post_view(&view(a, 2, 1, &["web"])).await.unwrap();

    let rust = store.list_posts(Some("rust"), 1, 10).await.unwrap();
    assert_eq!((ids(&rust), rust.total), (vec![c, b], 2));
    let second = store.list_posts(Some("rust"), 2, 1).await.unwrap();
    assert_eq!((ids(&second), second.total), (vec![b], 2));
    assert_eq!(store.list_posts(Some("nope"), 1, 10).await.unwrap().total, 0);
}

pub(crate) async fn a_view_reads_back_exactly_as_stored(store: impl TestStore) {
    let id = Uuid::new_v4();
    let stored = view(id, 7, 42, &["x", "y"]);
    store.upsert_post_view(&stored).await.unwrap();
    assert_eq!(store.get_post_view(id).await.unwrap(), Some(stored.clone()));
    assert_eq!(store.list_posts(None, 1, 1).await.unwrap().items, vec![stored]);
    assert_eq!(store.get_post_view(Uuid::new_v4()).await.unwrap(), None);
}
