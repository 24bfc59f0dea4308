//! The parking lot: messages a worker gave up on, with why. Operators list
//! them, replay them once the cause is fixed, or drop them. All authenticated:
//! bodies may hold customer data.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::RequireApiKey;
use super::correlation::CorrelationId;
use super::problem_responses::{NoApiKey, TransportUnavailable};
use super::resource::with_request_id;
use super::{AppState, Problem};
use crate::transport::ParkedMessage;

pub const LIMIT_DEFAULT: usize = 100;
pub const LIMIT_MAX: usize = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(with_request_id("/dead-letters", "GET", [web::get().to(list)]))
        .service(with_request_id("/dead-letters/{id}/replay", "POST", [web::post().to(replay)]))
        .service(with_request_id("/dead-letters/{id}", "DELETE", [web::delete().to(delete)]));
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many, the oldest first.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<usize>,
}

/// Parked messages, oldest first, and how many there are in all.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParkedList {
    pub items: Vec<ParkedMessage>,
    pub total: u64,
}

/// What happened to a parked message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParkedAction {
    pub id: String,
    /// `replayed`.
    pub status: &'static str,
}

/// List parked messages with why each was parked.
#[utoipa::path(
    get, path = "/dead-letters", tag = "dead-letters",
    params(ListQuery, CorrelationId),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The oldest parked messages", body = ParkedList,
            headers(("X-Request-Id" = String, description = "The correlation id of the request"))),
        (status = 400, description = "`limit` is out of range", body = Problem, content_type = "application/problem+json"),
        NoApiKey, TransportUnavailable,
    )
)]
#[tracing::instrument(skip_all, fields(limit = ?query.limit))]
async fn list(_: RequireApiKey, state: web::Data<AppState>, query: web::Query<ListQuery>) -> Result<HttpResponse, Problem> {
    let limit = query.limit.unwrap_or(LIMIT_DEFAULT);
    if !(1..=LIMIT_MAX).contains(&limit) {
        return Err(Problem::bad_request(format!("limit must be between 1 and {LIMIT_MAX}")));
    }
    let items = state.transport.list_parked(limit).await?;
    let total = state.transport.parked_count().await?;
    Ok(HttpResponse::Ok().json(ParkedList { items, total }))
}

/// Send a parked message back to its worker as a first attempt.
#[utoipa::path(
    post, path = "/dead-letters/{id}/replay", tag = "dead-letters",
    params(("id" = String, Path, description = "The parked message's id"), CorrelationId),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Sent back to its worker", body = ParkedAction,
            headers(("X-Request-Id" = String, description = "The correlation id of the request"))),
        (status = 404, description = "No such parked message", body = Problem, content_type = "application/problem+json"),
        NoApiKey, TransportUnavailable,
    )
)]
#[tracing::instrument(skip_all, fields(correlation_id = %cid, parked_id = %id))]
async fn replay(
    _: RequireApiKey,
    state: web::Data<AppState>,
    cid: CorrelationId,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    if state.transport.replay_parked(&id).await? {
        tracing::info!("parked message replayed");
        Ok(HttpResponse::Accepted().json(ParkedAction { id: id.into_inner(), status: "replayed" }))
    } else {
        Err(no_such(&id))
    }
}

/// Drop a parked message for good.
#[utoipa::path(
    delete, path = "/dead-letters/{id}", tag = "dead-letters",
    params(("id" = String, Path, description = "The parked message's id"), CorrelationId),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Dropped", headers(("X-Request-Id" = String, description = "The correlation id of the request"))),
        (status = 404, description = "No such parked message", body = Problem, content_type = "application/problem+json"),
        NoApiKey, TransportUnavailable,
    )
)]
#[tracing::instrument(skip_all, fields(correlation_id = %cid, parked_id = %id))]
async fn delete(
    _: RequireApiKey,
    state: web::Data<AppState>,
    cid: CorrelationId,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    if state.transport.delete_parked(&id).await? {
        tracing::info!("parked message deleted");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(no_such(&id))
    }
}

fn no_such(id: &str) -> Problem {
    Problem::not_found(format!("no parked message {id:?}"))
}
