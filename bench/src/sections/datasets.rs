//! Section 0, the bulk load that makes the data sets, and section 3, the
//! full tag-cloud rebuild on each of them.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use super::{fresh_dir, load_synthetic, mib, ratio, start, stop, thousands};
use crate::report::{table, Report};
use crate::service::API_KEY;
use crate::{client, median, Options};

/// Marks a data dir whose load finished, with its post count.
const LOADED: &str = "loaded.ok";

/// The data dir holding `posts` synthetic posts, loaded now if no earlier load finished.
pub(crate) fn dataset(options: &Options, posts: u64) -> anyhow::Result<PathBuf> {
    let dir = options.work_dir.join(format!("posts-{posts}"));
    if std::fs::read_to_string(dir.join(LOADED)).is_ok_and(|s| s.trim() == posts.to_string()) {
        return Ok(dir);
    }
    load_fresh(options, posts)?;
    Ok(dir)
}

fn load_fresh(options: &Options, posts: u64) -> anyhow::Result<Duration> {
    let dir = fresh_dir(options, &format!("posts-{posts}"))?;
    let took = load_synthetic(options, &dir, posts, &[])?.took;
    std::fs::write(dir.join(LOADED), posts.to_string())?;
    Ok(took)
}

/// The generator alone, writing JSON lines to /dev/null: what the load would
/// take if storing cost nothing.
fn generate_only(options: &Options, posts: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = Command::new(&options.blog_bin)
        .env("BLOG_DATA_DIR", options.work_dir.join("unused"))
        .args(["load", "--synthetic", &posts.to_string(), "--tags", "10000", "--seed", "42", "--write-jsonl", "/dev/null"])
        .output()
        .context("running blog load --write-jsonl")?;
    if !out.status.success() {
        bail!("blog load --write-jsonl failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(started.elapsed())
}

fn sizes(options: &Options) -> Vec<u64> {
    let mut sizes = options.rebuild_sizes.clone();
    if !sizes.contains(&options.http_posts) {
        sizes.push(options.http_posts);
    }
    sizes.sort_unstable();
    sizes
}

pub(crate) async fn bulk_load(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for posts in sizes(options) {
        let loaded = load_fresh(options, posts)?;
        let generated = generate_only(options, posts)?;
        let bytes: u64 = ["blog.sqlite", "blog_queries.sqlite"]
            .iter()
            .filter_map(|f| std::fs::metadata(options.work_dir.join(format!("posts-{posts}")).join(f)).ok())
            .map(|m| m.len())
            .sum();
        rows.push(vec![
            thousands(posts),
            format!("{:.2}", loaded.as_secs_f64()),
            thousands((posts as f64 / loaded.as_secs_f64()) as u64),
            format!("{:.2}", generated.as_secs_f64()),
            ratio(generated.as_secs_f64(), loaded.as_secs_f64()),
            mib(bytes / 1024),
        ]);
    }
    let body = format!(
        "`blog load --synthetic N --tags 10000 --batch 5000` into a fresh embedded store: posts, post views and \
         tags written in batches, then the tag cloud rebuilt. Baseline: the same generator writing JSON lines to \
         /dev/null (`--write-jsonl`), i.e. the load with storing for free. One run each (the data sets are made \
         once).\n\n{}",
        table(
            &["posts", "load (s)", "posts/s", "generate only (s)", "ratio to generate-only", "store size (MiB)"],
            rows,
        )
    );
    report.add("0. Bulk load", body);
    Ok(())
}

pub(crate) async fn rebuild(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut first: Option<(u64, f64)> = None;
    for &posts in &options.rebuild_sizes {
        let dir = dataset(options, posts)?;
        let service = start(options, &dir, vec![]).await?;
        let sampler = service.sample_rss();
        let mut server_ms = Vec::new();
        let mut wall_ms = Vec::new();
        for _ in 0..options.runs.max(1) {
            let at = Instant::now();
            let auth = format!("Bearer {API_KEY}");
            let answer = client::call(service.addr, "POST", "/admin/tag-cloud/rebuild", &[("Authorization", &auth)], None).await?;
            if answer.status != 200 {
                bail!("rebuild answered {}: {}", answer.status, String::from_utf8_lossy(&answer.body));
            }
            wall_ms.push(at.elapsed().as_secs_f64() * 1000.0);
            let took = answer.json()?["took_ms"].as_f64().context("took_ms in the rebuild report")?;
            server_ms.push(took);
        }
        let peak = sampler.finish().await;
        stop(service).await?;
        let (server, wall) = (median(server_ms), median(wall_ms));
        let per_post_us = server * 1000.0 / posts as f64;
        let base = *first.get_or_insert((posts, per_post_us));
        let linear = base.1 * posts as f64 / 1000.0;
        rows.push(vec![
            thousands(posts),
            format!("{server:.0}"),
            format!("{wall:.0}"),
            format!("{per_post_us:.2}"),
            format!("{linear:.0}"),
            ratio(server, linear),
            mib(peak),
        ]);
        report.remember(&format!("rebuild_ms_{posts}"), server);
    }
    let body = format!(
        "`POST /admin/tag-cloud/rebuild` on the embedded store holding N synthetic posts (10k tags, Zipf); the \
         server's own `took_ms` and the request's wall time, medians of {} runs. Baseline: linear growth from the \
         smallest size (its time per post times N); a ratio near 1.0 means the rebuild grows linearly with the \
         posts.\n\n{}",
        options.runs,
        table(
            &["posts", "rebuild (ms)", "wall (ms)", "µs per post", "linear from smallest (ms)", "ratio to linear", "peak RSS (MiB)"],
            rows,
        )
    );
    report.add("3. Tag-cloud rebuild", body);
    Ok(())
}
