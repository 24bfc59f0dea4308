//! Section 4, memory: RSS idle and over a long run of events, which must stay
//! flat; section 5, startup: exec to `/health/ready`.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::events::{delete_topology, events};
use super::{fresh_dir, mib, start, stop, thousands, wait_handled};
use crate::amqp;
use crate::report::{table, Report};
use crate::{median, Options};

/// Checkpoints of the long run.
const CHUNKS: u64 = 10;
/// Let allocations settle before reading an idle figure.
const SETTLE: Duration = Duration::from_secs(1);

pub(crate) async fn run(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    // Idle: embedded defaults, an empty data dir.
    let dir = fresh_dir(options, "memory-idle")?;
    let service = start(options, &dir, vec![]).await?;
    tokio::time::sleep(SETTLE).await;
    let idle = service.rss_kb();
    stop(service).await?;
    report.remember("idle_rss_kb", idle as f64);

    // The long run: RabbitMQ (the faster transport), checkpoints after every chunk.
    let prefix = format!("bench-mem-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let dir = fresh_dir(options, "memory-events")?;
    let env = vec![("BLOG_BROKER_URL", options.amqp_url.clone()), ("BLOG_AMQP_PREFIX", prefix.clone())];
    let service = start(options, &dir, env).await?;
    tokio::time::sleep(SETTLE).await;
    let connection = amqp::connect(&options.amqp_url, &format!("{prefix}-bench-publish")).await?;
    let channel = connection.open_channel(None).await?;
    let mut points = vec![(0, service.rss_kb(), service.rss_kb())];
    let chunk = (options.memory_events / CHUNKS).max(1);
    let (mut sent, started) = (0, Instant::now());
    while sent < options.memory_events {
        let messages = events(chunk.min(options.memory_events - sent), 100 + sent);
        let sampler = service.sample_rss();
        amqp::publish(&channel, &format!("{prefix}.events"), &amqp::post_queues(&prefix), &messages).await?;
        sent += messages.len() as u64;
        wait_handled(service.addr, sent, started, Duration::from_secs(3600)).await?;
        let peak = sampler.finish().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        points.push((sent, service.rss_kb(), peak));
    }
    let took = started.elapsed();
    stop(service).await?;
    delete_topology(&connection, &prefix).await;
    let _ = channel.close().await;
    let _ = connection.close().await;

    let after_first = points[1].1;
    // The page caches of the store's connections fill up to their set size as the
    // data grows (a few hundred thousand events here): growth until then is a
    // warm-up with a ceiling. Flat means the second half adds nothing.
    let (half_at, half, _) = points[points.len() / 2];
    let last = points.last().map_or(0, |p| p.1);
    let growth = last as f64 / after_first.max(1) as f64;
    let second_half = last as f64 / half.max(1) as f64;
    report.remember("rss_after_events_kb", last as f64);
    report.remember("rss_growth", growth);
    report.remember("rss_growth_second_half", second_half);
    let rows = points
        .iter()
        .map(|(n, rss, peak)| vec![thousands(*n), mib(*rss), mib(*peak)])
        .collect();
    let body = format!(
        "Idle: the service on embedded defaults with an empty data dir, {:.0} s after it answered ready: \
         **{} MiB** RSS. Peaks under each load are in the other sections' tables.\n\n\
         Long run: {} `post.created` events through RabbitMQ (prefetch 200) in {CHUNKS} chunks, RSS read after \
         each chunk was handled (and the peak while it ran); {:.0} s in all, {} events/s. RSS after the last \
         chunk over RSS after {} events: **{second_half:.2}** (flat is 1.0); over RSS after the first chunk: \
         {growth:.2} — the store's page caches (2 MiB per SQLite connection) fill while the data grows, then \
         stay at their size (see \"Where the time goes\").\n\n{}",
        SETTLE.as_secs_f64(),
        mib(idle),
        thousands(options.memory_events),
        took.as_secs_f64(),
        thousands((options.memory_events as f64 / took.as_secs_f64()) as u64),
        thousands(half_at),
        table(&["events handled", "RSS after (MiB)", "peak while handling (MiB)"], rows),
    );
    report.add("4. Memory", body);
    Ok(())
}

pub(crate) async fn startup(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let runs = if options.quick { 2 } else { 7 };
    let mut ready = Vec::new();
    for _ in 0..runs {
        let dir = fresh_dir(options, "startup")?;
        let service = start(options, &dir, vec![]).await?;
        ready.push(service.ready_after.as_secs_f64() * 1000.0);
        stop(service).await?;
    }
    let mut floor = Vec::new();
    for _ in 0..runs {
        let at = Instant::now();
        let out = Command::new(&options.blog_bin).arg("--version").output()?;
        if !out.status.success() {
            bail!("blog --version failed");
        }
        floor.push(at.elapsed().as_secs_f64() * 1000.0);
    }
    let (ready, floor) = (median(ready), median(floor));
    report.remember("startup_ms", ready);
    let body = format!(
        "From exec to the first 200 of `GET /health/ready` (polled every 2 ms) on embedded defaults with an \
         empty data dir: store and queue files created, workers started, HTTP bound; median of {runs} starts. \
         Baseline: exec to exit of `blog --version`, the floor of starting this binary at all.\n\n{}",
        table(
            &["exec → ready (ms)", "`blog --version` (ms)", "difference (ms)"],
            vec![vec![format!("{ready:.1}"), format!("{floor:.1}"), format!("{:.1}", ready - floor)]],
        )
    );
    report.add("5. Startup", body);
    Ok(())
}
