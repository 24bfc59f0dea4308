//! One SQLite file: a single writer connection and a few read-only ones.
//!
//! rusqlite blocks, so nothing here runs on the async threads. SQLite allows
//! one writer at a time anyway, so the writer connection lives on its own
//! thread, which commits in groups: the writes waiting when it is free run in
//! one transaction, each inside its own savepoint (a failing write rolls back
//! alone), and every caller hears its answer only after that one commit. Each
//! commit writes a write's pages to the WAL once instead of once per write, and
//! the hot pages (the tag cloud's counts, index roots) are shared; durability
//! and isolation per write are as before. In WAL mode readers never wait for
//! the writer, so reads get their own small pool on the blocking threads. A
//! third thread copies the WAL into the file (checkpoints), off the writer's path.
//!
//! Durability is pipelined: the writer commits a group without waiting for the
//! disk and goes on with the next one, while syncer threads fsync the WAL and
//! only then answer the group's callers. The WAL is
//! append-only, so one fsync makes every commit before it durable: nobody
//! hears of a write (a 201, an ack, a relayed event) before it would survive a
//! power cut, and the next group no longer waits for the last one's fsync. A
//! reader may see a commit a moment before it is durable; what leaves the
//! store on the strength of a read (the relay's events, a rebuild into the
//! other file) first waits for [`Db::durable`].

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use blog_actors::ports::{Reason, StoreError};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::watch;

use super::schema::Schema;
use crate::sqlite_failure::SqliteFailure;
use crate::groups::next_group;

/// Read-only connections per file; a handful covers a small service's concurrent reads.
const READERS: usize = 4;
/// How long a statement waits for a lock held by another connection (or process).
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);
/// Most writes committed together; bounds how long the first one waits for its answer.
const GROUP_MAX: usize = 256;
/// Prepared statements kept by the writer connection.
const STATEMENT_CACHE: usize = 64;
/// Threads that fsync the WAL; with two, a commit need not wait for the fsync under way.
const SYNCERS: usize = 2;
/// How often the checkpoint thread looks for new commits to copy into the file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// Bytes of WAL past which it is started again from its beginning (see [`WalBound::keep`]).
const WAL_LIMIT: u64 = 64 << 20;

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
    /// The machine refused a resource (a thread) the store needs.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Our own code panicked inside a write.
    #[error("the write panicked")]
    Panicked,
}

impl DbError {
    /// The kind of store failure this is, named by `context`.
    pub(super) fn named(self, context: String) -> StoreError {
        match self {
            DbError::Sql(e) => store_error(context, e),
            DbError::Json(e) => StoreError::corrupt(context, e),
            e @ DbError::Data(_) => StoreError::corrupt(context, e),
            DbError::Io(e) => StoreError::unavailable(context, e),
            e @ DbError::Panicked => StoreError::defect(context, e),
        }
    }
}

/// A SQLite error as the [`StoreError`] of its kind.
fn store_error(context: String, e: impl std::borrow::Borrow<rusqlite::Error> + std::error::Error + Send + Sync + 'static) -> StoreError {
    match SqliteFailure::of(e.borrow()) {
        SqliteFailure::Unavailable => StoreError::unavailable(context, e),
        SqliteFailure::Corrupt => StoreError::corrupt(context, e),
        SqliteFailure::Conflict => StoreError::conflict(context, e),
        SqliteFailure::Defect => StoreError::defect(context, e),
    }
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
    /// Hands writes to the writer thread, which owns the only connection that
    /// writes; the thread ends when the last handle (and so this sender) is dropped.
    writes: Mutex<mpsc::Sender<Job>>,
    /// Read-only connections; WAL gives each a consistent snapshot.
    readers: Vec<Mutex<Connection>>,
    /// Spreads reads over the pool.
    next_reader: AtomicUsize,
    /// Groups the writer has begun to commit: every commit a reader can see is counted.
    groups: Arc<AtomicU64>,
    /// Groups the syncer has made durable (its last fsync covered them).
    synced: watch::Receiver<u64>,
}

impl Db {
    /// Opens (creating if needed) the file, applies `schema` (its tables, then
    /// the upgrades an older file needs), and opens the readers.
    /// Blocking: call it from a blocking thread.
    pub(super) fn open(path: &Path, label: &'static str, schema: &Schema) -> DbResult<Self> {
        Self::open_with_wal_limit(path, label, schema, WAL_LIMIT)
    }

    /// [`Db::open`] with the WAL kept near `wal_limit` bytes instead of [`WAL_LIMIT`].
    fn open_with_wal_limit(path: &Path, label: &'static str, schema: &Schema, wal_limit: u64) -> DbResult<Self> {
        let mut writer = Connection::open(path)?;
        writer.busy_timeout(BUSY_TIMEOUT)?;
        // WAL lets the readers run beside the writer; the mode is stored in the file.
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(DbError::Data(format!("{label}: journal_mode is {mode}, WAL expected")));
        }
        // Durability before any answer comes from the syncer's fsync of the WAL
        // (see the module doc), so SQLite itself need not sync each commit:
        // NORMAL keeps the WAL consistent (the checkpoints sync it first) and a
        // group's commit does not wait for the disk. FULL made every group wait
        // for the last one's fsync (BENCHMARKS.md, "Cost of durability").
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        writer.pragma_update(None, "foreign_keys", "ON")?;
        // Each write of a group runs in a savepoint, whose undo pages go to a
        // statement journal: a temp file by default, opened and written per
        // group (14% of the read-model writer's time in the profile). In memory
        // it is a copy; it only lives until the group commits.
        writer.pragma_update(None, "temp_store", "MEMORY")?;
        // Every statement the writes use stays parsed (rusqlite keeps 16 by default; they use more).
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // The checkpointer thread copies the WAL into the file, not the writer (see `checkpoint_now_and_then`).
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        // When the WAL starts again from its beginning, its first commit cuts the file back to this.
        writer.pragma_update(None, "journal_size_limit", i64::try_from(wal_limit).unwrap_or(i64::MAX))?;
        // Immediate, so two processes opening the same file cannot race the DDL.
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(schema.tables)?;
        for upgrade in schema.upgrades {
            let exists = "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)";
            if tx.query_row(exists, [upgrade.while_there], |r| r.get::<_, bool>(0))? {
                tracing::info!(file = label, table = upgrade.while_there, "upgrading a file made by an earlier version");
                tx.execute_batch(upgrade.sql)?;
            }
        }
        tx.commit()?;
        // The WAL exists now and stays while the connections are open (no
        // checkpoint truncates it): the syncer fsyncs it, and its name in the
        // directory must survive a power cut too.
        let wal = std::fs::File::open(wal_path(path))?;
        wal.sync_all()?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }

        // Readers open after the writer created the file, its schema and its WAL index.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let readers = (0..READERS)
            .map(|_| {
                let conn = Connection::open_with_flags(path, flags)?;
                conn.busy_timeout(BUSY_TIMEOUT)?;
                Ok(Mutex::new(conn))
            })
            .collect::<DbResult<Vec<_>>>()?;
        let mut checkpointer = Connection::open(path)?;
        checkpointer.busy_timeout(BUSY_TIMEOUT)?;
        checkpointer.pragma_update(None, "synchronous", "NORMAL")?;
        let (writes, jobs) = mpsc::channel();
        let (writer_alive, writer_gone) = mpsc::channel::<()>();
        let (to_sync, committed) = mpsc::channel::<Committed>();
        let (synced_tx, synced) = watch::channel(0u64);
        let groups = Arc::new(AtomicU64::new(0));
        let counted = groups.clone();
        let (wal, committed, synced_tx) = (Arc::new(wal), Arc::new(Mutex::new(committed)), Arc::new(synced_tx));
        let checkpointing = Arc::new(Mutex::new(()));
        let mut bound = WalBound {
            wal: wal.clone(),
            limit: wal_limit,
            label,
            not_before: std::time::Instant::now(),
            checkpointing: checkpointing.clone(),
        };
        std::thread::Builder::new()
            .name(format!("{label} writer"))
            .spawn(move || commit_in_groups(writer, jobs, &counted, &to_sync, &mut bound, writer_alive))
            ?;
        for n in 0..SYNCERS {
            let (wal, committed, synced_tx) = (wal.clone(), committed.clone(), synced_tx.clone());
            std::thread::Builder::new()
                .name(format!("{label} syncer {n}"))
                .spawn(move || sync_in_turn(&wal, label, &committed, &synced_tx))?;
        }
        let commits = groups.clone();
        std::thread::Builder::new()
            .name(format!("{label} checkpoint"))
            .spawn(move || checkpoint_now_and_then(&mut checkpointer, label, &commits, &checkpointing, &writer_gone))
            ?;
        Ok(Self {
            inner: Arc::new(Inner {
                label,
                writes: Mutex::new(writes),
                readers,
                next_reader: AtomicUsize::new(0),
                groups,
                synced,
            }),
        })
    }

    /// Runs `f` in a write transaction, committed when `f` returns Ok; answers
    /// once the commit is done. On Err (or a panic) `f`'s changes roll back
    /// alone; writes committed in the same group are not affected. `f` may run
    /// twice (see [`commit_in_groups`]): only the database may see its effects.
    pub(super) async fn write<T, F>(&self, op: &'static str, mut f: F) -> Result<T, StoreError>
    where
        F: FnMut(&Transaction<'_>) -> DbResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let label = self.inner.label;
        let (answer, answered) = tokio::sync::oneshot::channel();
        // Filled by the run, read by the reply once the commit is known.
        let slot: Arc<Mutex<Option<DbResult<T>>>> = Arc::new(Mutex::new(None));
        let filled = slot.clone();
        let run = Box::new(move |tx: &Transaction<'_>| {
            let out = std::panic::catch_unwind(AssertUnwindSafe(|| f(tx)))
                .unwrap_or_else(|_| Err(DbError::Panicked));
            let ok = out.is_ok();
            *filled.lock().unwrap_or_else(|p| p.into_inner()) = Some(out);
            ok
        });
        let reply = Box::new(move |committed: Result<(), CommitFailure>| {
            let out = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            let out = match (out, committed) {
                (Some(Ok(out)), Ok(())) => Ok(out),
                (Some(Err(e)), _) => Err(e.named(format!("{label} {op}"))),
                (_, Err(CommitFailure::Sql(e))) => Err(store_error(format!("{label} {op}: not committed"), e)),
                (_, Err(CommitFailure::Sync(e))) => Err(StoreError::unavailable(format!("{label} {op}: not made durable"), e)),
                (None, Ok(())) => Err(StoreError::defect(format!("{label} {op}"), Reason("the write did not run"))),
            };
            let _ = answer.send(out);
        });
        let job = Job { run, reply };
        let sent = self.inner.writes.lock().unwrap_or_else(|p| p.into_inner()).send(job);
        let gone = || StoreError::unavailable(format!("{label} {op}"), Reason("the writer thread is gone"));
        if sent.is_err() {
            return Err(gone());
        }
        answered.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Waits until every commit so far is durable (fsynced): what a read saw
    /// before this call may then leave the store (be published, or written into
    /// another file). Answers at once when the syncer is up to date.
    pub(super) async fn durable(&self) -> Result<(), StoreError> {
        let target = self.inner.groups.load(Ordering::SeqCst);
        let mut synced = self.inner.synced.clone();
        synced
            .wait_for(|&done| done >= target)
            .await
            .map(drop)
            .map_err(|_| StoreError::unavailable(format!("{} durable", self.inner.label), Reason("the syncer thread is gone")))
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
            Ok(Err(e)) => Err(e.named(format!("{label} {op}"))),
            Err(e) => Err(StoreError::defect(format!("{label} {op}: the blocking task failed"), e)),
        }
    }
}

/// One write: `run` does it inside the group's transaction and says whether it
/// succeeded (each run replaces the outcome the last one left); `reply` answers
/// its caller once the group's commit outcome is known.
struct Job {
    run: Box<dyn FnMut(&Transaction<'_>) -> bool + Send>,
    reply: Reply,
}

/// Answers one write's caller with its group's outcome.
type Reply = Box<dyn FnOnce(Result<(), CommitFailure>) + Send>;

/// Why a group's writes are not durable.
#[derive(Clone)]
enum CommitFailure {
    /// The commit itself failed: nothing of the group is stored.
    Sql(Arc<rusqlite::Error>),
    /// The WAL could not be fsynced: the commit may not survive a power cut.
    Sync(Arc<std::io::Error>),
}

/// A group the writer has committed (or failed), for the syncer to answer.
struct Committed {
    /// Its number in [`Inner::groups`].
    group: u64,
    outcome: Result<(), CommitFailure>,
    replies: Vec<Reply>,
}

fn wal_path(db: &Path) -> std::path::PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

/// How long the writer waits for readers still in the WAL before it gives a restart up.
const RESTART_WAIT: Duration = Duration::from_millis(10);
/// After a restart was given up: how long the WAL may grow before the next try.
const RESTART_RETRY: Duration = Duration::from_millis(250);

/// The WAL's size bound, kept by the writer between groups.
struct WalBound {
    wal: Arc<std::fs::File>,
    limit: u64,
    label: &'static str,
    /// No restart is tried before this (a reader kept the last one from finishing).
    not_before: std::time::Instant,
    /// Held by whoever checkpoints, this thread or the checkpoint thread: SQLite
    /// runs one checkpoint at a time and would answer the other "busy".
    checkpointing: Arc<Mutex<()>>,
}

impl WalBound {
    /// Starts the WAL again from its beginning once it outgrew the limit.
    ///
    /// A passive checkpoint never blocks the writer, so under writes that
    /// never pause it always finds frames committed while it copied, and
    /// SQLite starts the WAL over only when every frame is copied: the file
    /// grew without end (13 GB in the bench's 1M-post data set, and every read
    /// that misses the page cache searches the WAL's index). A RESTART
    /// checkpoint, run here between two groups, copies the few frames the
    /// passive ones have not yet and waits for readers still in the WAL; the
    /// next commit then writes from the start, and `journal_size_limit` cuts
    /// the file back. The writes waiting meanwhile wait for it, so it waits
    /// only [`RESTART_WAIT`] for readers (point reads take far less), and
    /// after a long reader made it give up, tries again [`RESTART_RETRY`] later.
    fn keep(&mut self, conn: &Connection) {
        let now = std::time::Instant::now();
        if now < self.not_before || self.wal.metadata().map_or(true, |m| m.len() <= self.limit) {
            return;
        }
        let _turn = self.checkpointing.lock().unwrap_or_else(|p| p.into_inner());
        let restarted = conn
            .busy_timeout(RESTART_WAIT)
            .and_then(|()| conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0)));
        if let Err(e) = conn.busy_timeout(BUSY_TIMEOUT) {
            tracing::warn!(file = self.label, error = %e, "cannot set the writer's busy timeout back");
        }
        match restarted {
            Ok(0) => {}
            Ok(_) => {
                tracing::debug!(file = self.label, "the WAL could not start over yet: a reader is still in it");
                self.not_before = now + RESTART_RETRY;
            }
            Err(e) => {
                tracing::warn!(file = self.label, error = %e, "cannot checkpoint the WAL to start it over");
                self.not_before = now + RESTART_RETRY;
            }
        }
    }
}

/// The writer thread: takes the writes waiting and commits them in one
/// immediate transaction, then answers them all.
///
/// Writes rarely fail, so a group first runs them one after the other. Only
/// when one fails does it roll the whole group back and run it again with each
/// write in its own savepoint, so the failing one rolls back alone. (A savepoint
/// per write always cost ~12% of the read model's writer: SQLite copies every
/// page a write touches first into the savepoint's journal.)
///
/// `groups` counts the groups, for the checkpointer and [`Db::durable`]: a
/// group is counted before its commit, so a reader that sees it also counts
/// it. The answers go to the syncer with the group. `_alive` is dropped when
/// the thread ends, which ends the checkpointer (and the syncer, with `to_sync`).
fn commit_in_groups(
    mut conn: Connection,
    jobs: mpsc::Receiver<Job>,
    groups: &AtomicU64,
    to_sync: &mpsc::Sender<Committed>,
    wal: &mut WalBound,
    _alive: mpsc::Sender<()>,
) {
    while let Some(mut group) = next_group(&jobs, GROUP_MAX) {
        wal.keep(&conn);
        let number = groups.fetch_add(1, Ordering::SeqCst) + 1;
        let outcome = match run_all(&mut conn, &mut group) {
            Ok(true) => Ok(()),
            Ok(false) => run_each_alone(&mut conn, &mut group),
            Err(e) => Err(Arc::new(e)),
        };
        let replies = group.into_iter().map(|job| job.reply).collect();
        let committed = Committed { group: number, outcome: outcome.map_err(CommitFailure::Sql), replies };
        if let Err(mpsc::SendError(lost)) = to_sync.send(committed) {
            // The syncer is gone only if it panicked: say so rather than leave callers waiting.
            let gone = std::io::Error::other("the syncer thread is gone");
            let failure = CommitFailure::Sync(Arc::new(gone));
            lost.replies.into_iter().for_each(|reply| reply(Err(failure.clone())));
        }
    }
}

/// The syncer thread: takes every group committed since its last turn, fsyncs
/// the WAL once for all of them, then answers their callers and moves
/// `synced` on. A failed fsync answers its groups with an error and does not
/// move `synced`: nothing waiting on [`Db::durable`] goes on as if it were durable.
fn sync_in_turn(wal: &std::fs::File, label: &str, committed: &Mutex<mpsc::Receiver<Committed>>, synced: &watch::Sender<u64>) {
    loop {
        // Another syncer may fsync meanwhile: two fsyncs in flight halve the wait
        // of a write that commits while one is under way.
        let Some(turn) = next_group(&committed.lock().unwrap_or_else(|p| p.into_inner()), usize::MAX) else { return };
        let last = turn.iter().map(|c| c.group).max().unwrap_or(0);
        let durable = wal.sync_all().map_err(|e| {
            tracing::error!(file = label, error = %e, "cannot fsync the WAL; the writes of this turn are answered with an error");
            CommitFailure::Sync(Arc::new(e))
        });
        for group in turn {
            let outcome = durable.clone().and(group.outcome);
            group.replies.into_iter().for_each(|reply| reply(outcome.clone()));
        }
        if durable.is_ok() {
            // This fsync began after every group of its turn committed: all are durable.
            synced.send_if_modified(|done| std::mem::replace(done, (*done).max(last)) < last);
        }
    }
}

/// The checkpoint thread: every [`CHECKPOINT_EVERY`] that saw a commit, copies
/// the WAL's pages into the database file (a passive checkpoint: it never
/// blocks the writer or a reader), and once more when the writer is gone.
/// Done by the writer itself (SQLite's default, after a commit that grew the
/// WAL past 1,000 pages), the copy and its fsyncs were a fifth of the read
/// model's writer time, and every write waiting behind it waited for them.
fn checkpoint_now_and_then(
    conn: &mut Connection,
    label: &str,
    commits: &AtomicU64,
    checkpointing: &Mutex<()>,
    writer_gone: &mpsc::Receiver<()>,
) {
    let mut seen = 0;
    loop {
        let done = match writer_gone.recv_timeout(CHECKPOINT_EVERY) {
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => true,
        };
        let now = commits.load(Ordering::Relaxed);
        if now != seen || done {
            seen = now;
            let _turn = checkpointing.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(file = label, error = %e, "checkpoint failed; the next one tries again");
            }
        }
        if done {
            return;
        }
    }
}

/// Runs every write of the group in one transaction and commits it; Ok(false),
/// with nothing committed, when a write failed.
fn run_all(conn: &mut Connection, group: &mut [Job]) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for job in group.iter_mut() {
        if !(job.run)(&tx) {
            return Ok(false); // Dropping `tx` rolls the group back.
        }
    }
    tx.commit().map(|()| true)
}

/// Runs every write of the group in its own savepoint of one transaction, so a
/// failing write rolls back alone, and commits the rest.
fn run_each_alone(conn: &mut Connection, group: &mut [Job]) -> Result<(), Arc<rusqlite::Error>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Cached statements: parsing these three for every write showed in the profile.
    let run = |sql: &str| tx.prepare_cached(sql).and_then(|mut s| s.execute([])).map(drop);
    for job in group.iter_mut() {
        let settled = run("SAVEPOINT write").and_then(|()| {
            if (job.run)(&tx) {
                run("RELEASE write")
            } else {
                run("ROLLBACK TO write").and_then(|()| run("RELEASE write"))
            }
        });
        // A savepoint that could not be settled leaves the transaction unsure: none of it commits.
        settled?;
    }
    Ok(tx.commit()?)
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

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: Schema = Schema { tables: "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)", upgrades: &[] };

    async fn count(db: &Db) -> i64 {
        db.read("count", |c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)).await.unwrap()
    }

    fn temp_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.sqlite"), "t.sqlite", &SCHEMA).unwrap();
        (dir, db)
    }

    /// `n` concurrent inserts (so they commit in groups); those `refused` picks
    /// fail after writing. Answers which were Ok, in order.
    async fn insert_concurrently(db: &Db, n: usize, refused: fn(usize) -> bool) -> Vec<bool> {
        let writes: Vec<_> = (0..n)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    db.write("insert", move |tx| {
                        tx.execute("INSERT INTO t (k) VALUES (?1)", [format!("k{i}")])?;
                        if refused(i) {
                            return Err(DbError::Data("refused after writing".into()));
                        }
                        Ok(i)
                    })
                    .await
                })
            })
            .collect();
        let mut answered = Vec::new();
        for w in writes {
            answered.push(w.await.unwrap().is_ok());
        }
        answered
    }

    #[tokio::test]
    async fn a_write_is_answered_once_the_syncer_made_it_durable() {
        let (_dir, db) = temp_db();
        let answered = insert_concurrently(&db, 40, |_| false).await;
        assert!(answered.iter().all(|ok| *ok));
        // Every write answered, so every group was fsynced: nothing is left for `durable` to wait for.
        db.durable().await.unwrap();
        assert!(*db.inner.synced.borrow() >= 1, "a group was fsynced");
        assert_eq!(*db.inner.synced.borrow(), db.inner.groups.load(Ordering::SeqCst), "every group is durable");
        assert_eq!(count(&db).await, 40);
    }

    #[tokio::test]
    async fn a_failing_write_rolls_back_alone_while_the_rest_of_its_group_commits() {
        let (_dir, db) = temp_db();
        let answered = insert_concurrently(&db, 60, |i| i % 10 == 3).await;
        assert_eq!(answered.iter().filter(|ok| **ok).count(), 54);
        assert_eq!(count(&db).await, 54, "exactly the writes that answered Ok are stored");
    }

    #[tokio::test]
    async fn the_checkpoint_thread_copies_committed_writes_into_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let db = Db::open(&path, "t.sqlite", &SCHEMA).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        // The writer never checkpoints; until the checkpoint thread does, the rows are in the WAL only.
        db.write("fill", |tx| {
            let mut insert = tx.prepare("INSERT INTO t (k) VALUES (?1)")?;
            for i in 0..2_000 {
                insert.execute([format!("{i:0>200}")])?;
            }
            Ok(())
        })
        .await
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).unwrap().len() <= before {
            assert!(std::time::Instant::now() < deadline, "the file did not grow: nothing was checkpointed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(count(&db).await, 2_000);
    }

    /// Writes that never pause leave the passive checkpoints no moment when
    /// every frame is copied, and without one the WAL is never started again
    /// from its beginning: it grew to 13 GB in the bench's 1M-post data set.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_near_its_limit_under_writes_that_never_pause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let limit = 1 << 20;
        let db = Db::open_with_wal_limit(&path, "t.sqlite", &SCHEMA, limit).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Point reads one after the other, as the read endpoints make.
        let reading = {
            let (db, stop) = (db.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let sql = "SELECT COUNT(*) FROM t WHERE k = '0-0-0'";
                    db.read("point", move |c| Ok(c.query_row(sql, [], |r| r.get::<_, i64>(0))?)).await.unwrap();
                }
            })
        };
        // Eight writers, each write ~40 KB over fresh pages: 24 MB in all, 24 times the limit.
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let db = db.clone();
                tokio::spawn(async move {
                    for i in 0..75 {
                        db.write("fill", move |tx| {
                            let mut insert = tx.prepare_cached("INSERT INTO t (k) VALUES (?1)")?;
                            for j in 0..10 {
                                insert.execute([format!("{w}-{i}-{j}-{}", "x".repeat(4000))])?;
                            }
                            Ok(())
                        })
                        .await
                        .unwrap();
                    }
                })
            })
            .collect();
        let mut largest = 0;
        let wal = wal_path(&path);
        while !writers.iter().all(|w| w.is_finished()) {
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.store(true, Ordering::Relaxed);
        reading.await.unwrap();
        assert_eq!(count(&db).await, 6_000);
        assert!(largest < 4 * limit, "the WAL reached {largest} bytes against a limit of {limit}");
    }

    #[tokio::test]
    async fn a_panicking_write_is_an_error_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.sqlite"), "t.sqlite", &SCHEMA).unwrap();
        let panicked = db
            .write("panic", |tx| -> DbResult<()> {
                tx.execute("INSERT INTO t (k) VALUES ('lost')", [])?;
                panic!("boom")
            })
            .await;
        assert!(panicked.unwrap_err().to_string().contains("panicked"));
        db.write("after", |tx| Ok(tx.execute("INSERT INTO t (k) VALUES ('kept')", [])?)).await.unwrap();
        assert_eq!(count(&db).await, 1);
    }
}
