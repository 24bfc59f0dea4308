//! The fixture shared by this module's tests: a fresh store in its own temporary dir.

use tempfile::TempDir;

use super::SqliteStore;

/// A fresh store in its own temporary dir (kept alive by the returned guard).
pub(super) async fn store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    (dir, store)
}

crate::store::contract::store_contract_suite!(store);
