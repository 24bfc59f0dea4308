//! What a post write decides, whichever store keeps it: the version, the stamps
//! (never going back when the clock steps back), the `If-Match` check, and the
//! event that enters the outbox in the same commit. The adapters only store
//! what these functions return, so the two stores cannot drift apart.

use blog_actors::event::{Envelope, PostDeleted, PostSnapshot, PostUpdated, POST_CREATED, POST_DELETED, POST_UPDATED};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::post::ValidPost;

/// A post as it is to be stored, with the event that announces it.
#[derive(Debug, Clone)]
pub struct PostChange {
    pub post: PostSnapshot,
    pub event: Envelope,
}

/// What an update decides once the stored post is known.
#[derive(Debug, Clone)]
pub enum Update {
    /// `If-Match` named another version; nothing is written.
    Conflict { current: i64 },
    Apply(Box<PostChange>),
}

/// A deletion: the tombstone's version and the event.
#[derive(Debug, Clone)]
pub struct Deletion {
    /// One past the last stored version, so every earlier event is older than the deletion.
    pub version: i64,
    pub event: Envelope,
}

/// A new post at version 1, stamped `now` (in the store's precision).
pub fn create(post: ValidPost, now: DateTime<Utc>, correlation_id: Option<String>) -> serde_json::Result<PostChange> {
    let post = PostSnapshot {
        // Time-ordered (v7): new keys land at the end of the id indexes instead of on random pages.
        id: Uuid::now_v7(),
        title: post.title,
        description: post.description,
        tags: post.tags,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let event = Envelope::new(POST_CREATED, serde_json::to_value(&post)?, correlation_id);
    Ok(PostChange { post, event })
}

/// `before` replaced by `post`, unless `expected_version` names another version.
pub fn update(
    before: PostSnapshot,
    post: ValidPost,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
    correlation_id: Option<String>,
) -> serde_json::Result<Update> {
    if expected_version.is_some_and(|v| v != before.version) {
        return Ok(Update::Conflict { current: before.version });
    }
    let after = PostSnapshot {
        id: before.id,
        title: post.title,
        description: post.description,
        tags: post.tags,
        created_at: before.created_at,
        // Never earlier than the last stamp, even if the clock stepped back.
        updated_at: now.max(before.updated_at),
        version: before.version + 1,
    };
    let data = serde_json::to_value(PostUpdated { post: after.clone(), previous_tags: before.tags })?;
    Ok(Update::Apply(Box::new(PostChange { post: after, event: Envelope::new(POST_UPDATED, data, correlation_id) })))
}

/// The deletion of `last`, the post as last stored.
pub fn delete(last: &PostSnapshot, correlation_id: Option<String>) -> serde_json::Result<Deletion> {
    let version = last.version + 1;
    let data = serde_json::to_value(PostDeleted { id: last.id, version, tags: last.tags.clone() })?;
    Ok(Deletion { version, event: Envelope::new(POST_DELETED, data, correlation_id) })
}

#[cfg(test)]
mod tests {
    use blog_actors::event::Event;
    use chrono::Duration;

    use super::*;

    fn valid(title: &str, tags: &[&str]) -> ValidPost {
        ValidPost { title: title.into(), description: "Body.".into(), tags: tags.iter().map(|t| t.to_string()).collect() }
    }

    fn stamp(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_704_067_200_000 + minute * 60_000).unwrap()
    }

    #[test]
    fn an_update_never_goes_back_in_time_when_the_clock_steps_back() {
        let created = create(valid("One", &["a"]), stamp(10), None).unwrap().post;
        let Update::Apply(change) = update(created.clone(), valid("Two", &["b"]), None, stamp(5), None).unwrap() else {
            panic!("refused")
        };
        assert_eq!((change.post.updated_at, change.post.created_at, change.post.version), (stamp(10), stamp(10), 2));
        let Update::Apply(later) = update(change.post, valid("Three", &[]), Some(2), stamp(11), None).unwrap() else {
            panic!("refused")
        };
        assert_eq!(later.post.updated_at, stamp(10) + Duration::minutes(1));
    }

    #[test]
    fn an_update_naming_another_version_conflicts() {
        let created = create(valid("One", &[]), stamp(0), None).unwrap().post;
        let answer = update(created, valid("Two", &[]), Some(7), stamp(1), None).unwrap();
        assert!(matches!(answer, Update::Conflict { current: 1 }), "{answer:?}");
    }

    #[test]
    fn each_write_announces_itself_with_the_tags_a_worker_needs() {
        let change = create(valid("One", &["a", "b"]), stamp(0), Some("req".into())).unwrap();
        assert_eq!(change.event.correlation_id.as_deref(), Some("req"));
        assert_eq!(change.event.event().unwrap(), Event::PostCreated(change.post.clone()));
        let Update::Apply(updated) = update(change.post, valid("One", &["c"]), None, stamp(1), None).unwrap() else {
            panic!("refused")
        };
        let Event::PostUpdated(event) = updated.event.event().unwrap() else { panic!("not an update") };
        assert_eq!(event.previous_tags, vec!["a", "b"]);
        let deletion = delete(&updated.post, None).unwrap();
        assert_eq!(deletion.version, 3);
        assert_eq!(
            deletion.event.event().unwrap(),
            Event::PostDeleted(PostDeleted { id: updated.post.id, version: 3, tags: vec!["c".into()] })
        );
    }
}
