//! Leases: one instance at a time runs what a lease guards.

use chrono::{Duration, Utc};

use super::TestStore;

pub(crate) async fn a_lease_held_by_another_instance_is_refused_until_it_expires(store: impl TestStore) {
    let soon = Utc::now() + Duration::minutes(5);
    assert!(store.try_lease("rebuild", "a", soon).await.unwrap());
    assert!(!store.try_lease("rebuild", "b", soon).await.unwrap());
    assert!(store.try_lease("rebuild", "a", soon + Duration::minutes(5)).await.unwrap(), "the holder renews");
    assert!(!store.try_lease("rebuild", "b", soon).await.unwrap());
}

pub(crate) async fn an_expired_lease_is_taken_over(store: impl TestStore) {
    assert!(store.try_lease("rebuild", "a", Utc::now() - Duration::seconds(1)).await.unwrap());
    assert!(store.try_lease("rebuild", "b", Utc::now() + Duration::minutes(5)).await.unwrap());
    assert!(!store.try_lease("rebuild", "a", Utc::now() + Duration::minutes(5)).await.unwrap());
}

pub(crate) async fn leases_with_different_names_do_not_interfere(store: impl TestStore) {
    let soon = Utc::now() + Duration::minutes(5);
    assert!(store.try_lease("rebuild", "a", soon).await.unwrap());
    assert!(store.try_lease("cleanup", "b", soon).await.unwrap());
}

pub(crate) async fn of_racing_instances_exactly_one_takes_a_free_lease(store: impl TestStore) {
    let soon = Utc::now() + Duration::minutes(5);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.try_lease("rebuild", &format!("i{i}"), soon).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1);
}
