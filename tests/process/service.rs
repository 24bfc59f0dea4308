//! Runs the real `blog` binary as a child process and reads its log.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const API_KEY: &str = "process-test-key";

/// A running service process.
pub struct Service {
    pub child: Child,
    pub address: String,
    /// Every line the process printed so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Starts the binary on `data_dir` with `extra` env vars and waits until it listens.
pub fn start(data_dir: &Path, extra: &[(&str, &str)]) -> Service {
    try_start(data_dir, extra).unwrap_or_else(|(status, log)| panic!("the service exited with {status} before listening: {log:?}"))
}

/// Like `start`, but a process that exits before it listens is an answer (its exit
/// status and log lines), not a failure.
pub fn try_start(data_dir: &Path, extra: &[(&str, &str)]) -> Result<Service, (ExitStatus, Vec<String>)> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_blog"));
    command
        .env("BLOG_DATA_DIR", data_dir)
        .env("BLOG_HTTP_ADDR", "127.0.0.1:0")
        .env("BLOG_API_KEY", API_KEY)
        .env("BLOG_RETRY_BASE_DELAY", "50ms")
        .env("BLOG_TAG_REBUILD_INTERVAL", "0s")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the binary starts");
    let log = Arc::new(Mutex::new(Vec::new()));
    for stream in [child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>), child.stderr.take().map(|s| Box::new(s) as _)] {
        let log = log.clone();
        let stream = stream.expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                log.lock().unwrap().push(line);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let port = loop {
        let found = log.lock().unwrap().iter().find_map(|l| listening_port(l));
        if let Some(port) = found {
            break port;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err((status, log.lock().unwrap().clone()));
        }
        assert!(Instant::now() < deadline, "the service never listened: {:?}", log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Service { child, address: format!("http://127.0.0.1:{port}"), log })
}

/// The port of the "listening" line, human (`port=8080`) or JSON (`"port":8080`).
fn listening_port(line: &str) -> Option<u16> {
    if !line.contains("listening") {
        return None;
    }
    let rest = line.split("port=").nth(1).or_else(|| line.split("\"port\":").nth(1))?;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

impl Service {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the process to exit, failing after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the service did not exit within {limit:?}: {:?}", self.log.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
