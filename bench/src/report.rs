//! The report: machine, versions, settings, the targets at a glance, one
//! section per workload, and the notes on where the time goes.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use crate::Options;

/// What the profile showed and what was changed: kept beside the code that
/// writes the tables, and copied into every report.
const NOTES: &str = include_str!("notes.md");

/// Each endpoint's wanted ratio to the fixed-JSON ceiling and p99 in ms (issue 16's targets).
const HTTP_TARGETS: &[(&str, f64, f64)] =
    &[("GET /tags", 0.7, 5.0), ("GET /posts/{id}", 0.6, 3.0), ("GET /posts?tag=", 0.5, 3.0), ("POST /posts", 0.15, 5.0)];

/// The report being written.
pub struct Report {
    quick: bool,
    command: String,
    settings: Vec<(String, String)>,
    sections: Vec<(String, String)>,
    /// Figures the headline reads (ratios, times), by key.
    figures: BTreeMap<String, f64>,
    took: Duration,
    machine: Vec<(String, String)>,
}

impl Report {
    pub fn new(options: &Options) -> Self {
        let settings = vec![
            ("runs per measurement (median)".into(), options.runs.to_string()),
            ("events per e2e run".into(), options.events.to_string()),
            ("prefetch".into(), format!("{:?}", options.prefetches)),
            ("HTTP data set (posts)".into(), options.http_posts.to_string()),
            ("HTTP connections × measured time".into(), format!("{} × {:?}", options.http_connections, options.http_duration)),
            ("rebuild sizes (posts)".into(), format!("{:?}", options.rebuild_sizes)),
            ("stand-in sizes (posts)".into(), format!("{:?}", options.mongo_sizes)),
            ("events of the memory run".into(), options.memory_events.to_string()),
            ("service log level".into(), "RUST_LOG=warn (see the notes)".into()),
            ("service binary".into(), options.blog_bin.display().to_string()),
        ];
        Self {
            quick: options.quick,
            command: options.command.clone(),
            settings,
            sections: Vec::new(),
            figures: BTreeMap::new(),
            took: Duration::ZERO,
            machine: machine(options),
        }
    }

    /// Adds a section (a `## title` and its markdown).
    pub fn add(&mut self, title: &str, body: String) {
        self.sections.push((title.to_owned(), body));
    }

    /// Keeps a figure for the headline.
    pub fn remember(&mut self, key: &str, value: f64) {
        self.figures.insert(key.to_owned(), value);
    }

    pub fn figure(&self, key: &str) -> Option<f64> {
        self.figures.get(key).copied()
    }

    pub fn section_titles(&self) -> Vec<&str> {
        self.sections.iter().map(|(t, _)| t.as_str()).collect()
    }

    pub(crate) fn finish(&mut self, took: Duration) {
        self.took = took;
    }

    pub fn markdown(&self) -> String {
        let mut out = String::from("# Benchmarks\n\n");
        out.push_str(&format!(
            "Written by `{}` ({}), which took {:.0} s. Every workload runs beside its baseline in the same \
             invocation; figures are medians of the runs named below. The full run: `cargo run --release -p \
             blog-bench` (the `--quick` mode is what the test suite runs once, with tiny sizes: its figures mean \
             nothing). One section: `--only events,http,…`.\n\n",
            self.command,
            if self.quick { "quick mode" } else { "full run" },
            self.took.as_secs_f64()
        ));
        out.push_str("## Machine and versions\n\n");
        out.push_str(&table(&["what", "value"], self.machine.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect()));
        out.push_str("\n\n## Settings\n\n");
        out.push_str(&table(&["setting", "value"], self.settings.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect()));
        out.push_str("\n\n## Targets\n\n");
        out.push_str(&self.headline());
        for (title, body) in &self.sections {
            out.push_str(&format!("\n\n## {title}\n\n{body}"));
        }
        out.push_str("\n\n");
        out.push_str(NOTES.trim());
        out.push('\n');
        out
    }

    /// The figures remembered as `{prefix}{name}` (a prefetch, an endpoint), by name.
    fn by_name<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        self.figures.range(prefix.to_owned()..).map_while(move |(key, &value)| Some((key.strip_prefix(prefix)?, value)))
    }

    fn headline(&self) -> String {
        let mut rows = Vec::new();
        let verdict = |ok: bool| if ok { "met" } else { "missed" }.to_owned();
        for (prefetch, value) in self.by_name("events_ratio_rabbit_") {
            // Issue 16 wants 0.8 at prefetch 200 and 1000, 0.7 at 50; issue 14 wants 0.7 on quorum queues.
            let wanted = if prefetch == "50" { 0.7 } else { 0.8 };
            let what = format!("events e2e on RabbitMQ quorum queues, prefetch {prefetch}, ratio to bare consume+ack on quorum queues");
            rows.push(vec![what, format!("{value:.2}"), format!("≥ {wanted}"), verdict(value >= wanted)]);
        }
        for (prefetch, value) in self.by_name("events_ratio_embedded_") {
            let what = format!("events e2e on the embedded queue, prefetch {prefetch}, ratio to bare consume+ack on quorum queues");
            rows.push(vec![what, format!("{value:.2}"), "≥ 0.7".into(), verdict(value >= 0.7)]);
        }
        for (prefetch, value) in self.by_name("events_quorum_over_classic_") {
            let what = format!("bare consume+ack, prefetch {prefetch}: quorum queues over classic queues");
            rows.push(vec![what, format!("{value:.2}"), "(no target: what quorum costs)".into(), "—".into()]);
        }
        for &(endpoint, ratio_wanted, p99_wanted) in HTTP_TARGETS {
            let ratio = self.figure(&format!("http_ratio_{endpoint}"));
            let p99 = self.figure(&format!("http_p99_{endpoint}"));
            if let (Some(r), Some(p99)) = (ratio, p99) {
                rows.push(vec![format!("{endpoint} ratio to the fixed-JSON ceiling"), format!("{r:.2}"), format!("≥ {ratio_wanted}"), verdict(r >= ratio_wanted)]);
                rows.push(vec![format!("{endpoint} p99"), format!("{p99:.2} ms"), format!("< {p99_wanted} ms"), verdict(p99 < p99_wanted)]);
            }
        }
        let peak_http = self.by_name("http_peak_rss_kb_").map(|(_, kb)| kb).reduce(f64::max);
        if let Some(kb) = peak_http {
            rows.push(vec!["peak RSS under the HTTP load".into(), format!("{:.1} MiB", kb / 1024.0), "≤ 100 MiB".into(), verdict(kb / 1024.0 <= 100.0)]);
        }
        let mut rebuilds: Vec<(u64, f64)> = self
            .figures
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("rebuild_ms_")?.parse().ok()?, *v)))
            .collect();
        rebuilds.sort_by_key(|r| r.0);
        // Each size against the next smaller one: per-post time staying level is linear growth.
        for pair in rebuilds.windows(2) {
            let (small, big) = (pair[0], pair[1]);
            let growth = (big.1 / big.0 as f64) / (small.1 / small.0 as f64);
            rows.push(vec![
                format!("rebuild time per post at {} over at {} posts", big.0, small.0),
                format!("{growth:.2}"),
                "≈ 1 (linear)".into(),
                verdict(growth <= 1.25),
            ]);
        }
        if let Some(idle) = self.figure("idle_rss_kb") {
            rows.push(vec!["idle RSS".into(), format!("{:.1} MiB", idle / 1024.0), "≤ 20 MiB".into(), verdict(idle / 1024.0 <= 20.0)]);
        }
        if let Some(growth) = self.figure("rss_growth_second_half") {
            rows.push(vec![
                "RSS after all the events over after half of them (caches warm)".into(),
                format!("{growth:.2}"),
                "flat (≤ 1.10)".into(),
                verdict(growth <= 1.10),
            ]);
        }
        if let Some(growth) = self.figure("rss_growth") {
            rows.push(vec![
                "RSS after all the events over after the first chunk (caches filling)".into(),
                format!("{growth:.2}"),
                "(no target: warm-up)".into(),
                "—".into(),
            ]);
        }
        if let Some(ms) = self.figure("startup_ms") {
            rows.push(vec!["startup, exec → ready".into(), format!("{ms:.0} ms"), "(no target)".into(), "—".into()]);
        }
        table(&["target", "figure", "wanted", ""], rows)
    }
}

/// A markdown table.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut out = format!("| {} |\n|{}|", header.join(" | "), header.iter().map(|_| "---").collect::<Vec<_>>().join("|"));
    for row in rows {
        out.push_str(&format!("\n| {} |", row.join(" | ")));
    }
    out
}

fn machine(options: &Options) -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned());
    let cores = std::thread::available_parallelism().map(|n| n.get().to_string()).unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_owned());
    let first_line = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_owned))
    };
    let unknown = || "unknown".to_owned();
    vec![
        ("CPU".into(), cpu.unwrap_or_else(unknown)),
        ("cores".into(), cores),
        ("memory".into(), memory.unwrap_or_else(unknown)),
        ("kernel".into(), kernel.unwrap_or_else(unknown)),
        ("blog".into(), first_line(&options.blog_bin.to_string_lossy(), &["--version"]).unwrap_or_else(unknown)),
        ("rustc".into(), first_line("rustc", &["--version"]).unwrap_or_else(unknown)),
        ("RabbitMQ".into(), first_line("rabbitmqctl", &["version"]).unwrap_or_else(unknown)),
        ("MongoDB stand-in".into(), "nx-27017 0.8.1 (scripts/test pins it), `--db memory`".into()),
    ]
}
