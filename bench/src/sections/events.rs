//! Section 1: post events end to end, publish → reader → worker → effect →
//! ack, on RabbitMQ and on the embedded queue, at each prefetch, beside the
//! bare amqprs consume-and-ack loop on the same broker.
//!
//! A `post.created` event goes to two workers (tag aggregator and projector),
//! each committing to the store; the run ends when both counted every event
//! handled (`GET /actors`). On RabbitMQ the bench publishes to the service's
//! exchange as another service would; the embedded queue has no such door, so
//! there the events come in through `POST /posts` (outbox → relay → queue).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amqprs::channel::{ExchangeDeleteArguments, QueueDeleteArguments};
use anyhow::bail;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{fresh_dir, mib, ratio, start, stop, thousands, wait_handled};
use crate::amqp::{self, Message, QueueKind};
use crate::client::{request, Conn};
use crate::data::Posts;
use crate::report::{table, Report};
use crate::profile::{self, flame_line, split_row, where_it_goes, Recording, ThreadCpu};
use crate::service::{broker_pid, cpu_seconds, Service, API_KEY};
use crate::{median, Options, Spread};

/// How long one run may take before the bench calls it stuck.
const RUN_LIMIT: Duration = Duration::from_secs(600);
/// Concurrent `POST /posts` clients for the embedded queue.
const POSTERS: usize = 16;

pub(crate) fn events(n: u64, seed: u64) -> Vec<Message> {
    let (posts, mut rng) = (Posts::default(), StdRng::seed_from_u64(seed));
    (0..n).map(|_| posts.created_event(&mut rng)).collect()
}

/// One measured run of the service: events per second and peak RSS (KiB).
pub(crate) struct Run {
    pub rate: f64,
    pub peak_kb: u64,
    /// CPU per event of the broker and of the service, in µs (0 when unknown).
    pub broker_us: f64,
    pub service_us: f64,
    /// CPU µs per event by thread name, the largest first.
    pub threads: Vec<(String, f64)>,
    /// The flame graph drawn, if one was asked for: `Err` says why not.
    pub flame: Result<(), String>,
}

/// The broker's CPU seconds so far (0 when it does not run on this machine).
fn broker_cpu(options: &Options) -> f64 {
    broker_pid(&options.amqp_url).map_or(0.0, cpu_seconds)
}

pub(crate) async fn run(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let (mut rows, mut split_rows, mut flames) = (Vec::new(), Vec::new(), Vec::new());
    for &prefetch in &options.prefetches {
        let (mut bare, mut bare_classic, mut rabbit, mut embedded) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut rabbit_peak, mut embedded_peak) = (0, 0);
        let (mut bare_broker, mut broker, mut service, mut embedded_cpu) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut rabbit_threads, mut embedded_threads) = (Vec::new(), Vec::new());
        for i in 0..options.runs.max(1) {
            let messages = events(options.events, i as u64);
            let before = broker_cpu(options);
            bare.push(amqp::bare_consume_ack(&options.amqp_url, prefetch, &messages, RUN_LIMIT, QueueKind::Quorum).await?);
            bare_broker.push((broker_cpu(options) - before) * 1e6 / options.events as f64);
            bare_classic.push(amqp::bare_consume_ack(&options.amqp_url, prefetch, &messages, RUN_LIMIT, QueueKind::Classic).await?);
            let r = on_rabbitmq(options, prefetch, &messages, None).await?;
            rabbit.push(r.rate);
            rabbit_peak = rabbit_peak.max(r.peak_kb);
            broker.push(r.broker_us);
            service.push(r.service_us);
            rabbit_threads = r.threads;
            let e = on_embedded(options, prefetch, options.events, None).await?;
            embedded.push(e.rate);
            embedded_cpu.push(e.service_us);
            embedded_peak = embedded_peak.max(e.peak_kb);
            embedded_threads = e.threads;
        }
        // Each run's ratio against the bare loop of the same run: their spread is the ratio's.
        let ratios = |of: &[f64]| -> Vec<f64> { of.iter().zip(&bare).map(|(e, b)| e / b).collect() };
        let (rabbit_ratio, embedded_ratio) = (Spread::of(&ratios(&rabbit)), Spread::of(&ratios(&embedded)));
        let (bare_s, bare_classic_s) = (Spread::of(&bare), Spread::of(&bare_classic));
        report.remember(&format!("events_ratio_rabbit_{prefetch}"), rabbit_ratio.median);
        report.remember(&format!("events_ratio_embedded_{prefetch}"), embedded_ratio.median);
        report.remember(&format!("events_quorum_over_classic_{prefetch}"), bare_s.median / bare_classic_s.median);
        let count = |v: f64| thousands(v as u64);
        let two = |v: f64| format!("{v:.2}");
        rows.push(vec![
            prefetch.to_string(),
            bare_classic_s.show(count),
            bare_s.show(count),
            ratio(bare_s.median, bare_classic_s.median),
            Spread::of(&rabbit).show(count),
            rabbit_ratio.show(two),
            format!("{:.0} / {:.0}", median(bare_broker), median(broker)),
            format!("{:.0}", median(service)),
            mib(rabbit_peak),
            Spread::of(&embedded).show(count),
            embedded_ratio.show(two),
            format!("{:.0}", median(embedded_cpu)),
            mib(embedded_peak),
        ]);
        split_rows.push(split_row(format!("RabbitMQ, prefetch {prefetch}"), &rabbit_threads));
        split_rows.push(split_row(format!("embedded, prefetch {prefetch}"), &embedded_threads));
        if prefetch == profiled_prefetch(options) && !options.quick {
            let messages = events(options.events, 99);
            let svg = options.flame_graph("events-rabbitmq");
            flames.push(flame_line(&svg, on_rabbitmq(options, prefetch, &messages, Some(&svg)).await?.flame));
            let svg = options.flame_graph("events-embedded");
            flames.push(flame_line(&svg, on_embedded(options, prefetch, options.events, Some(&svg)).await?.flame));
        }
    }
    let body = format!(
        "{} `post.created` events per run (1–5 Zipf tags each), each handled by every worker that takes post events (tag aggregator, \
         projector, feed writer), each committing to the embedded SQLite store; events/s from the first publish until each of \
         them counted every event handled; medians of {} runs, with the least and greatest run in brackets \
         (a ratio's spread is that of each run's ratio to the bare loop of the same run). The publisher is paced the same way for both: it \
         sends {} messages at a time and waits while either queue holds more than {} ready messages, so each \
         run measures the rate the consumers sustain, not how fast a backlog piles up (a backlog the broker pages \
         to its message store costs it ~1.5× the CPU per message; unpaced, the service's runs gave 0.19–0.28). \
         The service declares quorum queues (its default, BLOG_AMQP_QUEUE_TYPE). \
         Baseline: the bare amqprs loop on the same \
         broker in the same run — the same durable topic exchange and two durable quorum queues, the same persistent \
         messages and prefetch, each delivery acked as it arrives, no work; beside it the same bare loop on classic \
         queues, for what a quorum queue costs (single node here: no replication, but its Raft log is written and fsynced). Embedded: the events enter through \
         `POST /posts` ({POSTERS} keep-alive clients), so its figure includes the HTTP write and the outbox relay. \
         CPU per event: the broker's (`beam.smp`, from /proc) in the bare run and in the service's run, and the \
         service process's — where the time goes.\n\n{}",
        thousands(options.events),
        options.runs,
        amqp::PUBLISH_CHUNK,
        amqp::READY_MAX,
        table(
            &[
                "prefetch",
                "bare consume+ack, classic queues (events/s)",
                "bare consume+ack, quorum queues (events/s)",
                "quorum / classic",
                "RabbitMQ e2e (events/s)",
                "ratio to bare",
                "broker CPU µs/event, bare / e2e",
                "service CPU µs/event",
                "peak RSS RabbitMQ (MiB)",
                "embedded e2e (events/s)",
                "ratio to bare",
                "service CPU µs/event",
                "peak RSS embedded (MiB)",
            ],
            rows,
        )
    );
    let threads = "event by thread (from `/proc/<pid>/task/*/stat` around the last measured run; `blog` is the \
         runtime's threads: AMQP client, actors, HTTP; `blog_queries.sq` and `blog.sqlite` the writer threads of the \
         two store files, with their syncer and checkpoint threads under their own names)";
    report.add("1. Events end to end", format!("{body}{}", where_it_goes(threads, ["run", "µs per event"], split_rows, &flames, &format!("at prefetch {}", profiled_prefetch(options)))));
    Ok(())
}

/// The service on RabbitMQ with its own queue prefix, fed `messages`.
pub(crate) async fn on_rabbitmq(options: &Options, prefetch: u16, messages: &[Message], flame: Option<&Path>) -> anyhow::Result<Run> {
    let prefix = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let dir = fresh_dir(options, "events-rabbitmq")?;
    let env = vec![
        ("BLOG_BROKER_URL", options.amqp_url.clone()),
        ("BLOG_AMQP_PREFIX", prefix.clone()),
        ("BLOG_PREFETCH", prefetch.to_string()),
    ];
    let service = start(options, &dir, env).await?;
    let connection = amqp::connect(&options.amqp_url, &format!("{prefix}-bench-publish")).await?;
    let channel = connection.open_channel(None).await?;
    let sampler = service.sample_rss();
    let watch = Watch::start(&service, flame);
    let broker_before = broker_cpu(options);
    let started = Instant::now();
    amqp::publish(&channel, &format!("{prefix}.events"), &amqp::post_queues(&prefix), messages).await?;
    wait_handled(service.addr, messages.len() as u64, started, RUN_LIMIT).await?;
    let rate = messages.len() as f64 / started.elapsed().as_secs_f64();
    let n = messages.len() as f64;
    let broker_us = (broker_cpu(options) - broker_before) * 1e6 / n;
    let (service_us, threads, flame) = watch.finish(&service, n, "events end to end on RabbitMQ");
    let peak_kb = sampler.finish().await;
    stop(service).await?;
    delete_topology(&connection, &prefix).await;
    let _ = channel.close().await;
    let _ = connection.close().await;
    Ok(Run { rate, peak_kb, broker_us, service_us, threads, flame })
}

/// The service on the embedded queue, fed `n` posts through `POST /posts` (each one `post.created`).
pub(crate) async fn on_embedded(options: &Options, prefetch: u16, n: u64, flame: Option<&Path>) -> anyhow::Result<Run> {
    let dir = fresh_dir(options, "events-embedded")?;
    let service = start(options, &dir, vec![("BLOG_PREFETCH", prefetch.to_string())]).await?;
    let sampler = service.sample_rss();
    let watch = Watch::start(&service, flame);
    let started = Instant::now();
    post_posts(service.addr, n).await?;
    wait_handled(service.addr, n, started, RUN_LIMIT).await?;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let (service_us, threads, flame) = watch.finish(&service, n as f64, "events end to end on the embedded queue");
    let peak_kb = sampler.finish().await;
    stop(service).await?;
    Ok(Run { rate, peak_kb, broker_us: 0.0, service_us, threads, flame })
}

/// The service's CPU over one run: in all, by thread, and as a flame graph when asked.
struct Watch {
    cpu: f64,
    threads: ThreadCpu,
    recording: Option<Result<Recording, String>>,
}

impl Watch {
    fn start(service: &Service, flame: Option<&Path>) -> Self {
        let recording = flame.map(|svg| profile::record(service.pid(), svg));
        Self { cpu: cpu_seconds(service.pid()), threads: ThreadCpu::of(service.pid()), recording }
    }

    /// CPU µs per unit in all, the split by thread, and the flame graph's fate.
    fn finish(self, service: &Service, units: f64, title: &str) -> (f64, Vec<(String, f64)>, Result<(), String>) {
        let us = (cpu_seconds(service.pid()) - self.cpu) * 1e6 / units;
        let threads = self.threads.per_unit_since(&ThreadCpu::of(service.pid()), units);
        let flame = match self.recording {
            None => Err("not asked for".into()),
            Some(recording) => recording.and_then(|r| r.finish(title)),
        };
        (us, threads, flame)
    }
}

/// The prefetch whose run is profiled: 200 when measured, else the first.
fn profiled_prefetch(options: &Options) -> u16 {
    if options.prefetches.contains(&200) { 200 } else { options.prefetches.first().copied().unwrap_or(200) }
}

/// Exactly `n` created posts (`POST /posts`, each one `post.created` through the outbox),
/// from [`POSTERS`] keep-alive clients.
pub(crate) async fn post_posts(addr: SocketAddr, n: u64) -> anyhow::Result<()> {
    let left = Arc::new(AtomicU64::new(n));
    let tasks: Vec<_> = (0..POSTERS)
        .map(|i| {
            let left = left.clone();
            tokio::spawn(async move {
                let (posts, mut rng) = (Posts::default(), StdRng::seed_from_u64(1000 + i as u64));
                let auth = format!("Bearer {API_KEY}");
                let mut conn = Conn::connect(addr).await?;
                while left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1)).is_ok() {
                    let body = posts.post_input(&mut rng);
                    let answer = conn.send(&request("POST", "/posts", &[("Authorization", &auth)], Some(&body))).await?;
                    if answer.status != 201 {
                        bail!("POST /posts answered {}: {}", answer.status, String::from_utf8_lossy(&answer.body));
                    }
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Deletes what the service declared under `prefix` (durable queues outlive it).
pub(crate) async fn delete_topology(connection: &amqprs::connection::Connection, prefix: &str) {
    let workers = blog::startup::registered_workers();
    let mut queues: Vec<String> = vec![format!("{prefix}.unrouted"), format!("{prefix}.unrouted.parked")];
    for w in workers.iter().map(|w| w.name()) {
        queues.push(format!("{prefix}.{w}"));
        queues.push(format!("{prefix}.{w}.parked"));
        // The default retry policy's levels (1 s doubling, 5 attempts).
        for ms in [1000, 2000, 4000, 8000] {
            queues.push(format!("{prefix}.{w}.retry.{ms}"));
        }
    }
    let Ok(channel) = connection.open_channel(None).await else { return };
    for queue in queues {
        let _ = channel.queue_delete(QueueDeleteArguments::new(&queue)).await;
    }
    for exchange in [format!("{prefix}.events"), format!("{prefix}.unrouted")] {
        let _ = channel.exchange_delete(ExchangeDeleteArguments::new(&exchange)).await;
    }
    let _ = channel.close().await;
}
