//! Instances of the binary on the local three-node RabbitMQ cluster (scripts/rabbit-cluster).

use crate::crash::BackendEnv;
use crate::instances::both_work_exactly;
use crate::service::{start, Service};
use crate::smtp_sink::SmtpSink;
use crate::support_cluster::{node_of, require_cluster, urls_from};

/// The node (letter) an instance says it uses on `/health/ready`.
async fn node_in_use(service: &Service) -> Option<&'static str> {
    let ready: serde_json::Value = reqwest::get(format!("{}/health/ready", service.address)).await.ok()?.json().await.ok()?;
    ready["broker_node"].as_str().and_then(node_of)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_listing_different_nodes_first_each_use_their_first_both_work_and_every_effect_is_exact() {
    require_cluster();
    let sink = SmtpSink::start(&[]);
    let backend = BackendEnv::rabbit_at(&urls_from("a")).with("BLOG_SMTP_URL", &sink.url());
    let dir = tempfile::tempdir().unwrap();
    let b_first = urls_from("b");
    let a = start(dir.path(), &backend.as_env());
    // A later value of the same variable wins.
    let b = start(dir.path(), &[backend.as_env(), vec![("BLOG_BROKER_URL", b_first.as_str())]].concat());
    assert_eq!(node_in_use(&a).await, Some("a"));
    assert_eq!(node_in_use(&b).await, Some("b"));
    both_work_exactly(&a, &b, &sink).await;
}
