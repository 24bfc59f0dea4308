//! Helpers shared by this module's tests.

use blog_actors::event::{Envelope, Event};
use tempfile::TempDir;

use super::SqliteStore;
use crate::domain::post::ValidPost;
use crate::store::Outbox;

/// A fresh store in its own temporary dir (kept alive by the returned guard).
pub(super) async fn store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    (dir, store)
}

pub(super) fn tags(tags: &[&str]) -> Vec<String> {
    tags.iter().map(|t| t.to_string()).collect()
}

pub(super) fn post(title: &str, tag_list: &[&str]) -> ValidPost {
    ValidPost { title: title.into(), description: format!("About {title}."), tags: tags(tag_list) }
}

/// Every event in the outbox, oldest first, decoded and validated.
pub(super) async fn outbox_events(store: &SqliteStore) -> Vec<(Envelope, Event)> {
    let entries = store.pending(100_000).await.unwrap();
    entries
        .iter()
        .map(|entry| {
            let envelope = Envelope::decode(&entry.body).unwrap();
            assert_eq!(envelope.id, entry.message_id);
            assert_eq!(envelope.event_type, entry.routing_key);
            assert_eq!(envelope.correlation_id, entry.correlation_id);
            let event = envelope.event().unwrap();
            (envelope, event)
        })
        .collect()
}

/// A view of post `id` at `version`, created `minute` minutes into 2024.
pub(super) fn view(id: uuid::Uuid, version: i64, minute: i64, tag_list: &[&str]) -> blog_actors::ports::PostView {
    let created_at = chrono::DateTime::from_timestamp_millis(1_704_067_200_000 + minute * 60_000 + 123).unwrap();
    blog_actors::ports::PostView {
        id,
        slug: format!("post-{minute}"),
        title: format!("Post {minute}"),
        description: "Some words here.".into(),
        excerpt: "Some words".into(),
        tags: tags(tag_list),
        word_count: 3,
        reading_time_minutes: 1,
        version,
        created_at,
        updated_at: created_at + chrono::Duration::seconds(version),
    }
}
