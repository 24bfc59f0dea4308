//! The tables of both files, created idempotently at open.
//!
//! Times are unix milliseconds (INTEGER): they sort and compare as numbers and
//! round-trip exactly to `DateTime<Utc>` at the millisecond precision posts are
//! stamped with. Ids are hyphenated lower-case UUID text. Tags are JSON arrays.

/// `blog.sqlite`: the write model and everything the workers keep beside it.
pub(super) const MAIN: &str = r#"
CREATE TABLE IF NOT EXISTS posts (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    tags        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL
);

-- One row per (post, tag): what the tag cloud rebuild aggregates.
CREATE TABLE IF NOT EXISTS post_tags (
    post_id TEXT NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    tag     TEXT NOT NULL,
    PRIMARY KEY (post_id, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS post_tags_by_tag ON post_tags(tag);

-- Deleted posts and the version their deletion had: a rebuild records them in
-- tag_cloud_applied so that a late event for them cannot count their tags again.
CREATE TABLE IF NOT EXISTS post_tombstones (
    id         TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    deleted_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS outbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id     TEXT NOT NULL,
    routing_key    TEXT NOT NULL,
    body           BLOB NOT NULL,
    correlation_id TEXT,
    created_at     INTEGER NOT NULL,
    sent_at        INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox(seq) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox(sent_at) WHERE sent_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS tag_cloud (
    tag         TEXT PRIMARY KEY,
    posts_count INTEGER NOT NULL
) WITHOUT ROWID;
-- No index by count: every counted tag moved its entry in it (two more pages
-- written per tag and event), while the cloud is read sorted only when its
-- cached JSON is stale, and sorting 10k rows then is ~ms (see cloud_cache.rs).
DROP INDEX IF EXISTS tag_cloud_by_count;

-- What the cloud has counted for each post, so a redelivered or stale event is a no-op.
CREATE TABLE IF NOT EXISTS tag_cloud_applied (
    post_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    tags    TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS email_log (
    order_id   TEXT PRIMARY KEY,
    status     TEXT NOT NULL CHECK (status IN ('claimed', 'sent')),
    recipient  TEXT,
    message_id TEXT,
    claimed_by TEXT NOT NULL DEFAULT '',
    claimed_at INTEGER NOT NULL,
    sent_at    INTEGER
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS leases (
    name   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// `blog_queries.sqlite`: the read model the read endpoints serve.
pub(super) const QUERIES: &str = r#"
CREATE TABLE IF NOT EXISTS post_views (
    id                   TEXT PRIMARY KEY,
    slug                 TEXT NOT NULL DEFAULT '',
    title                TEXT NOT NULL DEFAULT '',
    description          TEXT NOT NULL DEFAULT '',
    excerpt              TEXT NOT NULL DEFAULT '',
    tags                 TEXT NOT NULL DEFAULT '[]',
    word_count           INTEGER NOT NULL DEFAULT 0,
    reading_time_minutes INTEGER NOT NULL DEFAULT 0,
    version              INTEGER NOT NULL,
    created_at           INTEGER NOT NULL DEFAULT 0,
    updated_at           INTEGER NOT NULL DEFAULT 0,
    deleted              INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS post_views_newest ON post_views(deleted, created_at DESC, id DESC);

-- created_at is copied here so a tag's page is read in order straight off the index.
CREATE TABLE IF NOT EXISTS post_view_tags (
    post_id    TEXT NOT NULL REFERENCES post_views(id) ON DELETE CASCADE,
    tag        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (post_id, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS post_view_tags_by_tag ON post_view_tags(tag, created_at DESC, post_id DESC);

-- Live views per tag, and in all under the tag '' (no real tag is empty): the
-- totals of GET /posts, kept in the same transaction as the views, so a page and
-- its total agree without counting a popular tag's hundreds of thousands of rows.
CREATE TABLE IF NOT EXISTS post_view_counts (
    tag TEXT PRIMARY KEY,
    n   INTEGER NOT NULL
) WITHOUT ROWID;
-- A store made before the counts existed gets them once; the '' row, written
-- last, marks them done.
INSERT INTO post_view_counts (tag, n)
    SELECT tag, COUNT(*) FROM post_view_tags
    WHERE NOT EXISTS (SELECT 1 FROM post_view_counts WHERE tag = '') GROUP BY tag;
INSERT INTO post_view_counts (tag, n)
    SELECT '', (SELECT COUNT(*) FROM post_views WHERE deleted = 0)
    WHERE NOT EXISTS (SELECT 1 FROM post_view_counts WHERE tag = '');
"#;
