//! `POST /events`: lets other services (and tests) put an event on the queue
//! through the outbox, e.g. `order.fulfilled` from the shop.
//!
//! The event is checked here as a worker would check it, so a caller learns at
//! once that it is wrong instead of finding it later in the parking lot.

use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};
use blog_actors::event::{Envelope, InvalidEvent, KNOWN_TYPES};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::auth::RequireApiKey;
use super::correlation::{echo_request_id, CorrelationId};
use super::problem::{method_not_allowed, FieldError};
use super::{AppState, Problem};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/events")
            .wrap(from_fn(echo_request_id))
            .route(web::post().to(publish_event))
            .default_service(web::to(method_not_allowed)),
    );
}

/// An envelope as a caller may send it: only `type` and `data` are required.
#[derive(Debug, Deserialize)]
pub struct EventInput {
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: serde_json::Value,
    pub id: Option<Uuid>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub correlation_id: Option<String>,
}

impl EventInput {
    /// The full envelope: missing parts are filled in (a caller's own correlation id wins,
    /// so an event keeps the id of the flow that caused it upstream).
    pub fn into_envelope(self, request_correlation: &CorrelationId) -> Envelope {
        Envelope {
            id: self.id.unwrap_or_else(Uuid::new_v4),
            event_type: self.event_type,
            occurred_at: self.occurred_at.unwrap_or_else(Utc::now),
            correlation_id: Some(self.correlation_id.unwrap_or_else(|| request_correlation.0.clone())),
            data: self.data,
        }
    }
}

#[tracing::instrument(skip_all, fields(correlation_id = %cid, event_type = %input.event_type))]
async fn publish_event(
    _: RequireApiKey,
    state: web::Data<AppState>,
    cid: CorrelationId,
    input: web::Json<EventInput>,
) -> Result<HttpResponse, Problem> {
    let envelope = input.into_inner().into_envelope(&cid);
    envelope.event().map_err(invalid)?;
    let correlation = envelope.correlation_id.clone();
    state.store.enqueue(&envelope.event_type, envelope.id, envelope.to_bytes(), correlation).await?;
    state.relay_wakeup.notify_one();
    tracing::info!(event_id = %envelope.id, "event accepted");
    Ok(HttpResponse::Accepted().json(json!({ "id": envelope.id, "status": "accepted" })))
}

fn invalid(err: InvalidEvent) -> Problem {
    match err {
        InvalidEvent::UnknownType(t) => Problem::unprocessable(
            format!("unknown event type {t:?}; known types: {}", KNOWN_TYPES.join(", ")),
            vec![FieldError { field: "type".into(), message: "unknown event type".into() }],
        )
        .with_extension("known_types", KNOWN_TYPES.to_vec()),
        InvalidEvent::Data { reason, .. } => Problem::unprocessable(
            format!("invalid event data: {reason}"),
            vec![FieldError { field: "data".into(), message: reason }],
        ),
        other => Problem::unprocessable(other.to_string(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(event_type: &str, data: serde_json::Value) -> EventInput {
        EventInput { event_type: event_type.into(), data, id: None, occurred_at: None, correlation_id: None }
    }

    #[test]
    fn missing_parts_are_filled_in() {
        let env = input("order.fulfilled", json!({})).into_envelope(&CorrelationId("req-1".into()));
        assert_eq!(env.correlation_id.as_deref(), Some("req-1"));
        assert!(!env.id.is_nil());
    }

    #[test]
    fn unknown_types_list_the_known_ones() {
        let env = input("user.signed_up", json!({})).into_envelope(&CorrelationId("c".into()));
        let p = invalid(env.event().unwrap_err());
        assert_eq!(p.status, 422);
        assert!(p.detail.contains("order.fulfilled"), "{}", p.detail);
    }

    #[test]
    fn bad_data_says_why() {
        let data = json!({"order_id": "A-1", "customer": {"name": "Ada", "email": "nope"}, "lines": []});
        let env = input("order.fulfilled", data).into_envelope(&CorrelationId("c".into()));
        let p = invalid(env.event().unwrap_err());
        assert!(p.detail.contains("not an email address"), "{}", p.detail);
        assert_eq!(p.errors[0].field, "data");
    }
}
