//! An old store's tags are brought to their canonical form at connect.

use blog_actors::ports::{ReadModelStore, TagCloudStore};
use mongodb::bson::doc;

use super::{names, url};
use crate::store::contract::{post, view};
use crate::store::mongo::schema::{COUNTERS, POSTS};
use crate::store::mongo::MongoStore;
use crate::store::{PostRepository, QueryStore};

#[tokio::test]
async fn an_old_store_gets_canonical_tags_and_merged_counts_at_connect() {
    let (main, queries) = names();
    let store = MongoStore::connect(&url(), &main, &queries).await.unwrap();
    let a = store.create_post(post("A", &["rust"]), None).await.unwrap();
    let b = store.create_post(post("B", &["strasse"]), None).await.unwrap();
    let old: Vec<String> = vec!["ｒｕｓｔ".into(), "straße".into()];
    store.upsert_post_view(&view(a.id, a.version, 1, &["ｒｕｓｔ", "straße"])).await.unwrap();
    store.upsert_post_view(&view(b.id, b.version, 2, &["strasse"])).await.unwrap();
    // As a store made under the old rules holds them.
    store.db.main(POSTS).update_one(doc! { "_id": a.id.to_string() }, doc! { "$set": { "tags": &old } }).await.unwrap();
    store.db.main(COUNTERS).delete_one(doc! { "_id": "tag_form" }).await.unwrap();
    store.rebuild_tag_cloud().await.unwrap();
    drop(store);

    let store = MongoStore::connect(&url(), &main, &queries).await.unwrap();
    assert_eq!(store.get_post(a.id).await.unwrap().unwrap().tags, vec!["rust", "strasse"]);
    let cloud: Vec<(String, i64)> = store.tag_cloud(Some(10)).await.unwrap().into_iter().map(|t| (t.tag, t.posts_count)).collect();
    assert_eq!(cloud, vec![("strasse".to_owned(), 2), ("rust".to_owned(), 1)]);
    assert_eq!(store.list_posts(Some("strasse"), 1, 10).await.unwrap().total, 2);
    assert_eq!(store.list_posts(Some("straße"), 1, 10).await.unwrap().total, 0);
}
