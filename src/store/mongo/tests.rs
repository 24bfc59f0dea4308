//! Tests against a MongoDB server: the nx-27017 stand-in in development and CI
//! (see shared/MONGO_STANDIN.md), or real MongoDB via `BLOG_TEST_MONGO_URL`.
//! Each test uses its own pair of databases, so tests run in parallel. An
//! unreachable server fails the tests: a skipped store is not a tested one.
//! The behaviours both stores share are the contract suite (`store::contract`);
//! what is here is MongoDB's own.

mod retag;
mod tag_cloud;

use uuid::Uuid;

use super::MongoStore;
use crate::store::contract::post;
use crate::store::{Outbox, PostRepository, Store};

const DEFAULT_URL: &str = "mongodb://127.0.0.1:27018/?directConnection=true&serverSelectionTimeoutMS=5000";

pub(super) fn url() -> String {
    std::env::var("BLOG_TEST_MONGO_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// Fresh database names: `blog_t_<random>` and `blog_t_<random>_q`.
pub(super) fn names() -> (String, String) {
    let main = format!("blog_t_{}", &Uuid::new_v4().simple().to_string()[..12]);
    let queries = format!("{main}_q");
    (main, queries)
}

/// A store on fresh databases; panics (fails the test) when the server is unreachable.
pub(super) async fn store() -> MongoStore {
    let (main, queries) = names();
    MongoStore::connect(&url(), &main, &queries)
        .await
        .unwrap_or_else(|e| panic!("MongoDB test server at {} (BLOG_TEST_MONGO_URL): {e}", url()))
}

/// The contract suite's fixture: nothing to keep alive beside the store.
async fn fresh() -> ((), MongoStore) {
    ((), store().await)
}

crate::store::contract::store_contract_suite!(fresh);

#[tokio::test]
async fn connecting_creates_the_databases_and_both_answer_ping() {
    let store = store().await;
    store.ping().await.unwrap();
    let collections = store.db.main.list_collection_names().await.unwrap();
    for name in ["posts", "outbox", "tag_cloud", "tag_cloud_applied", "post_tombstones", "email_log", "leases"] {
        assert!(collections.iter().any(|c| c == name), "{name} missing from {collections:?}");
    }
    assert!(store.db.queries.list_collection_names().await.unwrap().iter().any(|c| c == "post_views"));
}

#[tokio::test]
async fn connecting_again_keeps_the_data_and_the_indexes_setup_is_idempotent() {
    let (main, queries) = names();
    let store = MongoStore::connect(&url(), &main, &queries).await.unwrap();
    let created = store.create_post(post("Kept", &["a"]), None).await.unwrap();
    let again = MongoStore::connect(&url(), &main, &queries).await.unwrap();
    assert_eq!(again.get_post(created.id).await.unwrap(), Some(created));
}

#[tokio::test]
async fn stores_on_other_databases_see_nothing_of_each_other() {
    let (one, two) = (store().await, store().await);
    one.create_post(post("Mine", &["a"]), None).await.unwrap();
    assert_eq!(two.count_posts().await.unwrap(), 0);
    assert_eq!(two.backlog().await.unwrap(), 0);
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_naming_the_operation() {
    let url = "mongodb://127.0.0.1:1/?directConnection=true&serverSelectionTimeoutMS=300";
    let err = MongoStore::connect(url, "blog_t_none", "blog_t_none_q").await.err().expect("no server there");
    assert!(err.to_string().contains("mongodb "), "{err}");
}
