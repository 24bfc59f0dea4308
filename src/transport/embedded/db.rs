//! The queue's SQLite file: opening it durably, its schema, and running
//! statements off the async threads.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use blog_actors::delivery::TransportError;

use crate::sqlite_failure::SqliteFailure;
use rusqlite::{Connection, Transaction, TransactionBehavior};

/// Another process (the `publish` CLI) may be writing the same file; wait for it
/// instead of failing at once.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The message as it travels, the same in both tables: a parked row is a
/// delivery's message plus why it was parked.
macro_rules! message_columns {
    () => {
        "
    worker         TEXT    NOT NULL,
    routing_key    TEXT    NOT NULL,
    message_id     TEXT,
    correlation_id TEXT,
    traceparent    TEXT,
    tracestate     TEXT,
    body           BLOB    NOT NULL,
"
    };
}

/// `AUTOINCREMENT` so a delivery id is never reused: a settler can only ever
/// touch the row it was handed.
const SCHEMA: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS deliveries (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,",
    message_columns!(),
    "    attempt        INTEGER NOT NULL DEFAULT 1,
    available_at   INTEGER NOT NULL,
    leased         INTEGER NOT NULL DEFAULT 0,
    redelivered    INTEGER NOT NULL DEFAULT 0,
    enqueued_at    INTEGER NOT NULL,
    last_error     TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (worker, leased, available_at, id);
CREATE TABLE IF NOT EXISTS parked (
    id             TEXT    PRIMARY KEY,",
    message_columns!(),
    "    reason         TEXT    NOT NULL,
    attempts       INTEGER NOT NULL,
    parked_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS parked_age ON parked (parked_at);
"
);

/// The one connection to the queue file. SQLite allows a single writer anyway,
/// and every statement here is short, so one connection behind a lock suffices.
#[derive(Clone)]
pub(super) struct Db(Arc<Mutex<Connection>>);

impl Db {
    /// Opens (creating it and its folder when missing) the queue file.
    pub(super) fn open(path: &Path) -> Result<Self, TransportError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::durable_dir::create_durable_dir(dir)
                .map_err(|e| TransportError::unavailable(format!("embedded queue: cannot create {}", dir.display()), e))?;
        }
        let conn = Connection::open(path).map_err(db_err)?;
        configure(&conn).map_err(db_err)?;
        Ok(Self(Arc::new(Mutex::new(conn))))
    }

    /// Runs `f` on the blocking pool: SQLite calls block, and a commit waits for an fsync.
    pub(super) async fn call<T, F>(&self, f: F) -> Result<T, TransportError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.blocking(f))
            .await
            .map_err(|e| TransportError::defect("embedded queue: the blocking task failed", e))?
    }

    /// Runs `f` on this thread; only for callers already off the async threads.
    pub(super) fn blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, TransportError> {
        // A panic under the lock leaves no half-done transaction (dropping a
        // Transaction rolls it back), so a poisoned lock is safe to go on with.
        let mut conn = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn).map_err(db_err)
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL lets the publishing CLI write while the service reads. synchronous=FULL
    // fsyncs every commit: a publish that returned Ok survives SIGKILL and power
    // loss, which the outbox relay relies on when it marks entries sent.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "the embedded queue could not switch to WAL");
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    super::upgrade::add_trace_columns(conn)
}

/// A write transaction that takes the write lock at once, so it waits (busy
/// timeout) rather than failing when upgrading from a read midway.
pub(super) fn immediate(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// A SQLite error of the queue's file as the transport failure of its kind.
pub(super) fn db_err(e: rusqlite::Error) -> TransportError {
    const CONTEXT: &str = "embedded queue";
    match SqliteFailure::of(&e) {
        SqliteFailure::Unavailable | SqliteFailure::Conflict => TransportError::unavailable(CONTEXT, e),
        SqliteFailure::Corrupt => TransportError::corrupt(CONTEXT, e),
        SqliteFailure::Defect => TransportError::defect(CONTEXT, e),
    }
}

/// Wall-clock unix milliseconds: due times must mean the same across restarts and processes.
pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `now + delay` in unix milliseconds, saturating instead of overflowing.
pub(super) fn after(now: i64, delay: Duration) -> i64 {
    now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
}
