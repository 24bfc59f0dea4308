//! The local three-node RabbitMQ cluster of the cluster tests (started by
//! `scripts/rabbit-cluster start`, which scripts/test runs): its URLs, killing
//! and restarting its nodes, and which node leads a quorum queue.
// Shared by the api and process test binaries; each uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The nodes' letters, as `scripts/rabbit-cluster` names them.
pub const NODES: [&str; 3] = ["a", "b", "c"];

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/rabbit-cluster")
}

pub fn port(node: &str) -> u16 {
    5701 + NODES.iter().position(|n| *n == node).expect("a node letter") as u16
}

/// The cluster's URLs, `first` first and the others after it in order.
pub fn urls_from(first: &str) -> String {
    let at = NODES.iter().position(|n| *n == first).expect("a node letter");
    (0..NODES.len())
        .map(|k| format!("amqp://guest:guest@127.0.0.1:{}", port(NODES[(at + k) % NODES.len()])))
        .collect::<Vec<_>>()
        .join(",")
}

/// Fails at once, saying what to run, when the cluster is not up.
pub fn require_cluster() {
    for node in NODES {
        let up = std::net::TcpStream::connect(("127.0.0.1", port(node))).is_ok();
        assert!(up, "cluster node {node} is not listening on {}: run scripts/rabbit-cluster start", port(node));
    }
}

/// Runs `scripts/rabbit-cluster` on this thread, failing the test if it fails; its output.
pub fn run_script_here(args: &[&str]) -> String {
    let out = Command::new(script()).args(args).output().expect("scripts/rabbit-cluster runs");
    assert!(out.status.success(), "scripts/rabbit-cluster {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// [`run_script_here`] off the test's runtime thread: blocking it for the seconds a
/// node takes to start would stall the HTTP client's connections.
pub async fn run_script(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || run_script_here(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .expect("the script's thread")
}

/// A node killed by the test; started again by `restart`, or when dropped (a
/// failing test leaves the cluster whole for the next one).
pub struct NodeDown {
    node: Option<&'static str>,
}

/// SIGKILL: the node vanishes without a goodbye, as in a crash or power loss.
pub async fn kill(node: &'static str) -> NodeDown {
    run_script(&["kill", node]).await;
    NodeDown { node: Some(node) }
}

impl NodeDown {
    /// Starts the node again and waits until it serves AMQP; it rejoins by itself.
    pub async fn restart(mut self) {
        if let Some(node) = self.node.take() {
            run_script(&["start-node", node]).await;
        }
    }
}

impl Drop for NodeDown {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            let _ = Command::new(script()).args(["start-node", node]).status();
        }
    }
}

/// The node (letter) a `/health/ready` `broker_node` label names.
pub fn node_of(label: &str) -> Option<&'static str> {
    NODES.iter().copied().find(|n| label.ends_with(&format!(":{}", port(n))))
}

/// The node leading quorum queue `queue`, asked of `via` (a running node).
pub async fn leader_of(queue: &str, via: &str) -> Option<&'static str> {
    let listing = run_script(&["ctl", via, "-q", "list_queues", "name", "leader"]).await;
    let leader = listing.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        (fields.next() == Some(queue)).then(|| fields.next().map(str::to_owned)).flatten()
    })?;
    NODES.iter().copied().find(|n| leader == format!("blogtest-{n}@localhost"))
}

/// The queues as `via` sees them: for a failure message.
pub async fn queues_via(via: &str) -> String {
    run_script(&["ctl", via, "-q", "list_queues", "name", "leader", "online", "messages_ready", "messages_unacknowledged", "consumers"]).await
}
