//! Liveness and readiness for orchestrators.
//!
//! `/health/ready` answers the same JSON shape whether ready or not (503 when
//! not, as `application/json` rather than problem+json): an operator sees at a
//! glance which dependency failed, and probes only look at the status.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::problem::method_not_allowed;
use super::AppState;

/// A store that does not answer a ping within this is as good as down.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health/live").route(web::get().to(live)).default_service(web::to(method_not_allowed)))
        .service(web::resource("/health/ready").route(web::get().to(ready)).default_service(web::to(method_not_allowed)));
}

/// The process answers: nothing else is checked, so a broker outage never gets it killed.
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Readiness {
    pub status: &'static str,
    pub checks: Checks,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Checks {
    pub store: &'static str,
    pub broker: &'static str,
    pub consumers: &'static str,
}

impl Checks {
    pub fn readiness(self) -> Readiness {
        let ok = self.store == "ok" && self.broker == "ok" && self.consumers == "ok";
        Readiness { status: if ok { "ready" } else { "unavailable" }, checks: self }
    }
}

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
    let readiness = Checks { store, broker, consumers }.readiness();
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
        assert_eq!(Checks { store: "ok", broker: "ok", consumers: "ok" }.readiness().status, "ready");
        assert_eq!(Checks { store: "ok", broker: "disconnected", consumers: "ok" }.readiness().status, "unavailable");
    }
}
