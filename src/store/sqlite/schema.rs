//! The tables of both files, created idempotently at open.
//!
//! Times are unix milliseconds (INTEGER): they sort and compare as numbers and
//! round-trip exactly to `DateTime<Utc>` at the millisecond precision posts are
//! stamped with. Ids are hyphenated lower-case UUID text. Tags are JSON arrays.

/// One file's tables, and how a file made by an earlier version is brought to them.
pub(super) struct Schema {
    /// Created idempotently at every open.
    pub tables: &'static str,
    pub upgrades: &'static [Upgrade],
}

/// SQL run at open, after `tables` and in the same transaction, while the
/// table `while_there` (which it drops) is still in the file.
pub(super) struct Upgrade {
    pub while_there: &'static str,
    pub sql: &'static str,
}

/// `blog.sqlite`: the write model and everything the workers keep beside it.
pub(super) const MAIN: Schema = Schema { tables: MAIN_TABLES, upgrades: &[] };

const MAIN_TABLES: &str = r#"
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
    traceparent    TEXT,
    tracestate     TEXT,
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
pub(super) const QUERIES: Schema = Schema { tables: QUERIES_TABLES, upgrades: &[QUERIES_FROM_POST_VIEW_TAGS] };

const QUERIES_TABLES: &str = r#"
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

-- A tag's live views, newest first, for GET /posts?tag=, and the tag's count
-- of them (the page's total) in a row of its own: post_id '', n set and
-- created_at 9223372036854775807 (read_model::COUNT_ROW, above every real time),
-- so it sorts just before the tag's newest view. Adding a view to a tag then
-- changes the count on the page the view's row went to; the counts in a table
-- of their own were another random page written per tag and event. The count
-- of all live views is the row of the tag '' (no real tag is empty). A
-- tombstone has no rows here.
CREATE TABLE IF NOT EXISTS tagged_views (
    tag        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    post_id    TEXT NOT NULL,
    n          INTEGER,
    PRIMARY KEY (tag, created_at DESC, post_id DESC)
) WITHOUT ROWID;
INSERT INTO tagged_views (tag, created_at, post_id, n)
    SELECT '', 9223372036854775807, '', (SELECT COUNT(*) FROM post_views WHERE deleted = 0)
    WHERE NOT EXISTS (SELECT 1 FROM tagged_views WHERE tag = '' AND created_at = 9223372036854775807 AND post_id = '');

-- The feed writer's entries (see feeds.rs): a deleted post stays as a tombstone
-- (deleted = 1) with its deletion's version; a live entry has a row per tag in
-- feed_entry_tags, newest first, for the tag feeds.
CREATE TABLE IF NOT EXISTS feed_entries (
    id        TEXT PRIMARY KEY,
    version   INTEGER NOT NULL,
    deleted   INTEGER NOT NULL DEFAULT 0,
    title     TEXT NOT NULL DEFAULT '',
    summary   TEXT NOT NULL DEFAULT '',
    tags      TEXT NOT NULL DEFAULT '[]',
    published INTEGER NOT NULL DEFAULT 0,
    updated   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS feed_entries_newest ON feed_entries(deleted, published DESC, id DESC);
CREATE TABLE IF NOT EXISTS feed_entry_tags (
    tag       TEXT NOT NULL,
    published INTEGER NOT NULL,
    id        TEXT NOT NULL,
    PRIMARY KEY (tag, published DESC, id DESC)
) WITHOUT ROWID;
"#;

/// Files made before `tagged_views` (until 2026-12) kept a view's tags in
/// `post_view_tags` (by post, with an index by tag) and the counts in
/// `post_view_counts`: the rows move, the counts are taken from them.
const QUERIES_FROM_POST_VIEW_TAGS: Upgrade = Upgrade {
    while_there: "post_view_tags",
    sql: r#"
INSERT OR IGNORE INTO tagged_views (tag, created_at, post_id)
    SELECT tag, created_at, post_id FROM post_view_tags WHERE tag <> '';
INSERT OR REPLACE INTO tagged_views (tag, created_at, post_id, n)
    SELECT tag, 9223372036854775807, '', COUNT(*) FROM post_view_tags WHERE tag <> '' GROUP BY tag;
DROP TABLE post_view_tags;
DROP TABLE IF EXISTS post_view_counts;
"#,
};
