//! The parking lot: messages a worker gave up on, with why. Operators list
//! them, replay them once the cause is fixed, or drop them. All authenticated:
//! bodies may hold customer data.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::RequireApiKey;
use super::correlation::CorrelationId;
use super::dead_letter_bulk;
use super::dead_letter_filter::FilterFields;
use super::problem_responses::{NoApiKey, NoSuchParkedMessage, TransportUnavailable};
use super::resource::with_request_id;
use super::{AppState, Problem};
use crate::dead_letter_ops::OperatorAction;
use crate::transport::parked_query::{ParkedGroup, ParkedPage};
use crate::transport::{ParkedMessage, RetryLevelCount};

pub const LIMIT_DEFAULT: usize = 100;
pub const LIMIT_MAX: usize = 1000;
pub const OFFSET_MAX: usize = 1_000_000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(with_request_id("/dead-letters", "GET", [web::get().to(list)]));
    // Before `/dead-letters/{id}`, whose pattern would take these paths too.
    dead_letter_bulk::configure(cfg);
    cfg.service(with_request_id("/dead-letters/{id}/replay", "POST", [web::post().to(replay)]))
        .service(with_request_id("/dead-letters/{id}", "DELETE", [web::delete().to(delete)]));
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many, the oldest first.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<usize>,
    /// Skip this many matching messages (the previous answer's `next_offset`).
    #[param(minimum = 0, maximum = 1000000, default = 0)]
    pub offset: Option<usize>,
    /// The worker that parked them (`unrouted` for events no worker takes).
    #[param(max_length = 64)]
    pub worker: Option<String>,
    /// The event type (routing key), exactly.
    #[serde(rename = "type")]
    #[param(rename = "type", max_length = 255)]
    pub event_type: Option<String>,
    /// Text the reason contains, case-insensitively.
    #[param(max_length = 200)]
    pub reason: Option<String>,
    /// Parked at or after this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// A group's reason fingerprint, exactly (as `groups[].fingerprint` shows it).
    #[param(max_length = 1000)]
    pub group: Option<String>,
}

/// The parked messages a filter matches: a page of them, how many in all,
/// their groups by worker and reason, and the warning threshold.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParkedList {
    /// The page, oldest first.
    pub items: Vec<ParkedMessage>,
    /// Messages matching the filter.
    pub total: u64,
    /// Every matching message grouped by worker and reason fingerprint, the largest group first.
    pub groups: Vec<ParkedGroup>,
    /// The offset of the next page; absent on the last one.
    pub next_offset: Option<u64>,
    /// `BLOG_PARKED_WARN`: past this many parked messages a warning is logged; 0 when off.
    pub parked_warn: u64,
    /// Every parking lot's count, whatever the filter.
    pub lots: Vec<ParkingLot>,
    /// Messages waiting for their next attempt, per worker and retry level.
    pub retry_levels: Vec<RetryLevelCount>,
}

/// One worker's parking lot and how many messages it holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParkingLot {
    pub worker: String,
    pub parked: u64,
}

/// What happened to a parked message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParkedAction {
    pub id: String,
    /// `replayed`.
    pub status: &'static str,
}

/// List parked messages with why each was parked, filtered, grouped and paged.
#[utoipa::path(
    get, path = "/dead-letters", tag = "dead-letters",
    params(ListQuery, CorrelationId),
    responses(
        (status = 200, description = "The oldest matching parked messages and the groups of all that match", body = ParkedList,
            headers(("X-Request-Id" = String, description = "The correlation id of the request"))),
        (status = 400, description = "`limit`, `offset` or a filter field is out of range", body = Problem, content_type = "application/problem+json"),
        NoApiKey, TransportUnavailable,
    )
)]
#[tracing::instrument(skip_all, fields(limit = ?query.limit, offset = ?query.offset))]
async fn list(_: RequireApiKey, state: web::Data<AppState>, query: web::Query<ListQuery>) -> Result<HttpResponse, Problem> {
    let limit = query.limit.unwrap_or(LIMIT_DEFAULT);
    if !(1..=LIMIT_MAX).contains(&limit) {
        return Err(Problem::bad_request(format!("limit must be between 1 and {LIMIT_MAX}")));
    }
    let offset = query.offset.unwrap_or(0);
    if offset > OFFSET_MAX {
        return Err(Problem::bad_request(format!("offset must be at most {OFFSET_MAX}")));
    }
    let query = query.into_inner();
    let fields = FilterFields { worker: query.worker, event_type: query.event_type, reason: query.reason, since: query.since, group: query.group };
    let filter = fields.check().map_err(|errors| Problem { errors, ..Problem::bad_request("a filter field is invalid") })?;
    let page = state.transport.query_parked(&filter, offset, limit).await?;
    let ParkedPage { items, total, groups, next_offset } = page;
    let lots = state.transport.parked_by_worker().await?.into_iter().map(|(worker, parked)| ParkingLot { worker, parked }).collect();
    let retry_levels = state.transport.waiting_for_retry().await?;
    let parked_warn = state.dead_letters.parked_warn;
    Ok(HttpResponse::Ok().json(ParkedList { items, total, groups, next_offset, parked_warn, lots, retry_levels }))
}

/// Send a parked message back to its worker as a first attempt.
#[utoipa::path(
    post, path = "/dead-letters/{id}/replay", tag = "dead-letters",
    params(("id" = String, Path, description = "The parked message's id"), CorrelationId),
    responses(
        (status = 202, description = "Sent back to its worker", body = ParkedAction,
            headers(("X-Request-Id" = String, description = "The correlation id of the request"))),
        NoSuchParkedMessage, NoApiKey, TransportUnavailable,
    )
)]
#[tracing::instrument(skip_all, fields(correlation_id = %cid, parked_id = %id))]
async fn replay(_: RequireApiKey, state: web::Data<AppState>, cid: CorrelationId, id: web::Path<String>) -> Result<HttpResponse, Problem> {
    let found = state.transport.replay_parked(&id).await?;
    count_one(&state, &id, found, OperatorAction::ReplayOne)?;
    Ok(HttpResponse::Accepted().json(ParkedAction { id: id.into_inner(), status: "replayed" }))
}

/// Drop a parked message for good.
#[utoipa::path(
    delete, path = "/dead-letters/{id}", tag = "dead-letters",
    params(("id" = String, Path, description = "The parked message's id"), CorrelationId),
    responses(
        (status = 204, description = "Dropped", headers(("X-Request-Id" = String, description = "The correlation id of the request"))),
        NoSuchParkedMessage, NoApiKey, TransportUnavailable,
    )
)]
#[tracing::instrument(skip_all, fields(correlation_id = %cid, parked_id = %id))]
async fn delete(_: RequireApiKey, state: web::Data<AppState>, cid: CorrelationId, id: web::Path<String>) -> Result<HttpResponse, Problem> {
    let found = state.transport.delete_parked(&id).await?;
    count_one(&state, &id, found, OperatorAction::DeleteOne)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Counts the operator's action on one parked message, once the transport did it;
/// a message that was not there is a 404.
fn count_one(state: &AppState, id: &str, found: bool, action: OperatorAction) -> Result<(), Problem> {
    if !found {
        return Err(Problem::not_found(format!("no parked message {id:?}")));
    }
    state.dead_letters.record(action, 1, "one message");
    Ok(())
}
