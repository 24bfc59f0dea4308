//! The collections' names, in the write database and in the queries database.

// The write database.
pub(super) const POSTS: &str = "posts";
pub(super) const OUTBOX: &str = "outbox";
pub(super) const TAG_CLOUD: &str = "tag_cloud";
pub(super) const TAG_CLOUD_APPLIED: &str = "tag_cloud_applied";
pub(super) const POST_TOMBSTONES: &str = "post_tombstones";
pub(super) const EMAIL_LOG: &str = "email_log";
pub(super) const LEASES: &str = "leases";
pub(super) const COUNTERS: &str = "counters";
// The queries database.
pub(super) const POST_VIEWS: &str = "post_views";
pub(super) const FEED_ENTRIES: &str = "feed_entries";
