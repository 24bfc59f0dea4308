//! The real `blog` binary as a child process: started with chosen settings,
//! waited for until `/health/ready`, its memory read from `/proc`, stopped with
//! SIGTERM.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::client;

/// The API key the bench gives the service (writes need one).
pub const API_KEY: &str = "bench-key";
/// How long a start may take before the bench gives up.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// RSS sampling period while a load runs.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// A running service.
pub struct Service {
    child: Child,
    pub addr: SocketAddr,
    /// From exec to the first 200 of `/health/ready`.
    pub ready_after: Duration,
}

/// Settings for one start: the data dir plus `BLOG_*` variables.
pub struct Spec<'a> {
    pub bin: &'a Path,
    pub data_dir: &'a Path,
    pub env: Vec<(&'static str, String)>,
    /// Where the service's log goes (kept for a look after a failure).
    pub log: PathBuf,
}

impl Service {
    pub async fn start(spec: Spec<'_>) -> anyhow::Result<Service> {
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = std::fs::File::create(&spec.log).with_context(|| format!("creating {}", spec.log.display()))?;
        let mut command = Command::new(spec.bin);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BLOG_DATA_DIR", spec.data_dir)
            .env("BLOG_HTTP_ADDR", addr.to_string())
            .env("BLOG_API_KEY", API_KEY)
            .env("BLOG_TAG_REBUILD_INTERVAL", "0s")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .stdin(Stdio::null());
        for (key, value) in &spec.env {
            command.env(key, value);
        }
        let started = Instant::now();
        let mut child = command.spawn().with_context(|| format!("starting {}", spec.bin.display()))?;
        loop {
            if let Ok(r) = client::call(addr, "GET", "/health/ready", &[], None).await {
                if r.status == 200 {
                    break;
                }
            }
            if let Some(status) = child.try_wait()? {
                bail!("the service exited with {status} before it was ready; see {}", spec.log.display());
            }
            if started.elapsed() > READY_LIMIT {
                let _ = child.kill();
                bail!("the service was not ready within {READY_LIMIT:?}; see {}", spec.log.display());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Service { ready_after: started.elapsed(), child, addr })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in KiB.
    pub fn rss_kb(&self) -> u64 {
        rss_kb(self.pid())
    }

    /// Samples the resident memory until the returned sampler is stopped.
    pub fn sample_rss(&self) -> RssSampler {
        RssSampler::start(self.pid())
    }

    /// SIGTERM, then waits for a clean exit (killed after `limit`).
    pub async fn stop(mut self, limit: Duration) -> anyhow::Result<()> {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the service exited with {status} on SIGTERM");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("the service did not stop within {limit:?} of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The highest RSS seen while it ran.
pub struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let (peak, stop) = (Arc::new(AtomicU64::new(rss_kb(pid))), Arc::new(AtomicBool::new(false)));
        let (p, s) = (peak.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kb(pid), Ordering::Relaxed);
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
        });
        Self { peak, stop, task }
    }

    /// The peak in KiB.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}

/// VmRSS of `pid` in KiB; 0 when it cannot be read (the process is gone).
pub fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A port nobody listens on right now (the OS picks it).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// CPU time (user + system) `pid` used so far, in seconds; 0 when unreadable.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command may hold spaces: fields are counted after its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat(5): 12 and 13 after the command.
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// The local RabbitMQ node's process (`beam.smp`), if the broker runs on this machine.
pub fn broker_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.filter_map(Result::ok).find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        (comm.trim() == "beam.smp").then_some(pid)
    })
}
