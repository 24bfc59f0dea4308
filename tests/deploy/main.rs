//! The files under deploy/ checked with the tools that will read them: the
//! Kubernetes manifests against the schemas of a named Kubernetes version (and
//! KEDA's), yamllint, promtool's rule checks and unit tests, and the alert
//! rules and the Grafana dashboard against what the real service serves on
//! GET /metrics.
//!
//! The tools come from scripts/install-test-tools; a missing one fails the
//! test, so a green run always means the check really ran.

mod dashboard;
mod kubernetes;
mod manifests;
mod prometheus;
mod scrape;
// Shared with tests/process; this binary only starts the service.
#[allow(dead_code)]
#[path = "../process/service.rs"]
mod service;
mod tools;
