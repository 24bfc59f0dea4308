//! The client, the two databases and the transaction helper.
//!
//! Post writes and their outbox entries, the tag cloud's steps and its rebuild
//! run in multi-document transactions. Real MongoDB allows those only on a
//! replica set (or sharded cluster), which is why the compose file runs
//! MongoDB as a single-node replica set. The outbox could have lived inside
//! the post document instead (atomic without a transaction), but then the
//! relay would have to scan every post for unsent events; a separate
//! collection lets it read one collection in `seq` order off an index.

use std::future::Future;
use std::time::Duration;

use blog_actors::ports::StoreError;
use futures::future::BoxFuture;
use mongodb::bson::{doc, Document};
use mongodb::error::{ErrorKind, WriteFailure, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT};
use mongodb::options::{Acknowledgment, TransactionOptions, WriteConcern};
use mongodb::{Client, ClientSession, Collection, Database};

use super::collections::POST_VIEWS;

/// Attempts of one transaction when the server says it may succeed if retried
/// (a write conflict with another instance's transaction, a primary stepping
/// down). Conflicts are expected with several instances: every outbox write
/// increments one counter document, and tag counts are shared by many posts.
/// Past this, the caller's own retry (the worker's backoff, the client's) takes over.
const TRANSACTION_ATTEMPTS: u32 = 12;
/// Commit retries when the outcome of a commit is unknown (it is idempotent).
const COMMIT_ATTEMPTS: u32 = 3;

/// Transactions of this process on one server run one at a time. They mostly
/// touch the same few documents (the outbox counter, popular tags), so
/// concurrent ones would only conflict and retry; across instances MongoDB's
/// write-conflict detection and the retry below still apply. The nx-27017
/// stand-in needs it outright: it nests concurrent transactions into one SQLite
/// transaction (savepoints on a shared connection) and fails when they finish
/// out of order. One turn per server (its hosts), shared by every client of the
/// process that talks to it: a server that hangs holds up only its own callers.
static TURNS: std::sync::Mutex<Vec<(String, Turn)>> = std::sync::Mutex::new(Vec::new());

/// The right to run a transaction on one server.
type Turn = std::sync::Arc<tokio::sync::Mutex<()>>;

/// The turn of the server named `hosts`.
pub(super) fn turn_of(hosts: &str) -> Turn {
    let mut turns = TURNS.lock().expect("transaction turns lock");
    if let Some((_, turn)) = turns.iter().find(|(h, _)| h == hosts) {
        return turn.clone();
    }
    let turn = Turn::default();
    turns.push((hosts.to_owned(), turn.clone()));
    turn
}

/// What went wrong inside a store call, before it is named by its operation.
#[derive(Debug, thiserror::Error)]
pub(super) enum DbError {
    #[error(transparent)]
    Mongo(#[from] mongodb::error::Error),
    #[error("bad stored document: {0}")]
    Decode(#[from] mongodb::bson::de::Error),
    #[error("bad JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored value that cannot be what it claims (a corrupt or foreign document).
    #[error("bad stored data: {0}")]
    Data(String),
}

pub(super) type DbResult<T> = Result<T, DbError>;

impl DbError {
    /// The server says the whole transaction may succeed if run again.
    fn is_transient(&self) -> bool {
        matches!(self, DbError::Mongo(e) if e.contains_label(TRANSIENT_TRANSACTION_ERROR))
    }
}

/// Names the failed operation, so a log line says what the store was doing.
pub(super) fn failed(op: &str, e: impl Into<DbError>) -> StoreError {
    let context = format!("mongodb {op}");
    match e.into() {
        DbError::Mongo(e) if is_duplicate_key(&e) => StoreError::conflict(context, e),
        DbError::Mongo(e) => match *e.kind {
            // A document the driver cannot decode into our types.
            mongodb::error::ErrorKind::BsonDeserialization(_) => StoreError::corrupt(context, e),
            // Unreachable, timed out, refused, write concern not met, interrupted…
            _ => StoreError::unavailable(context, e),
        },
        e @ (DbError::Decode(_) | DbError::Json(_) | DbError::Data(_)) => StoreError::corrupt(context, e),
    }
}

/// A unique key (`_id` or a unique index) refused the write: code 11000.
/// Upserts and find-and-modify report it as a write or a command error.
pub(super) fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    const DUPLICATE_KEY: i32 = 11000;
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(m) => m.write_errors.iter().flatten().any(|w| w.code == DUPLICATE_KEY),
        _ => false,
    }
}

/// Inserts `docs` unordered and answers how many were new: a document whose
/// `_id` is taken is skipped (its duplicate-key error is expected), any other
/// write error fails the call.
pub(super) async fn insert_new(collection: &Collection<Document>, docs: Vec<Document>) -> DbResult<u64> {
    let sent = docs.len() as u64;
    if docs.is_empty() {
        return Ok(0);
    }
    const DUPLICATE_KEY: i32 = 11000;
    match collection.insert_many(docs).ordered(false).await {
        Ok(done) => Ok(done.inserted_ids.len() as u64),
        Err(e) => match e.kind.as_ref() {
            ErrorKind::InsertMany(m)
                if m.write_concern_error.is_none()
                    && m.write_errors.iter().flatten().all(|w| w.code == DUPLICATE_KEY) =>
            {
                Ok(sent - m.write_errors.as_ref().map_or(0, |w| w.len() as u64))
            }
            _ => Err(e.into()),
        },
    }
}

/// The client and both databases; cheap to clone (the client is shared).
#[derive(Clone)]
pub(super) struct Db {
    client: Client,
    /// How long one call may wait on the server. The driver has no socket
    /// timeout: a server that accepted the connection and then froze would
    /// otherwise hold the call, and the transaction turn, forever.
    timeout: Duration,
    /// Sessions of transactions abandoned unfinished (see [`Unfinished`]).
    abandoned: Abandoned,
    /// Taken for each transaction (see [`TURNS`]).
    turn: Turn,
    /// Posts, outbox, tag cloud, email log, leases, counters.
    pub(super) main: Database,
    /// The read model.
    pub(super) queries: Database,
}

impl Db {
    pub(super) fn new(client: Client, main: &str, queries: &str, timeout: Duration, turn: Turn) -> Self {
        Self { main: client.database(main), queries: client.database(queries), client, timeout, abandoned: Abandoned::default(), turn }
    }

    /// How long one call may wait; also the server's own limit (`maxTimeMS`) on
    /// the reads that may scan, so the server stops a query the caller gave up on.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `call` under the store timeout; past it the call is dropped (the
    /// driver closes its connection, and aborts a transaction left open as its
    /// session drops) and fails as unavailable, so the caller retries it.
    pub(super) async fn within<T>(&self, op: &str, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(done) => done,
            Err(elapsed) => {
                let context = format!("mongodb {op}: no answer within {} s (BLOG_STORE_TIMEOUT)", self.timeout.as_secs_f64());
                tracing::warn!(op, timeout_s = self.timeout.as_secs_f64(), "a store call timed out");
                Err(StoreError::unavailable(context, elapsed))
            }
        }
    }

    /// Runs a query that may scan and collects its documents, with `maxTimeMS`
    /// set to the store timeout: the server stops a query the service gave up on.
    pub(super) async fn scan(&self, op: &str, find: mongodb::action::Find<'_, Document>) -> Result<Vec<Document>, StoreError> {
        use futures::TryStreamExt;
        find.max_time(self.timeout).await.map_err(|e| failed(op, e))?.try_collect().await.map_err(|e| failed(op, e))
    }

    pub(super) fn main(&self, name: &str) -> Collection<Document> {
        self.main.collection(name)
    }

    pub(super) fn post_views(&self) -> Collection<Document> {
        self.queries.collection(POST_VIEWS)
    }

    /// Runs `body` in a transaction and commits it; retries the whole of it on
    /// TransientTransactionError, and the commit on UnknownTransactionCommitResult.
    /// `body` may run several times, so it must only act through the session.
    /// `ctx` is lent to each run (the pattern of the driver's own `and_run`):
    /// it lets the body's future borrow the caller's values.
    pub(super) async fn transaction<T, C, F>(&self, op: &'static str, ctx: C, body: F) -> Result<T, StoreError>
    where
        T: Send,
        C: Send + Sync,
        F: for<'s> FnMut(&'s mut ClientSession, &'s Db, &'s C) -> BoxFuture<'s, DbResult<T>> + Send,
    {
        // The wait for the turn counts too: behind a frozen transaction it is as stuck.
        self.within(op, self.long_transaction(op, ctx, body)).await
    }

    /// As [`Db::transaction`] without the store timeout, for a transaction that
    /// may rightly take longer (the tag-cloud rebuild scans every post): its
    /// caller bounds it (`BLOG_REBUILD_TIMEOUT`), and dropping it ends it.
    pub(super) async fn long_transaction<T, C, F>(&self, op: &'static str, ctx: C, mut body: F) -> Result<T, StoreError>
    where
        T: Send,
        C: Send + Sync,
        F: for<'s> FnMut(&'s mut ClientSession, &'s Db, &'s C) -> BoxFuture<'s, DbResult<T>> + Send,
    {
        // One transaction at a time per process and server; see [`TURNS`].
        let _turn = self.turn.lock().await;
        self.retire_abandoned().await.map_err(|e| failed(op, e))?;
        let started = self.client.start_session().await.map_err(|e| failed(op, e))?;
        let mut session = Unfinished(Some(started), self.abandoned.clone());
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match self.attempt(session.get(), &ctx, &mut body).await {
                Ok(out) => break Ok(out),
                Err(e) if e.is_transient() && attempt < TRANSACTION_ATTEMPTS => backoff(attempt).await,
                Err(e) => break Err(failed(op, e)),
            }
        };
        session.finished();
        outcome
    }

    /// Aborts the transactions abandoned unfinished, before another begins (see
    /// [`Unfinished`]); one that cannot be aborted yet stays for the next turn.
    async fn retire_abandoned(&self) -> DbResult<()> {
        loop {
            let Some(session) = self.abandoned.lock().expect("abandoned sessions lock").pop() else { return Ok(()) };
            let mut session = Unfinished(Some(session), self.abandoned.clone());
            // The server answers again, so the abandoned call's requests still on the
            // wire have been read: the abort below comes after them.
            self.main.run_command(doc! { "ping": 1 }).await?;
            // The driver's abort reaches the server only for a transaction it saw begin
            // there; the command itself, sent in the session, also ends one whose first
            // request was still unanswered. Their own failures change nothing: the
            // transaction is gone either way (or never began).
            let _ = session.get().abort_transaction().await;
            let _ = self.client.database("admin").run_command(doc! { "abortTransaction": 1 }).session(session.get()).await;
            session.finished();
        }
    }

    async fn attempt<T, C, F>(&self, session: &mut ClientSession, ctx: &C, body: &mut F) -> DbResult<T>
    where
        F: for<'s> FnMut(&'s mut ClientSession, &'s Db, &'s C) -> BoxFuture<'s, DbResult<T>>,
    {
        session.start_transaction().with_options(transaction_options()).await?;
        let out = match body(session, self, ctx).await {
            Ok(out) => out,
            Err(e) => {
                // The body's error is the one worth reporting; the server also
                // drops the transaction by itself when the session ends.
                let _ = session.abort_transaction().await;
                return Err(e);
            }
        };
        let mut commits = 0;
        loop {
            commits += 1;
            match session.commit_transaction().await {
                Ok(()) => return Ok(out),
                Err(e) if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) && commits < COMMIT_ATTEMPTS => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Answers when both databases answer `{ping: 1}`.
    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        self.within("ping", async {
            self.main.run_command(doc! { "ping": 1 }).await.map_err(|e| failed("ping (write database)", e))?;
            self.queries.run_command(doc! { "ping": 1 }).await.map_err(|e| failed("ping (queries database)", e))?;
            Ok(())
        })
        .await
    }
}

/// A transaction's session until it committed or aborted. Dropped before that
/// (a deadline dropped the call), its transaction may be open on the server,
/// or about to open there from a request still on the wire (a frozen server
/// reads it once it runs again). The driver would put the server session back
/// in its pool, and the next operation to take it would run inside that
/// transaction (on the nx-27017 stand-in, be refused as a cross-database
/// transaction, and its open transaction would hold up every later one). So it
/// goes to its client's abandoned sessions, and the next transaction's turn aborts it first.
struct Unfinished(Option<ClientSession>, Abandoned);

/// A client's sessions whose transactions were abandoned unfinished.
type Abandoned = std::sync::Arc<std::sync::Mutex<Vec<ClientSession>>>;

impl Unfinished {
    fn get(&mut self) -> &mut ClientSession {
        self.0.as_mut().expect("the session lives until finished")
    }

    /// Committed or aborted: the session may go back to the pool.
    fn finished(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(session) = self.0.take() {
            tracing::warn!("a transaction was abandoned unfinished; it is aborted before the next one begins");
            self.1.lock().expect("abandoned sessions lock").push(session);
        }
    }
}

/// Majority writes, so a commit survives a failover: what the outbox promises.
/// No read concern is set: MongoDB runs every transaction on one storage
/// snapshot anyway, and the read-modify-write steps here are guarded by write
/// conflicts, not by the read concern. (The nx-27017 stand-in would also store
/// a `readConcern` sent with an insert as an extra document.)
fn transaction_options() -> TransactionOptions {
    TransactionOptions::builder().write_concern(WriteConcern::builder().w(Acknowledgment::Majority).build()).build()
}

/// Exponential from 2 ms, capped at 100 ms, with full jitter so that
/// conflicting transactions do not collide again in step.
async fn backoff(attempt: u32) {
    let ceiling = 2u64.saturating_pow(attempt).min(100);
    // Any cheap randomness does here; a v4 UUID is random and already at hand.
    let ms = (uuid::Uuid::new_v4().as_u128() % u128::from(ceiling + 1)) as u64;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
