//! What the read endpoints ask: pages of post views (queries database) and
//! the tag cloud (write database).

use async_trait::async_trait;
use blog_actors::ports::{PostView, StoreError, TagCount};
use mongodb::bson::{doc, Document};
use serde::Deserialize;
use uuid::Uuid;

use super::codec::{decode, id_text};
use super::db::{failed, DbResult};
use super::read_model::view_from_doc;
use super::schema::TAG_CLOUD;
use super::MongoStore;
use crate::store::{PostPage, QueryStore};

/// A `tag_cloud` document as stored.
#[derive(Deserialize)]
struct StoredCount {
    #[serde(rename = "_id")]
    tag: String,
    posts_count: i64,
}

#[async_trait]
impl QueryStore for MongoStore {
    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_posts(&self, tag: Option<&str>, page: u32, per_page: u32) -> Result<PostPage, StoreError> {
        self.db.within("list_posts", async {
            let op = "list_posts";
            let page = page.max(1);
            // Tombstones have no tags, so the tag filter alone leaves them out; the
            // `deleted` test covers the untagged list. `$in` rather than `{tags: tag}`:
            // the same on MongoDB, and the form the nx-27017 stand-in matches everywhere.
            let mut filter = doc! { "deleted": { "$ne": true } };
            if let Some(tag) = tag {
                filter.insert("tags", doc! { "$in": [tag] });
            }
            let skip = u64::from(page - 1) * u64::from(per_page);
            let views = self.db.post_views();
            // The items and the total are two reads, not one snapshot: a write between
            // them can make the total differ by one, harmless for paging (a snapshot
            // would need a transaction on every list).
            let docs: Vec<Document> = if per_page == 0 {
                Vec::new() // `limit(0)` would mean no limit to the server; an empty page holds nothing.
            } else {
                let find = views.find(filter.clone()).sort(doc! { "created_at": -1, "post_id": -1 }).skip(skip).limit(i64::from(per_page));
                self.db.scan(op, find).await?
            };
            let items = docs.into_iter().map(view_from_doc).collect::<DbResult<Vec<_>>>().map_err(|e| failed(op, e))?;
            let total = views.count_documents(filter).max_time(self.db.timeout()).await.map_err(|e| failed(op, e))?;
            Ok(PostPage { items, page, per_page, total })
        })
        .await
    }

    async fn get_post_view(&self, id: Uuid) -> Result<Option<PostView>, StoreError> {
        self.db.within("get_post_view", async {
            let op = "get_post_view";
            let found = self
                .db
                .post_views()
                .find_one(doc! { "_id": id_text(id), "deleted": { "$ne": true } })
                .await
                .map_err(|e| failed(op, e))?;
            found.map(view_from_doc).transpose().map_err(|e| failed(op, e))
        })
        .await
    }

    async fn tag_cloud(&self, limit: Option<u32>) -> Result<Vec<TagCount>, StoreError> {
        self.db.within("tag_cloud", async {
            let op = "tag_cloud";
            if limit == Some(0) {
                return Ok(Vec::new()); // `limit(0)` would mean no limit to the server.
            }
            // A plain find on the maintained counts, sorted by the server: no aggregate,
            // so none of the stand-in's pipeline gaps apply.
            let cloud = self.db.main(TAG_CLOUD);
            let find = cloud.find(doc! { "posts_count": { "$gt": 0 } }).sort(doc! { "posts_count": -1, "_id": 1 });
            let docs = self.db.scan(op, find.limit(limit.map_or(0, i64::from))).await?;
            docs.into_iter()
                .map(|d| decode::<StoredCount>(d).map(|c| TagCount { tag: c.tag, posts_count: c.posts_count }))
                .collect::<DbResult<_>>()
                .map_err(|e| failed(op, e))
        })
        .await
    }
}
