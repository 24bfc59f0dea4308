//! One SQLite file: a single writer connection and a few read-only ones.
//!
//! rusqlite blocks, so every call runs on tokio's blocking pool. SQLite allows
//! one writer at a time anyway, so writes share one connection behind a mutex;
//! in WAL mode readers never wait for the writer, so reads get their own small
//! pool and do not queue behind writes.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use blog_actors::ports::StoreError;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

/// Read-only connections per file; a handful covers a small service's concurrent reads.
const READERS: usize = 4;
/// How long a statement waits for a lock held by another connection (or process).
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// What went wrong inside a store call, before it is named by its operation.
#[derive(Debug, thiserror::Error)]
pub(super) enum DbError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error("bad JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored value that cannot be what it claims (a corrupt or foreign row).
    #[error("bad stored data: {0}")]
    Data(String),
}

pub(super) type DbResult<T> = Result<T, DbError>;

/// A handle on one database file; cheap to clone.
#[derive(Clone)]
pub(super) struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    /// Names the file in errors, so a log line says which database failed.
    label: &'static str,
    /// The only connection that writes; the mutex serialises transactions.
    writer: Mutex<Connection>,
    /// Read-only connections; WAL gives each a consistent snapshot.
    readers: Vec<Mutex<Connection>>,
    /// Spreads reads over the pool.
    next_reader: AtomicUsize,
}

impl Db {
    /// Opens (creating if needed) the file, applies `schema`, and opens the readers.
    /// Blocking: call it from a blocking thread.
    pub(super) fn open(path: &Path, label: &'static str, schema: &str) -> DbResult<Self> {
        let mut writer = Connection::open(path)?;
        writer.busy_timeout(BUSY_TIMEOUT)?;
        // WAL lets the readers run beside the writer; the mode is stored in the file.
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(DbError::Data(format!("{label}: journal_mode is {mode}, WAL expected")));
        }
        // NORMAL in WAL mode is crash-safe; only the last commits may be lost on power loss.
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        writer.pragma_update(None, "foreign_keys", "ON")?;
        // Immediate, so two processes opening the same file cannot race the DDL.
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(schema)?;
        tx.commit()?;

        // Readers open after the writer created the file, its schema and its WAL index.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let readers = (0..READERS)
            .map(|_| {
                let conn = Connection::open_with_flags(path, flags)?;
                conn.busy_timeout(BUSY_TIMEOUT)?;
                Ok(Mutex::new(conn))
            })
            .collect::<DbResult<Vec<_>>>()?;
        Ok(Self {
            inner: Arc::new(Inner { label, writer: Mutex::new(writer), readers, next_reader: AtomicUsize::new(0) }),
        })
    }

    /// Runs `f` in one immediate write transaction, committed when `f` returns Ok.
    /// On Err (or a panic) the transaction rolls back when dropped.
    pub(super) async fn write<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Transaction<'_>) -> DbResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        self.blocking(op, move || {
            let mut conn = recover(inner.writer.lock());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` on a read-only connection. Several statements that must agree
    /// should open a transaction on it (`unchecked_transaction`) for one snapshot.
    pub(super) async fn read<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        self.blocking(op, move || f(&inner.reader())).await
    }

    async fn blocking<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce() -> DbResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let label = self.inner.label;
        match tokio::task::spawn_blocking(f).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(StoreError(format!("{label} {op}: {e}"))),
            Err(e) => Err(StoreError(format!("{label} {op}: the blocking task failed: {e}"))),
        }
    }
}

impl Inner {
    /// A free reader if there is one, else waits for the next in turn.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            match self.readers[(start + i) % n].try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => continue,
            }
        }
        recover(self.readers[start].lock())
    }
}

/// A panic inside a call poisons the mutex, but the connection is still sound:
/// the transaction it held rolled back when it was dropped during unwinding.
fn recover<'a>(
    r: Result<MutexGuard<'a, Connection>, std::sync::PoisonError<MutexGuard<'a, Connection>>>,
) -> MutexGuard<'a, Connection> {
    r.unwrap_or_else(|poisoned| poisoned.into_inner())
}
