//! The nodes of one RabbitMQ cluster (`BLOG_BROKER_URL=amqp://a,amqp://b,…`) and
//! which one a connection goes to.
//!
//! Every connection (publisher and consumer) is opened through [`Nodes::open`]:
//! it starts at the preferred node and goes round the list until one answers, so
//! both connections settle on the same node. When a connection on node `i` is
//! lost, `i` stops being preferred ([`Nodes::lost`]): the next open starts at
//! `i + 1` (round robin), while the caller's capped backoff keeps a dead cluster
//! from being hammered.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use amqprs::connection::OpenConnectionArguments;
use blog_actors::delivery::TransportError;

use super::broker_said::Said;
use super::connection::{self, Link};

/// One node: how to connect, and how to name it where anyone can read it.
pub(super) struct Node {
    args: OpenConnectionArguments,
    /// The URL without credentials or query (`amqp://***@10.0.0.2:5672/%2f`): for
    /// `/health/ready`, `/metrics` and logs.
    pub label: String,
}

/// The node list and the round-robin position.
pub(super) struct Nodes {
    nodes: Vec<Node>,
    /// Where the next open starts: the node the last open reached.
    preferred: AtomicUsize,
}

impl Nodes {
    /// Parses a comma-separated list of `amqp://` or `amqps://` URLs; every entry
    /// must be valid. `amqps://` servers must chain to `ca_file`, else to the system's roots.
    pub(super) fn parse(list: &str, ca_file: Option<&Path>) -> Result<Nodes, TransportError> {
        let roots = match list.split(',').any(|url| url.trim().starts_with("amqps://")) {
            true => Some(super::tls::roots(ca_file)?),
            false => None,
        };
        let mut nodes = Vec::new();
        for (n, url) in list.split(',').map(str::trim).enumerate() {
            let invalid = |why: String| TransportError::misconfigured(format!("invalid AMQP URL (entry {} of the list)", n + 1), Said(why));
            if url.is_empty() {
                return Err(invalid("empty entry".into()));
            }
            // amqprs panics on a query pair without '=' (`?heartbeat`): refuse it first.
            let query = url.split_once('?').map(|(_, query)| query);
            if query.is_some_and(|query| query.split('&').any(|pair| !pair.contains('='))) {
                return Err(invalid("every query parameter needs a value".into()));
            }
            // amqprs' message never repeats the URL, so no password ends up in a log.
            let mut args = OpenConnectionArguments::try_from(url).map_err(|e| invalid(e.to_string()))?;
            if let (Some(roots), Some(rest)) = (&roots, url.strip_prefix("amqps://")) {
                args.tls_adaptor(super::tls::adaptor(roots.clone(), host_of(rest))?);
            }
            let without_query = url.split(['?', '#']).next().unwrap_or(url);
            nodes.push(Node { args, label: blog_actors::redact::url(without_query) });
        }
        Ok(Nodes { nodes, preferred: AtomicUsize::new(0) })
    }

    /// The first node answering, from the preferred one round the list; the
    /// returned link knows its node. One error listing every node's when none does.
    pub(super) async fn open(&self, name: &str) -> Result<Link, TransportError> {
        let start = self.preferred.load(Ordering::SeqCst);
        let mut errors = Vec::new();
        for k in 0..self.nodes.len() {
            let at = (start + k) % self.nodes.len();
            let node = &self.nodes[at];
            match connection::open(&node.args, name, at).await {
                Ok(link) => {
                    self.preferred.store(at, Ordering::SeqCst);
                    if k > 0 || self.nodes.len() > 1 {
                        tracing::info!(connection = name, node = %node.label, "using RabbitMQ node");
                    }
                    return Ok(link);
                }
                Err(e) if self.nodes.len() == 1 => return Err(e),
                Err(e) => {
                    tracing::warn!(connection = name, node = %node.label, error = %e, "RabbitMQ node did not answer; trying the next");
                    errors.push(format!("{}: {e}", node.label));
                }
            }
        }
        Err(TransportError::unavailable("no RabbitMQ node answered", Said(errors.join("; "))))
    }

    /// A connection to `node` was lost: the next open starts at the node after it
    /// (unless another connection already moved on).
    pub(super) fn lost(&self, node: usize) {
        let next = (node + 1) % self.nodes.len();
        let _ = self.preferred.compare_exchange(node, next, Ordering::SeqCst, Ordering::SeqCst);
    }

    pub(super) fn label(&self, node: usize) -> Option<&str> {
        self.nodes.get(node).map(|n| n.label.as_str())
    }
}

/// The host of `user:pass@host:port/vhost?query` (a bracketed IPv6 address without its brackets).
fn host_of(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host_port.split(':').next().unwrap_or(host_port),
    }
}

/// The node a side (publisher or consumer) is connected to now, if any.
#[derive(Default)]
pub(super) struct InUse(Mutex<Option<usize>>);

impl InUse {
    pub(super) fn set(&self, node: Option<usize>) {
        if let Ok(mut in_use) = self.0.lock() {
            *in_use = node;
        }
    }

    pub(super) fn get(&self) -> Option<usize> {
        self.0.lock().ok().and_then(|in_use| *in_use)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_parses_every_entry_and_labels_hide_credentials() {
        let nodes = Nodes::parse("amqp://u:Hunter2pw@10.0.0.1:5672/%2f?heartbeat=10, amqp://u:Hunter2pw@10.0.0.2:5673", None).unwrap();
        assert_eq!(nodes.label(0), Some("amqp://***@10.0.0.1:5672/%2f"));
        assert_eq!(nodes.label(1), Some("amqp://***@10.0.0.2:5673"));
        assert_eq!(nodes.label(2), None);
    }

    #[test]
    fn a_bad_entry_is_refused_by_position() {
        for bad in ["amqp://a:5672,", "amqp://a:5672,,amqp://b", "amqp://a:5672,http://b", "amqp://a?heartbeat"] {
            let error = Nodes::parse(bad, None).err().expect(bad).to_string();
            assert!(error.contains("invalid AMQP URL (entry"), "{bad}: {error}");
        }
    }

    #[test]
    fn losing_the_preferred_node_moves_round_the_list() {
        let nodes = Nodes::parse("amqp://a:1,amqp://b:2,amqp://c:3", None).unwrap();
        nodes.lost(0);
        assert_eq!(nodes.preferred.load(Ordering::SeqCst), 1);
        nodes.lost(0); // an older loss does not undo the move
        assert_eq!(nodes.preferred.load(Ordering::SeqCst), 1);
        nodes.lost(1);
        nodes.lost(2);
        assert_eq!(nodes.preferred.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_tls_host_is_the_urls_host() {
        assert_eq!(host_of("u:p@rabbit.example:5671/vh?x=1"), "rabbit.example");
        assert_eq!(host_of("[::1]:5671"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_an_error_naming_the_setting() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "not a certificate").unwrap();
        let error = Nodes::parse("amqps://localhost:5671", Some(file.path())).err().expect("refused").to_string();
        assert!(error.contains("BLOG_AMQP_CA_FILE"), "{error}");
    }
}
