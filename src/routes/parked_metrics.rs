//! The parking lots and retry levels per worker, read from the transport at
//! scrape time: `blog_worker_parked_messages{worker}` (every lot, empty ones
//! too, so an alert can watch one worker) and `blog_retry_waiting_messages{worker,level}`.
//! The unlabelled `blog_parked_messages` total stays as it was.

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};

use crate::transport::Transport;

/// The two families; a figure the transport could not read is left out (a gap, not a false zero).
pub async fn families(transport: &dyn Transport) -> prometheus::Result<Vec<MetricFamily>> {
    let mut families = Vec::new();
    match transport.parked_by_worker().await {
        Ok(lots) => {
            let opts = Opts::new("blog_worker_parked_messages", "Messages in each worker's parking lot now (unrouted: no worker takes their type)");
            let gauge = IntGaugeVec::new(opts, &["worker"])?;
            for (worker, count) in lots {
                gauge.with_label_values(&[worker.as_str()]).set(i64::try_from(count).unwrap_or(i64::MAX));
            }
            families.extend(gauge.collect());
        }
        Err(e) => tracing::warn!(error = %e, "parked counts per worker unavailable"),
    }
    match transport.waiting_for_retry().await {
        Ok(levels) => {
            let opts = Opts::new("blog_retry_waiting_messages", "Messages waiting for their next attempt, per worker and retry level");
            let gauge = IntGaugeVec::new(opts, &["worker", "level"])?;
            for level in levels {
                gauge.with_label_values(&[level.worker.as_str(), level.level.as_str()]).set(i64::try_from(level.waiting).unwrap_or(i64::MAX));
            }
            families.extend(gauge.collect());
        }
        Err(e) => tracing::warn!(error = %e, "retry level counts unavailable"),
    }
    // The text encoder refuses a family without samples (no retry waiting, say).
    families.retain(|f| !f.get_metric().is_empty());
    Ok(families)
}
