//! `GET /metrics` (Prometheus text) and `GET /actors` (the per-actor figures as JSON).
//!
//! Backlog, parked count and broker state live in the store and the transport,
//! not in counters, so they are read at scrape time. They are built per scrape
//! and appended to the registry's output instead of being registered: the
//! registry stays owned by startup, and several apps (tests) can share a process.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};
use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, IntGauge, TextEncoder};

use super::problem::method_not_allowed;
use super::{AppState, Problem};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(metrics)).default_service(web::to(method_not_allowed)))
        .service(web::resource("/actors").route(web::get().to(actors)).default_service(web::to(method_not_allowed)));
}

#[tracing::instrument(skip_all)]
async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let mut families = state.registry.gather();
    // A figure that cannot be read now is left out of this scrape (a gap, not a false zero).
    let backlog = state.store.backlog().await.map_err(|e| tracing::warn!(error = %e, "outbox backlog unavailable")).ok();
    let parked = state.transport.parked_count().await.map_err(|e| tracing::warn!(error = %e, "parked count unavailable")).ok();
    let pending = state.transport.pending_deliveries().await.map_err(|e| tracing::warn!(error = %e, "queue depth unavailable")).ok();
    let connected = Some(u64::from(state.transport.is_connected()));
    let live = [
        ("blog_outbox_backlog", "Outbox entries not yet published", backlog),
        ("blog_parked_messages", "Messages in the parking lots", parked),
        ("blog_queue_pending_deliveries", "Deliveries waiting in the worker queues or unsettled", pending),
        ("blog_broker_connected", "1 when the transport is connected, else 0", connected),
    ];
    for (name, help, value) in live {
        // Should another part of the service register the same name, its series wins.
        if families.iter().any(|f| f.name() == name) {
            continue;
        }
        if let Some(value) = value {
            families.extend(gauge(name, help, value)?);
        }
    }
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    encoder.encode(&families, &mut body).map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::Ok().insert_header(ContentType(encoder.format_type().parse().map_err(|e| Problem::internal(&e))?)).body(body))
}

fn gauge(name: &str, help: &str, value: u64) -> Result<Vec<MetricFamily>, Problem> {
    let gauge = IntGauge::new(name, help).map_err(|e| Problem::internal(&e))?;
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
    Ok(gauge.collect())
}

#[tracing::instrument(skip_all)]
async fn actors(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.actor_metrics.snapshot())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_gauge_encodes_as_text() {
        let families = gauge("blog_outbox_backlog", "help", 7).unwrap();
        let text = TextEncoder::new().encode_to_string(&families).unwrap();
        assert!(text.contains("# TYPE blog_outbox_backlog gauge\nblog_outbox_backlog 7\n"), "{text}");
    }
}
