//! Liveness and readiness for orchestrators.
//!
//! `/health/ready` answers the same JSON shape whether ready or not (503 when
//! not, as `application/json` rather than problem+json): an operator sees at a
//! glance which dependency failed, and probes only look at the status.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::resource::get_only;
use super::AppState;

/// A store that does not answer a ping within this is as good as down.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/health/live", live)).service(get_only("/health/ready", ready));
}

/// The answer of `/health/live`.
#[derive(Debug, Serialize, PartialEq, ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    pub status: &'static str,
}

/// The process answers: nothing else is checked, so a broker outage never gets it killed.
#[utoipa::path(
    get, path = "/health/live", tag = "health",
    responses((status = 200, description = "The process is up", body = Liveness))
)]
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "ok" })
}

/// Whether the service can do its work, and which dependency fails when not.
#[derive(Debug, Serialize, PartialEq, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: &'static str,
    pub checks: Checks,
    /// The RabbitMQ node in use (its URL without credentials); absent when not
    /// connected or on the embedded queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_node: Option<String>,
    /// The workers that hold work and settled none of it for `BLOG_STALL_AFTER`;
    /// absent when none is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stalled_workers: Vec<&'static str>,
}

#[derive(Debug, Serialize, PartialEq, ToSchema)]
pub struct Checks {
    /// `ok`, `unavailable` or `timeout`.
    pub store: &'static str,
    /// `ok` or `disconnected`.
    pub broker: &'static str,
    /// `ok` or `stopped`.
    pub consumers: &'static str,
    /// `ok`, or `stalled` when a worker holds work and settles none (see `stalled_workers`).
    pub workers: &'static str,
}

impl Checks {
    pub fn readiness(self) -> Readiness {
        let ok = self.store == "ok" && self.broker == "ok" && self.consumers == "ok" && self.workers == "ok";
        Readiness { status: if ok { "ready" } else { "unavailable" }, checks: self, broker_node: None, stalled_workers: Vec::new() }
    }
}

/// Readiness: the store answers, the broker is connected, the consumers run and no worker is stalled.
#[utoipa::path(
    get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; `checks` says which part fails", body = Readiness),
    )
)]
#[tracing::instrument(skip_all)]
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    // Store errors may name hosts or credentials: logged, not shown.
    let store = match tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "store ping failed");
            "unavailable"
        }
        Err(_) => {
            tracing::warn!("store ping timed out");
            "timeout"
        }
    };
    let broker = if state.transport.is_connected() { "ok" } else { "disconnected" };
    let consumers = if state.transport.is_consuming() { "ok" } else { "stopped" };
    let stalled_workers = state.actor_metrics.stalled_workers();
    let workers = if stalled_workers.is_empty() { "ok" } else { "stalled" };
    let readiness = Readiness {
        broker_node: state.transport.broker_node(),
        stalled_workers,
        ..Checks { store, broker, consumers, workers }.readiness()
    };
    if readiness.status == "ready" {
        HttpResponse::Ok().json(readiness)
    } else {
        HttpResponse::ServiceUnavailable().json(readiness)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_failed_check_makes_it_unavailable() {
        assert_eq!(Checks { store: "ok", broker: "ok", consumers: "ok", workers: "ok" }.readiness().status, "ready");
        assert_eq!(Checks { store: "ok", broker: "disconnected", consumers: "ok", workers: "ok" }.readiness().status, "unavailable");
        assert_eq!(Checks { store: "ok", broker: "ok", consumers: "ok", workers: "stalled" }.readiness().status, "unavailable");
    }
}
