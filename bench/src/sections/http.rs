//! Section 2: the API under load — `GET /tags`, `GET /posts/{id}`,
//! `GET /posts?tag=`, `POST /posts` — on the big data set, each beside the
//! fixed-JSON ceiling answering a body of the same size.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use rand::Rng;

use super::datasets::dataset;
use super::{mib, ratio, start, stop, thousands};
use crate::ceiling::{self, Ceiling};
use crate::client::{self, request, LoadResult, LoadSpec, MakeRequest};
use crate::data::Posts;
use crate::report::{table, Report};
use crate::service::API_KEY;
use crate::{median, Options};

/// Pages read to collect post ids spread over the data set.
const ID_PAGES: u64 = 20;
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
    let service = start(options, &dir, vec![]).await?;
    let workloads = workloads(service.addr).await?;

    // Each workload's response size, so the ceiling answers the same bytes.
    let mut sizes = Vec::new();
    for w in &workloads {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
        let probe = client::Conn::connect(service.addr).await?.send(&(w.make)(&mut rng)).await?;
        anyhow::ensure!(probe.status == w.status, "{} answered {}: {}", w.name, probe.status, String::from_utf8_lossy(&probe.body));
        sizes.push(probe.body.len());
    }
    let ceiling = Ceiling::start(&sizes, 2)?;

    let mut rows = Vec::new();
    for (w, &size) in workloads.iter().zip(&sizes) {
        let (mut mine, mut top) = (Vec::new(), Vec::new());
        let sampler = service.sample_rss();
        for _ in 0..options.runs.max(1) {
            mine.push(load(options, service.addr, w.make.clone(), w.status).await?);
            let path = ceiling::path(size);
            let method = w.method;
            let body = (method == "POST").then(|| b"{}".to_vec());
            let make: MakeRequest = Arc::new(move |_| request(method, &path, &[], body.as_deref()));
            top.push(load(options, ceiling.addr, make, 200).await?);
        }
        let peak = sampler.finish().await;
        let (m, t) = (summarise(&mine), summarise(&top));
        report.remember(&format!("http_ratio_{}", w.name), m.rps / t.rps);
        report.remember(&format!("http_p99_{}", w.name), m.p99_ms);
        rows.push(vec![
            format!("`{}`", w.name),
            thousands(size as u64),
            thousands(m.rps as u64),
            format!("{:.2}", m.p50_ms),
            format!("{:.2}", m.p99_ms),
            m.errors.to_string(),
            thousands(t.rps as u64),
            format!("{:.2}", t.p50_ms),
            format!("{:.2}", t.p99_ms),
            ratio(m.rps, t.rps),
            mib(peak),
        ]);
    }
    ceiling.stop().await;
    stop(service).await?;
    let body = format!(
        "The service on the embedded store holding {} synthetic posts over 10k tags (Zipf); {} keep-alive \
         connections from the bench's own closed-loop client, {:.1} s measured after {:.1} s of warm-up, medians \
         of {} runs. `GET /posts/{{id}}`: ids spread over the whole data set; `GET /posts?tag=`: one of the \
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
    report.add("2. HTTP", body);
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

async fn workloads(addr: SocketAddr) -> anyhow::Result<Vec<Workload>> {
    let ids = Arc::new(post_ids(addr).await?);
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

/// Ids from pages spread over the whole list, so reads do not all hit the newest posts.
async fn post_ids(addr: SocketAddr) -> anyhow::Result<Vec<String>> {
    let first = client::call(addr, "GET", "/posts?per_page=1", &[], None).await?.json()?;
    let total = first["total"].as_u64().context("a total")?;
    let pages = total.div_ceil(100).max(1);
    let mut ids = Vec::new();
    for k in 0..ID_PAGES.min(pages) {
        let page = 1 + k * pages / ID_PAGES.min(pages);
        let listed = client::call(addr, "GET", &format!("/posts?per_page=100&page={page}"), &[], None).await?.json()?;
        for item in listed["items"].as_array().into_iter().flatten() {
            if let Some(id) = item["id"].as_str() {
                ids.push(id.to_owned());
            }
        }
    }
    Ok(ids)
}
