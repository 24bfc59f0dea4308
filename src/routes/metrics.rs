//! `GET /metrics` (Prometheus text) and `GET /actors` (the per-actor figures as JSON).
//!
//! Backlog, parked count and broker state live in the store and the transport,
//! not in counters, so they are read at scrape time ([`LiveFigures`]). They are built per scrape
//! and appended to the registry's output instead of being registered: the
//! registry stays owned by startup, and several apps (tests) can share a process.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpRequest, HttpResponse};
use blog_actors::metrics::{ActorSnapshot, QUEUE_READER};
use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, IntCounter, IntGauge, IntGaugeVec, Opts, TextEncoder};
use serde::Serialize;
use utoipa::ToSchema;

use super::resource::get_only;
use super::{AppState, Problem};
use crate::live_figures::LiveFigures;

/// What `/actors` shows for a last error to a request without the API key.
const HIDDEN_ERROR: &str = "an error occurred (send the API key to see it)";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/metrics", metrics)).service(get_only("/actors", actors));
}

/// Every series in the Prometheus text format.
#[utoipa::path(
    get, path = "/metrics", tag = "observability",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain"),
        (status = 500, description = "The series could not be encoded", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let live = LiveFigures::read(&*state.store, &*state.transport).await;
    let mut families = state.registry.gather();
    let gauges = [
        ("blog_outbox_backlog", "Outbox entries not yet published", live.backlog),
        ("blog_parked_messages", "Messages in the parking lots now", live.parked),
        ("blog_queue_pending_deliveries", "Deliveries waiting in the worker queues or unsettled", live.pending),
        ("blog_broker_connected", "1 when the transport is connected, else 0", Some(u64::from(live.connected))),
        ("blog_queue_reader_consuming", "1 when the queue reader's consumers are attached, else 0", Some(u64::from(live.consuming))),
    ];
    for (name, help, value) in gauges {
        // Should another part of the service register the same name, its series wins.
        if families.iter().any(|f| f.name() == name) {
            continue;
        }
        if let Some(value) = value {
            families.extend(gauge(name, help, value)?);
        }
    }
    if let Some(node) = &live.node {
        families.extend(node_gauge(node).map_err(|e| Problem::internal(&e))?);
    }
    families.extend(losses_counter(live.losses).map_err(|e| Problem::internal(&e))?);
    families.extend(super::parked_metrics::families(&*state.transport).await.map_err(|e| Problem::internal(&e))?);
    // The text format wants each family once; sorted output is also easier to read and diff.
    families.sort_by(|a, b| a.name().cmp(b.name()));
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

/// `blog_broker_node{node="amqp://***@host:port"} 1`: which node of the list is in use.
fn node_gauge(node: &str) -> prometheus::Result<Vec<MetricFamily>> {
    let opts = Opts::new("blog_broker_node", "1 for the RabbitMQ node in use (its URL without credentials)");
    let gauge = IntGaugeVec::new(opts, &["node"])?;
    gauge.with_label_values(&[node]).set(1);
    Ok(gauge.collect())
}

/// `blog_broker_connection_losses_total`: consumer sessions lost (a node's death, a forced
/// close, a 406 delivery acknowledgement timeout), each followed by a reconnect.
fn losses_counter(losses: u64) -> prometheus::Result<Vec<MetricFamily>> {
    let counter = IntCounter::new("blog_broker_connection_losses_total", "Broker sessions of the queue reader lost and reconnected")?;
    counter.inc_by(losses);
    Ok(counter.collect())
}

/// One actor as `/actors` shows it: its own figures plus what the store and transport say about its work.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActorView {
    #[serde(flatten)]
    pub figures: ActorSnapshot,
    /// Work waiting: outbox entries for the relay, worker-queue deliveries for the queue reader,
    /// the mailbox for a worker; null when it could not be read.
    pub backlog: Option<u64>,
    /// The transport as the queue reader sees it; only on the queue reader.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<TransportView>,
}

/// The transport's state, for the queue reader's row.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransportView {
    pub connected: bool,
    pub consuming: bool,
    /// The RabbitMQ node in use, without credentials; null when not connected or embedded.
    pub node: Option<String>,
    /// Messages in the parking lots now; null when it could not be read.
    pub parked_messages: Option<u64>,
}

/// Every actor's figures, state, last error and the last minutes, as JSON.
#[utoipa::path(
    get, path = "/actors", tag = "observability",
    responses((status = 200, description = "One entry per actor", body = Vec<ActorView>))
)]
#[tracing::instrument(skip_all)]
async fn actors(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let live = LiveFigures::read(&*state.store, &*state.transport).await;
    // An error text may quote what a message carried: shown to the key's holder only.
    let show_errors = super::auth::is_authorized(&req);
    let views: Vec<ActorView> = state
        .actor_metrics
        .snapshot()
        .into_iter()
        .map(|figures| ActorView {
            backlog: live.backlog_of(&figures.name, Some(figures.mailbox_depth)),
            transport: (figures.name == QUEUE_READER).then_some(TransportView {
                connected: live.connected,
                consuming: live.consuming,
                node: live.node.clone(),
                parked_messages: live.parked,
            }),
            figures: ActorSnapshot {
                last_error: figures.last_error.as_ref().map(|e| if show_errors { e.clone() } else { HIDDEN_ERROR.into() }),
                ..figures
            },
        })
        .collect();
    HttpResponse::Ok().json(views)
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
