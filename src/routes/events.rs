//! `POST /events`: lets other services (and tests) put an event on the queue
//! through the outbox, e.g. `order.fulfilled` from the shop.
//!
//! Only the types other services send are taken ([`EXTERNAL_TYPES`]): post
//! events come from our own outbox, in the transaction of the write they
//! describe, so nobody can forge one here. The event is checked as its worker
//! would check it, so a caller learns at once that it is wrong instead of
//! finding it later in the parking lot.

use actix_web::{web, HttpResponse};
use blog_actors::event::{Envelope, InvalidEvent, EXTERNAL_TYPES, KNOWN_TYPES};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::RequireApiKey;
use super::correlation::CorrelationId;
use super::problem::FieldError;
use super::problem_responses::{BodyNotJson, JsonBodyRefused, NoApiKey, StoreUnavailable};
use super::resource::with_request_id;
use super::{AppState, Problem};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(with_request_id("/events", "POST", [web::post().to(publish_event)]));
}

/// An envelope as a caller may send it: only `type` and `data` are required.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EventInput {
    /// A type other services send: today only `order.fulfilled`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event's data, as the event contract gives it for the type.
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
            id: self.id.unwrap_or_else(Uuid::now_v7),
            event_type: self.event_type,
            occurred_at: self.occurred_at.unwrap_or_else(Utc::now),
            correlation_id: Some(self.correlation_id.unwrap_or_else(|| request_correlation.0.clone())),
            data: blog_actors::event::raw(&self.data),
        }
    }
}

/// The event was stored in the outbox and will be published.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventAccepted {
    pub id: Uuid,
    /// `accepted`.
    pub status: &'static str,
}

/// Enqueue an event, as another service would publish it; checked as its worker would check it.
#[utoipa::path(
    post, path = "/events", tag = "events",
    params(CorrelationId),
    request_body = EventInput,
    responses(
        (status = 202, description = "Stored in the outbox; it will be published", body = EventAccepted,
            headers(("X-Request-Id" = String, description = "The correlation id of the request"))),
        (status = 422, description = "A type this endpoint does not take, or invalid data; `accepted_types` lists the types", body = Problem, content_type = "application/problem+json"),
        BodyNotJson, NoApiKey, JsonBodyRefused, StoreUnavailable,
    )
)]
#[tracing::instrument(skip_all, fields(correlation_id = %cid, event_type = %input.event_type))]
async fn publish_event(_: RequireApiKey, state: web::Data<AppState>, cid: CorrelationId, input: web::Json<EventInput>) -> Result<HttpResponse, Problem> {
    let envelope = input.into_inner().into_envelope(&cid);
    if !EXTERNAL_TYPES.contains(&envelope.event_type.as_str()) {
        return Err(not_accepted(&envelope.event_type));
    }
    envelope.event().map_err(invalid)?;
    let correlation = envelope.correlation_id.clone();
    state.store.enqueue(&envelope.event_type, envelope.id, envelope.to_bytes(), correlation).await?;
    tracing::info!(event_id = %envelope.id, "event accepted");
    Ok(HttpResponse::Accepted().json(EventAccepted { id: envelope.id, status: "accepted" }))
}

/// A type that is unknown, or ours alone to publish.
fn not_accepted(event_type: &str) -> Problem {
    let why = if KNOWN_TYPES.contains(&event_type) {
        "is published only by this service's own outbox"
    } else {
        "is not an event type"
    };
    let shown: String = event_type.chars().take(64).collect();
    Problem::unprocessable(
        format!("{shown:?} {why}; this endpoint takes: {}", EXTERNAL_TYPES.join(", ")),
        vec![FieldError { field: "type".into(), message: format!("type {why}") }],
    )
    .with_extension("accepted_types", EXTERNAL_TYPES.to_vec())
}

fn invalid(err: InvalidEvent) -> Problem {
    match err {
        InvalidEvent::UnknownType(t) => not_accepted(&t),
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
    use serde_json::json;

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
    fn unknown_and_internal_types_list_the_accepted_ones() {
        for t in ["user.signed_up", "post.created", "post.deleted"] {
            let p = not_accepted(t);
            assert_eq!(p.status, 422);
            assert!(p.detail.contains("takes: order.fulfilled"), "{}", p.detail);
        }
        assert!(not_accepted("post.created").detail.contains("own outbox"));
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
