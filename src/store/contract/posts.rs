//! Post writes and the events they put in the outbox, in the same commit.

use blog_actors::event::{Event, PostDeleted, PostUpdated, POST_CREATED};
use blog_actors::projector::view_of;
use uuid::Uuid;

use super::{outbox_events, post, tags, TestStore};
use crate::store::{ImportedPost, PostWrite};

pub(crate) async fn creating_a_post_stores_version_one_and_enqueues_post_created(store: impl TestStore) {
    let created = store.create_post(post("Hello", &["rust", "store"]), Some("req-1".into())).await.unwrap();
    assert_eq!(created.version, 1);
    // Read back exactly: the stamps were cut to the millisecond both stores keep.
    assert_eq!(store.get_post(created.id).await.unwrap(), Some(created.clone()));
    let events = outbox_events(&store).await;
    assert_eq!(events.len(), 1);
    let (envelope, event) = &events[0];
    assert_eq!(envelope.event_type, POST_CREATED);
    assert_eq!(envelope.correlation_id.as_deref(), Some("req-1"));
    assert_eq!(event, &Event::PostCreated(created));
}

pub(crate) async fn updating_a_post_bumps_its_version_and_enqueues_the_previous_tags(store: impl TestStore) {
    let created = store.create_post(post("One", &["a", "b"]), None).await.unwrap();
    let PostWrite::Done(updated) = store.update_post(created.id, post("Two", &["b", "c"]), Some(1), None).await.unwrap()
    else {
        panic!("update refused")
    };
    assert_eq!(updated.version, 2);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(store.get_post(created.id).await.unwrap(), Some(updated.clone()));
    let events = outbox_events(&store).await;
    assert_eq!(events[1].1, Event::PostUpdated(PostUpdated { post: updated, previous_tags: tags(&["a", "b"]) }));
}

pub(crate) async fn an_update_naming_a_stale_version_conflicts_and_enqueues_nothing(store: impl TestStore) {
    let created = store.create_post(post("One", &[]), None).await.unwrap();
    store.update_post(created.id, post("Two", &[]), None, None).await.unwrap();
    let answer = store.update_post(created.id, post("Three", &[]), Some(1), None).await.unwrap();
    assert_eq!(answer, PostWrite::VersionConflict { current: 2 });
    assert_eq!(store.backlog().await.unwrap(), 2);
}

pub(crate) async fn writing_a_missing_post_answers_not_found(store: impl TestStore) {
    let id = Uuid::new_v4();
    assert_eq!(store.update_post(id, post("X", &[]), None, None).await.unwrap(), PostWrite::NotFound);
    assert_eq!(store.delete_post(id, None).await.unwrap(), PostWrite::NotFound);
    assert_eq!(store.backlog().await.unwrap(), 0);
}

pub(crate) async fn deleting_a_post_enqueues_post_deleted_with_the_next_version_and_its_tags(store: impl TestStore) {
    let created = store.create_post(post("Gone", &["x", "y"]), None).await.unwrap();
    store.update_post(created.id, post("Gone", &["y"]), None, None).await.unwrap();
    assert!(matches!(store.delete_post(created.id, Some("c".into())).await.unwrap(), PostWrite::Done(_)));
    assert_eq!(store.get_post(created.id).await.unwrap(), None);
    assert_eq!(store.count_posts().await.unwrap(), 0);
    let (envelope, event) = outbox_events(&store).await.pop().unwrap();
    assert_eq!(envelope.correlation_id.as_deref(), Some("c"));
    assert_eq!(event, Event::PostDeleted(PostDeleted { id: created.id, version: 3, tags: tags(&["y"]) }));
}

pub(crate) async fn concurrent_writes_each_commit_with_their_own_event_in_seq_order(store: impl TestStore) {
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.create_post(post(&format!("P{i}"), &["x"]), None).await.unwrap() })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        created.push(task.await.unwrap().id);
    }
    assert_eq!(store.count_posts().await.unwrap(), 16);
    let seqs: Vec<i64> = store.pending(100).await.unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=16).collect::<Vec<_>>(), "one event per post, seqs without gaps or repeats");
    let mut announced: Vec<Uuid> = outbox_events(&store)
        .await
        .into_iter()
        .map(|(_, e)| match e {
            Event::PostCreated(p) => p.id,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    announced.sort();
    created.sort();
    assert_eq!(announced, created);
}

pub(crate) async fn an_import_stores_new_posts_once_without_events_and_its_views_in_bulk(store: impl TestStore) {
    let gone = store.create_post(post("Gone", &["a"]), None).await.unwrap();
    store.delete_post(gone.id, None).await.unwrap();
    let stamp = chrono::DateTime::from_timestamp_millis(1_704_067_200_000).unwrap();
    let imported = |id: Uuid, title: &str| ImportedPost { id, post: post(title, &["a", "b"]), created_at: stamp };
    let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
    let batch = vec![imported(one, "One"), imported(two, "Two"), imported(gone.id, "Back")];
    assert_eq!(store.import_posts(batch.clone()).await.unwrap(), 2, "the deleted id stays deleted");
    assert_eq!(store.import_posts(batch.clone()).await.unwrap(), 0, "a second run stores nothing");
    assert_eq!(store.backlog().await.unwrap(), 2, "only the create and delete above");
    assert_eq!(store.get_post(one).await.unwrap(), Some(batch[0].snapshot()));

    let views: Vec<_> = batch[..2].iter().map(|p| view_of(&p.snapshot())).collect();
    assert_eq!(store.upsert_post_views(views.clone()).await.unwrap(), 2);
    assert_eq!(store.upsert_post_views(views.clone()).await.unwrap(), 0);
    let mut newer = views[0].clone();
    newer.version = 2;
    newer.title = "One again".into();
    assert_eq!(store.upsert_post_views(vec![newer.clone(), views[1].clone()]).await.unwrap(), 1);
    assert_eq!(store.get_post_view(one).await.unwrap(), Some(newer));
    assert_eq!(store.list_posts(Some("b"), 1, 10).await.unwrap().total, 2);
}
