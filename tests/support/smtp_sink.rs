//! A real SMTP server for tests: scripts/smtp_sink.py (aiosmtpd), one per test.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running SMTP sink; killed on drop.
pub struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (child, port) = Self::spawn(dir.path(), extra);
        Self { child, port, dir }
    }

    #[allow(dead_code, reason = "not every test binary stops a sink")]
    /// Kills the server: connections to its port are refused until [`SmtpSink::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    #[allow(dead_code, reason = "not every test binary stops a sink")]
    /// Starts the server again on the same port, keeping what it received.
    pub fn restart(&mut self) {
        let port = self.port.to_string();
        let (child, _) = Self::spawn(self.dir.path(), &["--port", &port]);
        self.child = child;
    }

    fn spawn(dir: &std::path::Path, extra: &[&str]) -> (Child, u16) {
        let python = std::env::var("BLOG_TEST_PYTHON").unwrap_or_else(|_| "target/venv/bin/python".into());
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/smtp_sink.py");
        let mut child = Command::new(&python)
            .arg(script)
            .arg("--dir")
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python} (scripts/test installs aiosmtpd there): {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("listening ").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("sink said {line:?}"));
        (child, port)
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path()).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

