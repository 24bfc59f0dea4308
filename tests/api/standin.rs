//! A MongoDB stand-in (nx-27017) of the test's own, on a free port, that the
//! test may freeze (SIGSTOP) and thaw (SIGCONT). The shared one on 27018 is
//! never touched: other tests use it.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the stand-in may take to accept connections (it starts in about 0.1 s).
const START_LIMIT: Duration = Duration::from_secs(15);

pub struct StandIn {
    child: Child,
    port: u16,
    /// Its log and pid files.
    dir: tempfile::TempDir,
}

/// `target/nx/bin/nx-27017` of this checkout (where scripts/test and CI install
/// it), or `BLOG_TEST_NX_27017` when set.
fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("BLOG_TEST_NX_27017") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/nx/bin/nx-27017");
    assert!(
        path.is_file(),
        "the MongoDB stand-in is not installed at {}: run `python3 -m venv target/nx && target/nx/bin/pip install nx-27017==0.8.1` \
         (scripts/test does), or point BLOG_TEST_NX_27017 at the nx-27017 binary",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port()
}

impl StandIn {
    /// Starts it with an in-memory database and waits until it accepts connections.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let port = free_port();
        let child = Command::new(binary())
            .args(["--db", "memory", "--host", "127.0.0.1", "-p", &port.to_string()])
            .arg("--log-file")
            .arg(dir.path().join("nx.log"))
            .arg("--pid-file")
            .arg(dir.path().join("nx.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the stand-in starts");
        let standin = Self { child, port, dir };
        let deadline = Instant::now() + START_LIMIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the stand-in did not listen on {port}: {}", standin.log());
            std::thread::sleep(Duration::from_millis(20)); // poll interval under a deadline
        }
        standin
    }

    /// Its URL, without timeouts of its own: the service's `BLOG_STORE_TIMEOUT` applies.
    pub fn url(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    /// The process stops answering, its sockets open: a store that hangs.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill({signal}) failed");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nx.log")).unwrap_or_default()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        // Thawed first, so a service still connected sees it close rather than hang.
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
