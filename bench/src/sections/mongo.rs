//! The MongoDB issue's figures: the full tag-cloud rebuild at each size and
//! `POST /posts` throughput, on the embedded store and on the nx-27017
//! stand-in (Python over SQLite: slow, and not MongoDB — its figures say what
//! the service's MongoDB path costs against that server, not what MongoDB 7 would do).

use std::time::Duration;

use anyhow::{bail, Context as _};

use super::datasets::dataset;
use super::{fresh_dir, load_synthetic, start, stop, thousands};
use crate::client::{self, request, LoadSpec, MakeRequest};
use crate::data::Posts;
use crate::report::{table, Report};
use crate::service::{Service, API_KEY};
use crate::{median, Options};

/// Fresh database names on the stand-in: `<name>` and `<name>_q`.
fn names() -> (String, String) {
    let main = format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    (main.clone(), format!("{main}_q"))
}

fn mongo_env(options: &Options, db: &str, queries: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BLOG_STORE_URL", options.mongo_url.clone()),
        ("BLOG_DB", db.to_owned()),
        ("BLOG_QUERIES_DB", queries.to_owned()),
    ]
}

async fn drop_databases(options: &Options, names: &[&str]) {
    if let Ok(client) = mongodb::Client::with_uri_str(&options.mongo_url).await {
        for name in names {
            let _ = client.database(name).drop().await;
        }
    }
}

/// `POST /admin/tag-cloud/rebuild` answers 503 after 120 s (the rebuild goes on):
/// a rebuild the load saw take longer than this is not asked of the API.
const API_ANSWER_LIMIT: Duration = Duration::from_secs(100);

/// Median server-side rebuild time (ms) on a running service.
async fn rebuild_ms(options: &Options, service: &Service) -> anyhow::Result<f64> {
    let auth = format!("Bearer {API_KEY}");
    let mut took = Vec::new();
    for _ in 0..options.runs.max(1) {
        let answer =
            client::call(service.addr, "POST", "/admin/tag-cloud/rebuild", &[("Authorization", &auth)], None).await?;
        if answer.status != 200 {
            bail!("rebuild answered {}: {}", answer.status, String::from_utf8_lossy(&answer.body));
        }
        took.push(answer.json()?["took_ms"].as_f64().context("took_ms")?);
    }
    Ok(median(took))
}

/// `POST /posts` requests per second on a running service.
async fn post_rate(options: &Options, service: &Service) -> anyhow::Result<(f64, f64)> {
    let posts = std::sync::Arc::new(Posts::default());
    let auth = format!("Bearer {API_KEY}");
    let make: MakeRequest =
        std::sync::Arc::new(move |rng| request("POST", "/posts", &[("Authorization", &auth)], Some(&posts.input(rng))));
    let spec = LoadSpec {
        addr: service.addr,
        connections: options.http_connections,
        duration: options.http_duration,
        warmup: if options.quick { Duration::from_millis(100) } else { Duration::from_secs(1) },
        make,
        expect_status: 201,
    };
    let mut rates = Vec::new();
    let mut p99 = Vec::new();
    for _ in 0..options.runs.max(1) {
        let r = client::run_load(&spec).await?;
        anyhow::ensure!(r.errors == 0, "{} POST /posts failed", r.errors);
        rates.push(r.rps);
        p99.push(r.p99_ms);
    }
    Ok((median(rates), median(p99)))
}

pub(crate) async fn run(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for &posts in &options.mongo_sizes {
        let embedded_dir = dataset(options, posts)?;
        let service = start(options, &embedded_dir, vec![]).await?;
        let embedded = rebuild_ms(options, &service).await?;
        stop(service).await?;

        let (db, queries) = names();
        let env = mongo_env(options, &db, &queries);
        let loaded = load_synthetic(options, &fresh_dir(options, "mongo-load")?, posts, &env)?;
        // Past the API's answer limit the rebuild is timed where the load ran it (the same store call).
        let (standin, mark) = match loaded.rebuild {
            Some(took) if took > API_ANSWER_LIMIT => (Ok(took.as_secs_f64() * 1000.0), " †"),
            _ => {
                let service = start(options, &fresh_dir(options, "mongo-rebuild")?, env).await?;
                let standin = rebuild_ms(options, &service).await;
                stop(service).await?;
                (standin, "")
            }
        };
        drop_databases(options, &[&db, &queries]).await;
        let standin = standin?;
        rows.push(vec![
            thousands(posts),
            format!("{embedded:.0}"),
            format!("{standin:.0}{mark}"),
            format!("{:.1}", standin / embedded.max(0.001)),
            format!("{:.1}", loaded.took.as_secs_f64()),
        ]);
    }

    let service = start(options, &fresh_dir(options, "post-embedded")?, vec![]).await?;
    let (embedded_rate, embedded_p99) = post_rate(options, &service).await?;
    stop(service).await?;
    let (db, queries) = names();
    let service = start(options, &fresh_dir(options, "post-mongo")?, mongo_env(options, &db, &queries)).await?;
    let standin = post_rate(options, &service).await;
    stop(service).await?;
    drop_databases(options, &[&db, &queries]).await;
    let (standin_rate, standin_p99) = standin?;

    let sizes: Vec<String> = options.mongo_sizes.iter().map(|n| n.to_string()).collect();
    let body = format!(
        "The same synthetic posts (10k tags, Zipf) on the embedded store and on the nx-27017 stand-in \
         (`--db memory`); the service runs with the embedded queue beside either store. Rebuild: the server's \
         `took_ms`, median of {runs} runs; load: `blog load --synthetic N` into the stand-in. Reproduce: \
         `cargo run --release -p blog-bench -- --only mongo --mongo-sizes {}`; 1M posts on the stand-in: \
         `--mongo-sizes 1000000` (slow: the stand-in is Python over SQLite). † One run, timed by `blog load` around \
         the same store call: the API answers 503 to a rebuild that takes over 120 s (it still finishes).\n\n{}\n\n\
         `POST /posts` on a fresh store, {} connections, {:.1} s, medians of {runs} runs:\n\n{}",
        sizes.join(","),
        table(&["posts", "embedded rebuild (ms)", "stand-in rebuild (ms)", "stand-in / embedded", "stand-in load (s)"], rows),
        options.http_connections,
        options.http_duration.as_secs_f64(),
        table(
            &["store", "POST /posts req/s", "p99 (ms)"],
            vec![
                vec!["embedded SQLite".into(), thousands(embedded_rate as u64), format!("{embedded_p99:.2}")],
                vec!["MongoDB stand-in".into(), thousands(standin_rate as u64), format!("{standin_p99:.2}")],
            ],
        ),
        runs = options.runs,
    );
    report.add("6. MongoDB stand-in", body);
    Ok(())
}
