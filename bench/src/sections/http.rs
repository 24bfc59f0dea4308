//! Section 2: the API under load — `GET /tags`, `GET /posts/{id}`,
//! `GET /posts?tag=`, `POST /posts` — on the big data set, each beside the
//! fixed-JSON ceiling answering a body of the same size.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use rand::Rng;

use super::datasets::dataset;
use super::{mib, start, stop, thousands, wait_quiet};
use crate::ceiling::{self, Ceiling};
use crate::client::{self, request, LoadResult, LoadSpec, MakeRequest};
use crate::data::Posts;
use crate::report::{table, Report};
use crate::profile::{self, flame_line, split_row, where_it_goes, ThreadCpu};
use crate::service::API_KEY;
use crate::{median, Options, Spread};

/// The workload profiled into a flame graph: the slowest read, the one every reader opens.
const PROFILED: &str = "GET /posts?tag=";
/// How long the service may take to handle what an earlier run left queued.
const QUIET_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);
/// `GET /posts?tag=` picks among the most used tags: a tag cloud's links.
const TOP_TAGS: usize = 100;

/// One workload: how to make its requests and what status it answers.
struct Workload {
    name: &'static str,
    make: MakeRequest,
    status: u16,
    method: &'static str,
}

pub(crate) async fn run(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let dir = dataset(options, options.http_posts)?;
    let ids = post_ids(&dir)?;
    let service = start(options, &dir, vec![]).await?;
    // An earlier invocation's `POST /posts` leaves events in the data set's queue:
    // handling them now would rewrite the read model (and empty the read cache) under the reads.
    wait_quiet(service.addr, QUIET_LIMIT).await?;
    let workloads = workloads(service.addr, ids).await?;

    // Each workload's response size, so the ceiling answers the same bytes.
    let mut sizes = Vec::new();
    for w in &workloads {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
        let probe = client::Conn::connect(service.addr).await?.send(&(w.make)(&mut rng)).await?;
        anyhow::ensure!(probe.status == w.status, "{} answered {}: {}", w.name, probe.status, String::from_utf8_lossy(&probe.body));
        sizes.push(probe.body.len());
    }
    let ceiling = Ceiling::start(&sizes, 2)?;

    let (mut rows, mut split_rows, mut flames) = (Vec::new(), Vec::new(), Vec::new());
    for (w, &size) in workloads.iter().zip(&sizes) {
        let (mut mine, mut top, mut threads) = (Vec::new(), Vec::new(), Vec::new());
        let sampler = service.sample_rss();
        for _ in 0..options.runs.max(1) {
            let before = ThreadCpu::of(service.pid());
            let run = load(options, service.addr, w.make.clone(), w.status).await?;
            // The CPU covers the warm-up too: spread it over the requests of both.
            let requests = run.rps * (options.http_duration + options.warmup()).as_secs_f64();
            threads = before.per_unit_since(&ThreadCpu::of(service.pid()), requests.max(1.0));
            mine.push(run);
            let path = ceiling::path(size);
            let method = w.method;
            let body = (method == "POST").then(|| b"{}".to_vec());
            let make: MakeRequest = Arc::new(move |_| request(method, &path, &[], body.as_deref()));
            top.push(load(options, ceiling.addr, make, 200).await?);
        }
        let peak = sampler.finish().await;
        let (m, t) = (summarise(&mine), summarise(&top));
        // Each run's ratio to the ceiling's run beside it.
        let ratio = Spread::of(&mine.iter().zip(&top).map(|(m, t)| m.rps / t.rps).collect::<Vec<_>>());
        let spread = |f: fn(&LoadResult) -> f64, of: &[LoadResult]| Spread::of(&of.iter().map(f).collect::<Vec<_>>());
        report.remember(&format!("http_ratio_{}", w.name), ratio.median);
        report.remember(&format!("http_p99_{}", w.name), m.p99_ms);
        report.remember(&format!("http_peak_rss_kb_{}", w.name), peak as f64);
        let (count, ms) = (|v: f64| thousands(v as u64), |v: f64| format!("{v:.2}"));
        rows.push(vec![
            format!("`{}`", w.name),
            thousands(size as u64),
            spread(|r| r.rps, &mine).show(count),
            spread(|r| r.p50_ms, &mine).show(ms),
            spread(|r| r.p99_ms, &mine).show(ms),
            m.errors.to_string(),
            spread(|r| r.rps, &top).show(count),
            format!("{:.2}", t.p50_ms),
            format!("{:.2}", t.p99_ms),
            ratio.show(ms),
            mib(peak),
        ]);
        split_rows.push(split_row(format!("`{}`", w.name), &threads));
        if w.name == PROFILED && !options.quick {
            let svg = options.flame_graph("http-tag-page");
            let recording = profile::record(service.pid(), &svg);
            load(options, service.addr, w.make.clone(), w.status).await?;
            let drawn = recording.and_then(|r| r.finish(PROFILED));
            flames.push(flame_line(&svg, drawn));
        }
    }
    ceiling.stop().await;
    stop(service).await?;
    let body = format!(
        "The service on the embedded store holding {} synthetic posts over 10k tags (Zipf); {} keep-alive \
         connections from the bench's own closed-loop client, {:.1} s measured after {:.1} s of warm-up, medians \
         of {} runs with the least and greatest in brackets (a ratio's: each run's against the ceiling's run beside it). `GET /posts/{{id}}`: ids drawn at random from all the data set's posts; `GET /posts?tag=`: one of the \
         {TOP_TAGS} most used tags, first page of 20; `POST /posts`: a new post with 1–5 tags (its events flow to \
         the workers meanwhile). Baseline: a minimal actix-web server in the bench (2 workers, as the service) \
         answering a fixed JSON body of the same size — the ceiling on this machine.\n\n{}",
        thousands(options.http_posts),
        options.http_connections,
        options.http_duration.as_secs_f64(),
        options.warmup().as_secs_f64(),
        options.runs,
        table(
            &[
                "endpoint",
                "body (bytes)",
                "req/s",
                "p50 (ms)",
                "p99 (ms)",
                "errors",
                "ceiling req/s",
                "ceiling p50 (ms)",
                "ceiling p99 (ms)",
                "ratio to ceiling",
                "peak RSS (MiB)",
            ],
            rows,
        )
    );
    let threads = "request by thread (from `/proc/<pid>/task/*/stat` around the last run, warm-up included; \
         `actix-rt…` are the HTTP workers, `blog` the runtime's, `blog.sqlite` and `blog_queries.sq` the store files' \
         threads, readers on the blocking pool under `tokio-runtime-w` or `blog`)";
    report.add("2. HTTP", format!("{body}{}", where_it_goes(threads, ["endpoint", "µs per request"], split_rows, &flames, &format!("of `{PROFILED}`"))));
    Ok(())
}

async fn load(options: &Options, addr: SocketAddr, make: MakeRequest, status: u16) -> anyhow::Result<LoadResult> {
    let spec = LoadSpec {
        addr,
        connections: options.http_connections,
        duration: options.http_duration,
        warmup: options.warmup(),
        make,
        expect_status: status,
    };
    client::run_load(&spec).await
}

/// The median run by throughput, with its latencies.
fn summarise(runs: &[LoadResult]) -> LoadResult {
    let rps = median(runs.iter().map(|r| r.rps).collect());
    let p50 = median(runs.iter().map(|r| r.p50_ms).collect());
    let p99 = median(runs.iter().map(|r| r.p99_ms).collect());
    let errors = runs.iter().map(|r| r.errors).sum();
    LoadResult { rps, p50_ms: p50, p99_ms: p99, errors, ..runs[0] }
}

async fn workloads(addr: SocketAddr, ids: Vec<String>) -> anyhow::Result<Vec<Workload>> {
    let ids = Arc::new(ids);
    let cloud = client::call(addr, "GET", &format!("/tags?limit={TOP_TAGS}"), &[], None).await?.json()?;
    let tags: Arc<Vec<String>> = Arc::new(
        cloud.as_array().context("a tag cloud")?.iter().filter_map(|t| t["tag"].as_str().map(str::to_owned)).collect(),
    );
    anyhow::ensure!(!ids.is_empty() && !tags.is_empty(), "the data set has no posts or no tags");
    let posts = Arc::new(Posts::default());
    let auth: Arc<str> = format!("Bearer {API_KEY}").into();
    Ok(vec![
        Workload {
            name: "GET /tags",
            make: Arc::new(|_| request("GET", "/tags", &[], None)),
            status: 200,
            method: "GET",
        },
        Workload {
            name: "GET /posts/{id}",
            make: Arc::new(move |rng| request("GET", &format!("/posts/{}", ids[rng.random_range(0..ids.len())]), &[], None)),
            status: 200,
            method: "GET",
        },
        Workload {
            name: "GET /posts?tag=",
            make: Arc::new(move |rng| request("GET", &format!("/posts?tag={}", tags[rng.random_range(0..tags.len())]), &[], None)),
            status: 200,
            method: "GET",
        },
        Workload {
            name: "POST /posts",
            make: Arc::new(move |rng| request("POST", "/posts", &[("Authorization", &auth)], Some(&posts.input(rng)))),
            status: 201,
            method: "POST",
        },
    ])
}

/// Every post id of the data set, read from its store file (read-only, before
/// the load starts), so `GET /posts/{id}` picks among all of them, as readers
/// arriving from anywhere would: no cache can hold them all.
fn post_ids(dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let file = dir.join(blog::store::sqlite::QUERIES_FILE);
    let conn = rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", file.display()))?;
    let mut stmt = conn.prepare("SELECT id FROM post_views")?;
    let ids = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}
