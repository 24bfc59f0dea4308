//! `bench`: runs the benchmark suite and writes BENCHMARKS.md.
//!
//! `cargo run --release -p blog-bench -- [--quick] [--only events,http,…] [--out PATH]`

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use blog_bench::{Options, Section};
use clap::Parser;

/// Runs every workload beside its baseline and writes a markdown report.
#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Args {
    /// Tiny sizes and short runs (seconds): what the test suite runs; its figures mean nothing.
    #[arg(long)]
    quick: bool,
    /// Only these sections: load, events, http, rebuild, memory, startup, mongo (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<Section>,
    /// Where the report goes.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// The service binary; by default `cargo build --release --bin blog` is run and target/release/blog used.
    #[arg(long)]
    blog_bin: Option<PathBuf>,
    /// Data sets and logs.
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
    /// Repetitions of each measurement (the report gives medians).
    #[arg(long)]
    runs: Option<usize>,
    /// Post counts of the MongoDB stand-in section, e.g. 10000,100000,1000000.
    #[arg(long, value_delimiter = ',')]
    mongo_sizes: Vec<u64>,
    /// Post counts of the rebuild section.
    #[arg(long, value_delimiter = ',')]
    rebuild_sizes: Vec<u64>,
    /// Events per end-to-end run.
    #[arg(long)]
    events: Option<u64>,
    /// Posts in the HTTP section's data set (default 1,000,000): a smaller one for a quick A/B.
    #[arg(long)]
    http_posts: Option<u64>,
    /// Seconds each HTTP workload runs (default 5).
    #[arg(long)]
    http_seconds: Option<u64>,
    /// Events of the memory run.
    #[arg(long)]
    memory_events: Option<u64>,
    /// Prefetch values of the events section, e.g. 50,200,1000.
    #[arg(long, value_delimiter = ',')]
    prefetch: Vec<u16>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let blog_bin = match args.blog_bin.clone().map_or_else(build_blog, Ok) {
        Ok(bin) => bin,
        Err(e) => {
            eprintln!("bench: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let make = if args.quick { Options::quick } else { Options::full };
    let mut options = make(blog_bin, args.work_dir.clone(), args.out.clone());
    if !args.only.is_empty() {
        options.sections = args.only.clone();
    }
    if let Some(runs) = args.runs {
        options.runs = runs;
    }
    if !args.mongo_sizes.is_empty() {
        options.mongo_sizes = args.mongo_sizes.clone();
    }
    if !args.rebuild_sizes.is_empty() {
        options.rebuild_sizes = args.rebuild_sizes.clone();
    }
    if !args.prefetch.is_empty() {
        options.prefetches = args.prefetch.clone();
    }
    options.events = args.events.unwrap_or(options.events);
    options.http_posts = args.http_posts.unwrap_or(options.http_posts);
    if let Some(seconds) = args.http_seconds {
        options.http_duration = std::time::Duration::from_secs(seconds);
    }
    options.memory_events = args.memory_events.unwrap_or(options.memory_events);
    options.command = std::iter::once("cargo run --release -p blog-bench --".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    if std::env::args().len() == 1 {
        options.command = "cargo run --release -p blog-bench".into();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(blog_bench::run(&options)) {
        Ok(_) => {
            eprintln!("bench: wrote {}", options.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the service in release mode and answers where the binary is.
fn build_blog() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("bench: cargo build --release --bin blog");
    let status = Command::new(cargo).current_dir(root).args(["build", "--release", "--bin", "blog"]).status()?;
    anyhow::ensure!(status.success(), "building the blog binary failed");
    Ok(root.join("target/release/blog"))
}
