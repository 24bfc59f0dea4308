//! Synthetic posts for benchmarks and demos: titles and bodies of plain words,
//! one to five tags per post drawn from a Zipf distribution over a fixed set of
//! tags (a few are on many posts, most on few, as on real blogs), creation
//! times a minute apart. The same seed gives the same posts, ids included.

use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use serde_json::json;

use super::Item;
use crate::domain::post::ValidPost;
use crate::store::ImportedPost;

/// How many tags a post gets, by weight: 1 to 5, mostly 2 or 3.
const TAG_COUNT_WEIGHTS: [(usize, u32); 5] = [(1, 15), (2, 30), (3, 30), (4, 15), (5, 10)];
/// 2020-01-01T00:00:00Z: the first synthetic post.
const EPOCH_MS: i64 = 1_577_836_800_000;

const WORDS: [&str; 64] = [
    "actor", "async", "broker", "cache", "cloud", "commit", "compile", "data", "debug", "deploy", "design",
    "durable", "event", "fast", "graph", "handler", "idempotent", "index", "kernel", "latency", "lease", "memory",
    "message", "metric", "model", "network", "outbox", "page", "parse", "pipeline", "post", "queue", "query",
    "read", "rebuild", "record", "replica", "request", "retry", "runtime", "schema", "server", "service", "shard",
    "signal", "socket", "store", "stream", "supervisor", "tag", "task", "test", "thread", "throughput", "timer",
    "trace", "transaction", "type", "update", "version", "view", "worker", "write", "zero",
];

/// What shapes the generated posts.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Distinct tags to draw from.
    pub tags: u32,
    /// Zipf exponent `s`: tag of rank k is drawn with weight 1/k^s.
    pub exponent: f64,
    pub seed: u64,
}

/// Makes posts, deterministically from its seed.
pub struct Generator {
    rng: StdRng,
    zipf: Zipf<f64>,
    tag_names: Vec<String>,
    made: u64,
}

impl Generator {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        if settings.tags == 0 {
            anyhow::bail!("--tags must be at least 1");
        }
        let zipf = Zipf::new(f64::from(settings.tags), settings.exponent)
            .map_err(|e| anyhow::anyhow!("--zipf-exponent {}: {e}", settings.exponent))?;
        let tag_names = (1..=settings.tags).map(tag_name).collect();
        Ok(Self { rng: StdRng::seed_from_u64(settings.seed), zipf, tag_names, made: 0 })
    }

    /// The next post.
    pub fn post(&mut self) -> ImportedPost {
        let n = self.made;
        self.made += 1;
        let created_at = created_at(n);
        // Time-ordered like the ids the service makes (v7), from the post's own
        // time and the seeded generator, so a seed still gives the same data.
        let id = uuid::Builder::from_unix_timestamp_millis(created_at.timestamp_millis() as u64, &self.rng.random())
            .into_uuid();
        let title = capitalise(&self.words(3, 8));
        let description = self.words(30, 150) + ".";
        let wanted = pick_weighted(&mut self.rng, &TAG_COUNT_WEIGHTS);
        let mut tags: Vec<String> = Vec::with_capacity(wanted);
        // A popular tag drawn twice is drawn again; a bounded number of times, so
        // a tiny tag set cannot loop forever.
        for _ in 0..wanted * 4 {
            if tags.len() == wanted {
                break;
            }
            let rank = self.zipf.sample(&mut self.rng) as usize;
            let tag = &self.tag_names[rank.clamp(1, self.tag_names.len()) - 1];
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        ImportedPost { id, post: ValidPost { title, description, tags }, created_at }
    }

    /// `count` posts in batches of `batch`; stops early when `emit` answers false.
    pub fn generate(mut self, count: u64, batch: usize, emit: &mut dyn FnMut(Item) -> bool) {
        let mut left = count;
        while left > 0 {
            let size = usize::try_from(left).unwrap_or(usize::MAX).min(batch);
            let posts: Vec<ImportedPost> = (0..size).map(|_| self.post()).collect();
            left -= size as u64;
            if !emit(Item::Batch(posts)) || !emit(Item::Progress(count - left)) {
                return;
            }
        }
    }

    /// `count` posts as JSON lines, the format `--file` reads.
    pub fn write_jsonl(mut self, count: u64, path: &Path) -> std::io::Result<()> {
        let mut out = BufWriter::new(std::fs::File::create(path)?);
        for _ in 0..count {
            let p = self.post();
            let line = json!({
                "id": p.id, "title": p.post.title, "description": p.post.description,
                "tags": p.post.tags, "created_at": p.created_at,
            });
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }

    fn words(&mut self, min: usize, max: usize) -> String {
        let count = self.rng.random_range(min..=max);
        let words: Vec<&str> = (0..count).map(|_| WORDS[self.rng.random_range(0..WORDS.len())]).collect();
        words.join(" ")
    }
}

/// The tag of popularity rank `rank` (1 = most used): valid, distinct, readable.
pub fn tag_name(rank: u32) -> String {
    format!("tag-{rank}")
}

fn created_at(n: u64) -> DateTime<Utc> {
    let minutes = i64::try_from(n).unwrap_or(i64::MAX / 60_000);
    DateTime::from_timestamp_millis(EPOCH_MS).unwrap_or_default() + Duration::minutes(minutes)
}

fn pick_weighted(rng: &mut StdRng, weights: &[(usize, u32)]) -> usize {
    let total: u32 = weights.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (value, weight) in weights {
        if roll < *weight {
            return *value;
        }
        roll -= weight;
    }
    weights.last().map_or(1, |(v, _)| *v)
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::domain::post::PostInput;

    fn generator(seed: u64) -> Generator {
        Generator::new(&Settings { tags: 1000, exponent: 1.0, seed }).unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_posts() {
        let (mut a, mut b) = (generator(7), generator(7));
        for _ in 0..50 {
            assert_eq!(a.post(), b.post());
        }
        assert_ne!(generator(8).post(), generator(7).post());
    }

    #[test]
    fn posts_are_valid_and_tags_follow_a_zipf_shape() {
        let mut g = generator(1);
        let mut counts: HashMap<String, u32> = HashMap::new();
        for _ in 0..5000 {
            let p = g.post();
            let input = PostInput { title: p.post.title.clone(), description: p.post.description.clone(), tags: p.post.tags.clone() };
            assert_eq!(input.validate().unwrap(), p.post);
            assert!((1..=5).contains(&p.post.tags.len()));
            for t in p.post.tags {
                *counts.entry(t).or_default() += 1;
            }
        }
        // Rank 1 is drawn about twice as often as rank 2 and far more than rank 100.
        let (first, second, hundredth) = (counts["tag-1"], counts["tag-2"], counts.get("tag-100").copied().unwrap_or(0));
        assert!(first > second && second > hundredth * 10, "{first} {second} {hundredth}");
    }
}
