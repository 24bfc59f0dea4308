//! Where the service's time goes during a workload: its CPU split by thread
//! (from `/proc/<pid>/task`, cheap enough to read around every measured run)
//! and, when `perf` is installed, a flame graph of a profiled run (SVG, drawn
//! with `inferno`, one root per thread name).

use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context as _};
use inferno::collapse::perf::{Folder, Options as FoldOptions};
use inferno::collapse::Collapse;

use crate::service::cpu_seconds_of;

/// Sampling rate of the profiled runs: enough samples in a few seconds, little overhead.
const SAMPLES_PER_SECOND: &str = "499";

/// CPU seconds used so far by each thread of a process, summed by thread name.
#[derive(Debug, Clone, Default)]
pub struct ThreadCpu(HashMap<String, f64>);

impl ThreadCpu {
    /// Now, for `pid`; empty when its threads cannot be read.
    pub fn of(pid: u32) -> Self {
        let mut by_name = HashMap::new();
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Self(by_name) };
        for task in tasks.filter_map(Result::ok) {
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default().trim().to_owned();
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            *by_name.entry(group(&name)).or_insert(0.0) += cpu_seconds_of(&stat);
        }
        Self(by_name)
    }

    /// CPU µs per unit of work (`units` events or requests) spent by each thread
    /// name between `self` and `later`, the largest first; names under 1% are summed as "other".
    pub fn per_unit_since(&self, later: &ThreadCpu, units: f64) -> Vec<(String, f64)> {
        let mut spent: Vec<(String, f64)> = later
            .0
            .iter()
            .map(|(name, &s)| (name.clone(), (s - self.0.get(name).copied().unwrap_or(0.0)) * 1e6 / units))
            .filter(|(_, us)| *us > 0.0)
            .collect();
        let total: f64 = spent.iter().map(|(_, us)| us).sum();
        let (mut kept, small): (Vec<_>, Vec<_>) = spent.drain(..).partition(|(_, us)| *us >= total * 0.01);
        kept.sort_by(|a, b| b.1.total_cmp(&a.1));
        let other: f64 = small.iter().map(|(_, us)| us).sum();
        if other > 0.0 {
            kept.push(("other".into(), other));
        }
        kept
    }
}

/// Threads of a pool share a name stem (`blog_queries.sq`, `tokio-runtime-w`,
/// `actix-rt|system:0|arbiter:1`): numbered ones are summed under one name.
fn group(name: &str) -> String {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == ':' || c == '#');
    if stem.is_empty() { name.to_owned() } else { stem.to_owned() }
}

/// A table row: the label, the total, and "name 44 · name 29 · …" (µs).
pub fn split_row(label: String, split: &[(String, f64)]) -> Vec<String> {
    let total: f64 = split.iter().map(|(_, us)| us).sum();
    vec![label, format!("{total:.0}"), split_text(split)]
}

fn split_text(split: &[(String, f64)]) -> String {
    if split.is_empty() {
        return "—".into();
    }
    split.iter().map(|(name, us)| format!("{} {us:.0}", name.replace('|', "/"))).collect::<Vec<_>>().join(" · ")
}

/// One line of the report about a flame graph: where it is, or why there is none.
pub fn flame_line(svg: &Path, drawn: Result<(), String>) -> String {
    let name = svg.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    match drawn {
        Ok(()) => format!("[`{name}`](flamegraphs/{name})"),
        Err(why) => format!("`{name}`: none ({why})"),
    }
}

/// The paragraph naming the flame graphs of the extra run `profiled` ("at
/// prefetch 200"), empty when none was asked for.
fn flame_note(lines: &[String], profiled: &str) -> String {
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "\n\nFlame graphs of the service (`perf record -F {SAMPLES_PER_SECOND} -g` over one extra run {profiled}, not \
         counted in the figures above; drawn with `inferno`, one root per thread name): {}.",
        lines.join(", ")
    )
}

/// The paragraph on where the CPU went: per unit `of_what` ("event by thread (…)"),
/// the table of [`split_row`]s under `columns`, and the flame graphs of the extra run `profiled`.
pub fn where_it_goes(of_what: &str, columns: [&str; 2], rows: Vec<Vec<String>>, flames: &[String], profiled: &str) -> String {
    format!(
        "\n\nWhere the service's CPU goes, in µs per {of_what}:\n\n{}{}",
        crate::report::table(&[columns[0], columns[1], "by thread"], rows),
        flame_note(flames, profiled)
    )
}

/// `perf` recording a process until [`Recording::finish`] draws its flame graph.
pub struct Recording {
    child: Child,
    data: PathBuf,
    svg: PathBuf,
}

/// Starts `perf record` on `pid` (call graphs, all its threads) for the flame
/// graph `svg`, or the reason when `perf` is missing or refused (no permission to profile).
pub fn record(pid: u32, svg: &Path) -> Result<Recording, String> {
    let data = svg.with_extension("perf.data");
    let child = Command::new("perf")
        .args(["record", "-F", SAMPLES_PER_SECOND, "-g", "-p", &pid.to_string(), "-o"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("perf is not available ({e})"))?;
    Ok(Recording { child, data, svg: svg.to_owned() })
}

impl Recording {
    /// Stops the recording and draws its flame graph titled `title`, or says why it could not.
    pub fn finish(self, title: &str) -> Result<(), String> {
        self.draw(title).map_err(|e| format!("{e:#}"))
    }

    fn draw(mut self, title: &str) -> anyhow::Result<()> {
        let svg = self.svg.clone();
        // perf writes its data file when interrupted, as on Ctrl-C.
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait()?;
        if !self.data.exists() {
            bail!("perf record ended with {status} and wrote no data");
        }
        let script = Command::new("perf")
            .args(["script", "-i"])
            .arg(&self.data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("running perf script")?;
        let mut folded = Vec::new();
        Folder::from(FoldOptions::default())
            .collapse(BufReader::new(script.stdout.context("perf script's output")?), &mut folded)
            .context("folding the stacks")?;
        let folded = String::from_utf8_lossy(&folded);
        let mut options = inferno::flamegraph::Options::default();
        options.title = title.to_owned();
        options.count_name = "samples".into();
        let file = std::fs::File::create(&svg).with_context(|| format!("creating {}", svg.display()))?;
        inferno::flamegraph::from_lines(&mut options, folded.lines(), std::io::BufWriter::new(file))
            .with_context(|| format!("drawing {}", svg.display()))?;
        let _ = std::fs::remove_file(&self.data);
        Ok(())
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_threads_of_a_pool_share_a_name() {
        let names = [("tokio-runtime-w", "tokio-runtime-w"), ("actix-rt|system:0|arbiter:12", "actix-rt|system:0|arbiter"), ("worker-3", "worker")];
        for (thread, pool) in names {
            assert_eq!(group(thread), pool);
        }
    }

    #[test]
    fn the_split_is_per_unit_largest_first_with_small_ones_summed() {
        let before = ThreadCpu(HashMap::from([("a".into(), 1.0), ("b".into(), 0.0)]));
        let after = ThreadCpu(HashMap::from([("a".into(), 2.0), ("b".into(), 3.0), ("c".into(), 0.001), ("d".into(), 0.001)]));
        let split = before.per_unit_since(&after, 1000.0);
        assert_eq!(split[0], ("b".into(), 3000.0));
        assert_eq!(split[1], ("a".into(), 1000.0));
        assert_eq!(split[2].0, "other");
        assert!((split[2].1 - 2.0).abs() < 1e-9);
    }
}
