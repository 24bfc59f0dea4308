//! The rebuild's batching, MongoDB's own: the store resets the per-post records in batches.

use blog_actors::ports::{Applied, TagCloudStore};
use uuid::Uuid;

use super::store;
use crate::store::contract::{cloud, post, tags};
use crate::store::{PostRepository, QueryStore};

#[tokio::test]
async fn a_rebuild_over_more_posts_than_one_batch_resets_every_record() {
    use crate::store::ImportedPost;
    let store = store().await;
    let n = super::super::tag_cloud::RESET_BATCH * 2 + 7;
    let imported: Vec<ImportedPost> = (0..n)
        .map(|i| ImportedPost {
            id: Uuid::now_v7(),
            post: post(&format!("Post {i}"), if i % 2 == 0 { &["even", "all"] } else { &["all"] }),
            created_at: chrono::Utc::now(),
        })
        .collect();
    let ids: Vec<Uuid> = imported.iter().map(|p| p.id).collect();
    store.import_posts(imported).await.unwrap();
    let report = store.rebuild_tag_cloud().await.unwrap();
    assert_eq!(report.posts, n as u64);
    let evens = n.div_ceil(2) as i64;
    assert_eq!(store.tag_cloud(None).await.unwrap(), cloud(&[("all", n as i64), ("even", evens)]));
    // Every post has its record, in every batch: its creation event, late, counts nothing.
    for id in [ids[0], ids[super::super::tag_cloud::RESET_BATCH], ids[n - 1]] {
        assert_eq!(store.apply_post_tags(id, 1, Some(&tags(&["all"]))).await.unwrap(), Applied::Unchanged);
    }
    assert_eq!(store.tag_cloud(None).await.unwrap(), cloud(&[("all", n as i64), ("even", evens)]));
}
