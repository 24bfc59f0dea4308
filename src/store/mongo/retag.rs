//! Brings the tags of a store made before tags were NFKC-normalised and
//! case-folded (until 2026-12) to their canonical form, once, at connect: the
//! posts' tags and the live views' tags re-normalised and de-duplicated, then
//! the tag cloud rebuilt from the posts so merged tags' counts add up. The
//! marker is written last, so an upgrade cut short runs again (each step is idempotent).

use blog_actors::ports::{StoreError, TagCloudStore};
use blog_actors::rules::tag;
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;

use super::db::failed;
use super::schema::{COUNTERS, POSTS};
use super::MongoStore;

/// The marker lives beside the outbox's sequence counter in `counters`.
const TAG_FORM_KEY: &str = "tag_form";
const TAG_FORM: &str = "nfkc-casefold-1";

/// Runs the upgrade unless the marker says it ran.
pub(super) async fn upgrade(store: &MongoStore) -> Result<(), StoreError> {
    let op = "retag";
    let meta = store.db.main(COUNTERS);
    if meta.find_one(doc! { "_id": TAG_FORM_KEY, "value": TAG_FORM }).await.map_err(|e| failed(op, e))?.is_some() {
        return Ok(());
    }
    let posts_changed = retag(&store.db.main(POSTS), doc! {}).await?;
    retag(&store.db.post_views(), doc! { "deleted": false }).await?;
    if posts_changed > 0 {
        store.rebuild_tag_cloud().await?;
    }
    meta.replace_one(doc! { "_id": TAG_FORM_KEY }, doc! { "_id": TAG_FORM_KEY, "value": TAG_FORM })
        .upsert(true)
        .await
        .map_err(|e| failed(op, e))?;
    Ok(())
}

/// Rewrites the tags of the documents `filter` selects that are not canonical; answers how many.
async fn retag(collection: &Collection<Document>, filter: Document) -> Result<u64, StoreError> {
    let op = "retag";
    let mut cursor = collection.find(filter).projection(doc! { "tags": 1 }).await.map_err(|e| failed(op, e))?;
    let mut changed = 0;
    while let Some(document) = cursor.try_next().await.map_err(|e| failed(op, e))? {
        let before: Vec<String> = document
            .get_array("tags")
            .map(|tags| tags.iter().filter_map(Bson::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        let after = tag::canonical_list(&before);
        if after != before {
            let id = document.get("_id").cloned().unwrap_or(Bson::Null);
            collection
                .update_one(doc! { "_id": id }, doc! { "$set": { "tags": after } })
                .await
                .map_err(|e| failed(op, e))?;
            changed += 1;
        }
    }
    Ok(changed)
}
