//! The embedded store's write path alone, without broker or actors: the CPU
//! one read-model view (projector) or one tag-cloud change (tag aggregator)
//! costs, with `writers` writes in flight at once (what the writer thread can
//! commit together). Posts are shaped like the bench's events (5-word title,
//! 60-word body, one to five tags, Zipf over 10k tags).
//!
//! `cargo run --release --example store_writes -- [posts] [read-model|tag-cloud] [writers]`
//! (defaults 50000, read-model, 16). BENCHMARKS.md, "Where the time goes",
//! quotes its figures as "store microbench".

use std::sync::Arc;
use std::time::Instant;

use blog::store::sqlite::SqliteStore;
use blog_actors::event::PostSnapshot;
use blog_actors::ports::{PostView, ReadModelStore, TagCloudStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use tokio::sync::Semaphore;

const WORDS: [&str; 16] = [
    "actor", "broker", "cache", "durable", "event", "index", "latency", "message", "outbox", "queue", "replica",
    "store", "stream", "supervisor", "throughput", "worker",
];

/// User plus system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn views(n: usize) -> Vec<PostView> {
    let (zipf, mut rng) = (Zipf::new(10_000.0, 1.0).expect("valid Zipf parameters"), StdRng::seed_from_u64(1));
    let words = |rng: &mut StdRng, k: usize| (0..k).map(|_| WORDS[rng.random_range(0..WORDS.len())]).collect::<Vec<_>>().join(" ");
    (0..n)
        .map(|_| {
            let wanted = rng.random_range(1..=5);
            let mut tags = Vec::new();
            while tags.len() < wanted {
                let tag = format!("tag-{}", zipf.sample(&mut rng) as u32);
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
            let now = chrono::Utc::now();
            let (title, description) = (words(&mut rng, 5), words(&mut rng, 60));
            let post = PostSnapshot { id: uuid::Uuid::now_v7(), title, description, tags, created_at: now, updated_at: now, version: 1 };
            blog_actors::projector::view_of(&post)
        })
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(50_000), |s| s.parse())?;
    let what = args.next().unwrap_or_else(|| "read-model".into());
    let writers: usize = args.next().map_or(Ok(16), |s| s.parse())?;
    anyhow::ensure!(what == "read-model" || what == "tag-cloud", "say read-model or tag-cloud, not {what:?}");

    std::fs::create_dir_all("target")?;
    let dir = tempfile::tempdir_in("target")?;
    let store = Arc::new(SqliteStore::open(dir.path()).await?);
    let views = views(n);
    let (cpu_before, started) = (cpu_seconds(), Instant::now());
    let in_flight = Arc::new(Semaphore::new(writers));
    let mut writes = Vec::with_capacity(n);
    for view in views {
        let permit = in_flight.clone().acquire_owned().await?;
        let (store, tag_cloud) = (store.clone(), what == "tag-cloud");
        writes.push(tokio::spawn(async move {
            let written = if tag_cloud {
                store.apply_post_tags(view.id, view.version, Some(&view.tags)).await
            } else {
                store.upsert_post_view(&view).await
            };
            drop(permit);
            written
        }));
    }
    for write in writes {
        write.await??;
    }
    let (took, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu_before);
    println!("{what}: {n} posts, {writers} writers: {:.0}/s, CPU {:.1} µs each", n as f64 / took, cpu * 1e6 / n as f64);
    Ok(())
}
