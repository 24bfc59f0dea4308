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
    cpu_seconds_of(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// The CPU time (user + system) in a `stat` line of a process or thread, in seconds.
pub fn cpu_seconds_of(stat: &str) -> f64 {
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

/// The local RabbitMQ node's process (`beam.smp`) listening on `amqp_url`'s
/// port, if the broker runs on this machine. Beside the node on 5672 the test
/// script keeps a cluster of three more: the first `beam.smp` found was often
/// an idle one, and the broker's CPU read 0.
pub fn broker_pid(amqp_url: &str) -> Option<u32> {
    let inode = listening_inode(amqp_port(amqp_url))?;
    std::fs::read_dir("/proc").ok()?.filter_map(Result::ok).find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        (comm.trim() == "beam.smp" && holds_socket(pid, inode)).then_some(pid)
    })
}

/// Whether process `pid` has the socket `inode` among its open files.
fn holds_socket(pid: u32, inode: u64) -> bool {
    let socket = format!("socket:[{inode}]");
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.filter_map(Result::ok).any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == socket.as_str()))
}

/// The port of the first URL in an AMQP URL list (5672, or 5671 for amqps, when none is given).
fn amqp_port(amqp_url: &str) -> u16 {
    let first = amqp_url.split(',').next().unwrap_or_default().trim();
    let default = if first.starts_with("amqps:") { 5671 } else { 5672 };
    let authority = first.split_once("://").map_or(first, |(_, rest)| rest);
    let host_port = authority.split('/').next().unwrap_or_default();
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, hp)| hp);
    host_port.rsplit_once(':').and_then(|(_, port)| port.parse().ok()).unwrap_or(default)
}

/// The inode of the TCP socket listening on `port` (IPv4 or IPv6), from /proc/net.
fn listening_inode(port: u16) -> Option<u64> {
    const LISTEN: &str = "0A";
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|table| {
        std::fs::read_to_string(table).ok()?.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit_once(':')?.1;
            let listens = u16::from_str_radix(local_port, 16).ok()? == port && *fields.get(3)? == LISTEN;
            listens.then(|| fields.get(9)?.parse().ok()).flatten()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_port_comes_from_the_first_url() {
        assert_eq!(amqp_port("amqp://guest:guest@127.0.0.1:5672"), 5672);
        assert_eq!(amqp_port("amqp://u:p@a:5701/vh, amqp://b:5702"), 5701);
        assert_eq!(amqp_port("amqp://localhost"), 5672);
        assert_eq!(amqp_port("amqps://u:p@host/vh"), 5671);
    }

    /// The machine's RabbitMQ on 5672 (the test script starts it) is found, not another node.
    #[test]
    fn the_node_listening_on_the_port_is_the_one_found() {
        let Some(pid) = broker_pid("amqp://guest:guest@127.0.0.1:5672") else {
            panic!("no beam.smp listens on 5672: is RabbitMQ running?");
        };
        assert!(holds_socket(pid, listening_inode(5672).unwrap()), "beam.smp {pid} does not hold the socket listening on 5672");
    }
}
