//! The benchmark suite of the blog service. One command runs every workload
//! beside its baseline in the same invocation and writes a markdown report.
//!
//! - [`service`]: the real `blog` binary as a child process (ready time, RSS).
//! - [`client`]: the HTTP load generator (keep-alive, HDR histogram).
//! - [`ceiling`]: the fixed-JSON actix-web server, the HTTP baseline.
//! - [`amqp`]: publishing events, and the bare consume-and-ack baseline.
//! - [`data`]: the posts and events the bench sends.
//! - [`sections`]: the workloads: bulk load, events, HTTP, rebuild, memory, startup, MongoDB.
//! - [`profile`]: CPU by thread, and flame graphs (perf + inferno).
//! - [`report`]: the machine, the versions, the tables.

pub mod amqp;
pub mod ceiling;
pub mod client;
pub mod data;
pub mod profile;
pub mod report;
pub mod sections;
pub mod service;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context as _;

pub use report::Report;

/// The workloads, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Load,
    Events,
    Http,
    Rebuild,
    Memory,
    Startup,
    Mongo,
}

impl Section {
    pub const ALL: [Section; 7] =
        [Section::Load, Section::Rebuild, Section::Http, Section::Events, Section::Memory, Section::Startup, Section::Mongo];
}

impl FromStr for Section {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "load" => Section::Load,
            "events" => Section::Events,
            "http" => Section::Http,
            "rebuild" => Section::Rebuild,
            "memory" => Section::Memory,
            "startup" => Section::Startup,
            "mongo" => Section::Mongo,
            other => return Err(format!("unknown section {other:?} (load, events, http, rebuild, memory, startup, mongo)")),
        })
    }
}

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct Options {
    /// Small sizes and short runs: seconds, for the test suite.
    pub quick: bool,
    pub sections: Vec<Section>,
    /// Where the markdown report goes.
    pub out: PathBuf,
    /// The service binary (a release build for real figures).
    pub blog_bin: PathBuf,
    /// Data sets, service data dirs and logs.
    pub work_dir: PathBuf,
    pub amqp_url: String,
    pub mongo_url: String,
    /// Repetitions of each measurement; the report gives medians.
    pub runs: usize,
    /// Post counts of the rebuild section (embedded store).
    pub rebuild_sizes: Vec<u64>,
    /// Post counts of the MongoDB stand-in section.
    pub mongo_sizes: Vec<u64>,
    /// Posts of the HTTP data set.
    pub http_posts: u64,
    /// Events per end-to-end run.
    pub events: u64,
    /// Events of the memory run.
    pub memory_events: u64,
    pub prefetches: Vec<u16>,
    /// Measured time per HTTP workload.
    pub http_duration: Duration,
    pub http_connections: usize,
    /// The command line that reproduces this run, for the report.
    pub command: String,
}

impl Options {
    /// The full run's sizes.
    pub fn full(blog_bin: PathBuf, work_dir: PathBuf, out: PathBuf) -> Self {
        Self {
            quick: false,
            sections: Section::ALL.to_vec(),
            out,
            blog_bin,
            work_dir,
            amqp_url: std::env::var("BLOG_BENCH_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672".into()),
            mongo_url: std::env::var("BLOG_BENCH_MONGO_URL")
                .unwrap_or_else(|_| "mongodb://127.0.0.1:27018/?directConnection=true&serverSelectionTimeoutMS=5000".into()),
            runs: 3,
            rebuild_sizes: vec![10_000, 100_000, 1_000_000],
            mongo_sizes: vec![10_000, 100_000],
            http_posts: 1_000_000,
            events: 50_000,
            memory_events: 1_000_000,
            prefetches: vec![50, 200, 1000],
            http_duration: Duration::from_secs(5),
            http_connections: 16,
            command: "cargo run --release -p blog-bench".into(),
        }
    }

    /// The test suite's run: every section, tiny sizes.
    pub fn quick(blog_bin: PathBuf, work_dir: PathBuf, out: PathBuf) -> Self {
        Self {
            quick: true,
            runs: 1,
            rebuild_sizes: vec![1_000, 3_000],
            mongo_sizes: vec![300],
            http_posts: 3_000,
            events: 1_000,
            memory_events: 3_000,
            prefetches: vec![200],
            http_duration: Duration::from_millis(400),
            http_connections: 8,
            command: "cargo run --release -p blog-bench -- --quick".into(),
            ..Self::full(blog_bin, work_dir, out)
        }
    }

    /// Where the flame graph `name` goes: `flamegraphs/` beside the report.
    pub fn flame_graph(&self, name: &str) -> PathBuf {
        let dir = self.out.parent().unwrap_or(std::path::Path::new("")).join("flamegraphs");
        let _ = std::fs::create_dir_all(&dir);
        dir.join(format!("{name}.svg"))
    }

    pub fn warmup(&self) -> Duration {
        if self.quick { Duration::from_millis(100) } else { Duration::from_secs(1) }
    }
}

/// Runs the chosen sections and writes the report; answers it too.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    std::fs::create_dir_all(&options.work_dir)
        .with_context(|| format!("creating the work dir {}", options.work_dir.display()))?;
    anyhow::ensure!(options.blog_bin.exists(), "no blog binary at {}", options.blog_bin.display());
    let mut report = Report::new(options);
    for section in Section::ALL.into_iter().filter(|s| options.sections.contains(s)) {
        eprintln!("bench: {section:?}…");
        let at = Instant::now();
        sections::run(section, options, &mut report).await.with_context(|| format!("section {section:?}"))?;
        eprintln!("bench: {section:?} took {:.0} s", at.elapsed().as_secs_f64());
    }
    report.finish(started.elapsed());
    std::fs::write(&options.out, report.markdown()).with_context(|| format!("writing {}", options.out.display()))?;
    Ok(report)
}

/// The middle value (the mean of the two middle ones for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) { (values[mid - 1] + values[mid]) / 2.0 } else { values[mid] }
}

/// A measurement over its runs: the median the tables lead with, and the
/// least and greatest run, so a report shows its own spread.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Self {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Self { median: median(values.to_vec()), min, max }
    }

    /// "median (min–max)" with `show` formatting each; the median alone when all runs agree.
    pub fn show(&self, show: impl Fn(f64) -> String) -> String {
        let (median, min, max) = (show(self.median), show(self.min), show(self.max));
        if min == max { median } else { format!("{median} ({min}–{max})") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_shows_the_median_and_the_range_of_its_runs() {
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!(s.show(|v| format!("{v:.0}")), "2 (1–3)");
        assert_eq!(Spread::of(&[5.0]).show(|v| format!("{v:.1}")), "5.0");
    }
}
