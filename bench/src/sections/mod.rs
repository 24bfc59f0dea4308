//! The workloads. Each measures the service beside its baseline and adds its
//! tables to the report.
//!
//! - [`datasets`]: bulk load (section 0) and the tag-cloud rebuild (3).
//! - [`events`]: events end to end on RabbitMQ and the embedded queue (1).
//! - [`http`]: the API under load against the fixed-JSON ceiling (2).
//! - [`memory`]: RSS idle, and flat over a million events (4); startup (5).
//! - [`mongo`]: rebuild and POST /posts on the MongoDB stand-in.

mod datasets;
mod events;
mod http;
mod memory;
mod mongo;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::report::Report;
use crate::service::{Service, Spec};
use crate::{client, Options, Section};

pub(crate) async fn run(section: Section, options: &Options, report: &mut Report) -> anyhow::Result<()> {
    match section {
        Section::Load => datasets::bulk_load(options, report).await,
        Section::Rebuild => datasets::rebuild(options, report).await,
        Section::Events => events::run(options, report).await,
        Section::Http => http::run(options, report).await,
        Section::Memory => memory::run(options, report).await,
        Section::Startup => memory::startup(options, report).await,
        Section::Mongo => mongo::run(options, report).await,
    }
}

/// How long a service may take to stop on SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(60);
/// `blog` logs one line per handled event at `info`: the bench runs it at `warn`
/// so the figures are the service's, not its log pipe's (see the report's notes).
const LOG_LEVEL: &str = "warn";

/// A data dir (and its log) under the work dir, emptied first.
pub(crate) fn fresh_dir(options: &Options, name: &str) -> anyhow::Result<PathBuf> {
    let dir = options.work_dir.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Starts the service on `data_dir` with `env` on top of the bench's defaults.
pub(crate) async fn start(options: &Options, data_dir: &Path, env: Vec<(&'static str, String)>) -> anyhow::Result<Service> {
    let mut all = vec![("RUST_LOG", LOG_LEVEL.to_owned())];
    all.extend(env);
    let log = data_dir.with_extension("log");
    Service::start(Spec { bin: &options.blog_bin, data_dir, env: all, log }).await
}

pub(crate) async fn stop(service: Service) -> anyhow::Result<()> {
    service.stop(STOP_LIMIT).await
}

/// What one `blog load` took.
pub(crate) struct Loaded {
    /// Wall time of the whole command.
    pub took: Duration,
    /// Its closing tag-cloud rebuild, as it reported it ("rebuilt in X s").
    pub rebuild: Option<Duration>,
}

/// `blog load --synthetic posts` into `data_dir` (plus `env`).
pub(crate) fn load_synthetic(options: &Options, data_dir: &Path, posts: u64, env: &[(&str, String)]) -> anyhow::Result<Loaded> {
    let started = Instant::now();
    let mut command = Command::new(&options.blog_bin);
    command
        .env("BLOG_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .args(["load", "--synthetic", &posts.to_string(), "--tags", "10000", "--seed", "42", "--batch", "5000"]);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().context("running blog load")?;
    if !out.status.success() {
        bail!("blog load --synthetic {posts} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let took = started.elapsed();
    let summary = String::from_utf8_lossy(&out.stdout);
    let rebuild = summary
        .split("rebuilt in ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64);
    Ok(Loaded { took, rebuild })
}

/// The fewest events any post worker has handled, from `GET /actors`, with that worker's name.
pub(crate) async fn handled(addr: SocketAddr) -> anyhow::Result<(u64, &'static str)> {
    let actors = client::call(addr, "GET", "/actors", &[], None).await?.json()?;
    let count = |name: &str| {
        actors
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == name))
            .and_then(|x| x["handled_ok"].as_u64())
            .unwrap_or(0)
    };
    let slowest = crate::amqp::post_workers().into_iter().map(|w| (count(w), w)).min();
    Ok(slowest.unwrap_or((0, "no post worker")))
}

/// Waits until every post worker handled `n` events; fails after `limit`.
pub(crate) async fn wait_handled(addr: SocketAddr, n: u64, since: Instant, limit: Duration) -> anyhow::Result<()> {
    loop {
        let (handled, slowest) = handled(addr).await?;
        if handled >= n {
            return Ok(());
        }
        if since.elapsed() > limit {
            bail!("the {slowest} handled only {handled} of {n} events within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the service has nothing left to publish or handle (`/metrics`:
/// outbox backlog and pending deliveries both 0); fails after `limit`.
pub(crate) async fn wait_quiet(addr: SocketAddr, limit: Duration) -> anyhow::Result<()> {
    let since = Instant::now();
    loop {
        let metrics = client::call(addr, "GET", "/metrics", &[], None).await?;
        let text = String::from_utf8_lossy(&metrics.body);
        let gauge = |name: &str| {
            text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
        };
        let left = [gauge("blog_outbox_backlog"), gauge("blog_queue_pending_deliveries")];
        if left.iter().all(|g| *g == Some(0.0)) {
            return Ok(());
        }
        if since.elapsed() > limit {
            bail!("outbox backlog and pending deliveries still {left:?} after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A quantity in MiB from KiB, one decimal.
pub(crate) fn mib(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

/// `a / b` as a ratio with two decimals.
pub(crate) fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:.2}", a / b) } else { "n/a".into() }
}

pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
