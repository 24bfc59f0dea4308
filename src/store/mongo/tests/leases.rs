//! Leases: one instance at a time.

use chrono::{Duration, Utc};

use super::store;
use crate::store::Leases;

#[tokio::test]
async fn a_lease_held_by_another_instance_is_refused_until_it_expires() {
    let store = store().await;
    let soon = Utc::now() + Duration::minutes(5);
    assert!(store.try_lease("rebuild", "a", soon).await.unwrap());
    assert!(!store.try_lease("rebuild", "b", soon).await.unwrap());
    assert!(store.try_lease("rebuild", "a", soon + Duration::minutes(5)).await.unwrap(), "the holder renews");
    assert!(!store.try_lease("rebuild", "b", soon).await.unwrap());
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    let store = store().await;
    assert!(store.try_lease("rebuild", "a", Utc::now() - Duration::seconds(1)).await.unwrap());
    assert!(store.try_lease("rebuild", "b", Utc::now() + Duration::minutes(5)).await.unwrap());
    assert!(!store.try_lease("rebuild", "a", Utc::now() + Duration::minutes(5)).await.unwrap());
}

#[tokio::test]
async fn leases_with_different_names_do_not_interfere() {
    let store = store().await;
    let soon = Utc::now() + Duration::minutes(5);
    assert!(store.try_lease("rebuild", "a", soon).await.unwrap());
    assert!(store.try_lease("cleanup", "b", soon).await.unwrap());
}

#[tokio::test]
async fn of_racing_instances_exactly_one_takes_a_free_lease() {
    let store = store().await;
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
