//! The tag cloud's JSON, kept between changes: `GET /tags` is the hottest read
//! and its answer (up to 10k tags, hundreds of KB) changes only when a post's
//! tags do. Every change this process commits (an applied event, a rebuild)
//! moves a generation counter after its commit, and an answer computed under
//! an older generation is not served again, so a read never misses a change
//! made here. Another process writing the same file (`blog load`) is not seen
//! by the counter: answers are also dropped after [`MAX_AGE`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// How stale an answer may get when another process changed the cloud.
pub(super) const MAX_AGE: Duration = Duration::from_secs(1);
/// Distinct `limit`s kept; more are served without caching the oldest.
const ENTRIES: usize = 8;

#[derive(Default)]
pub(super) struct CloudCache {
    generation: AtomicU64,
    /// By `limit`: the generation the answer was read under, when, and the JSON.
    entries: Mutex<HashMap<Option<u32>, (u64, Instant, Bytes)>>,
}

impl CloudCache {
    /// Call after a change to the cloud committed.
    pub(super) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The generation to read under: take it before reading the store.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub(super) fn get(&self, limit: Option<u32>) -> Option<Bytes> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (generation, at, json) = entries.get(&limit)?;
        (*generation == self.generation() && at.elapsed() < MAX_AGE).then(|| json.clone())
    }

    /// Keeps `json`, read under `generation`.
    pub(super) fn put(&self, limit: Option<u32>, generation: u64, json: Bytes) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= ENTRIES && !entries.contains_key(&limit) {
            entries.clear();
        }
        entries.insert(limit, (generation, Instant::now(), json));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_read_before_a_change_is_not_served_after_it() {
        let cache = CloudCache::default();
        let before = cache.generation();
        cache.invalidate(); // a change commits while the answer is being read
        cache.put(None, before, Bytes::from_static(b"[old]"));
        assert_eq!(cache.get(None), None);
        let now = cache.generation();
        cache.put(None, now, Bytes::from_static(b"[new]"));
        assert_eq!(cache.get(None), Some(Bytes::from_static(b"[new]")));
        assert_eq!(cache.get(Some(5)), None, "by limit");
    }
}
