//! The parking lot: messages a worker gave up on, with why. Operators list
//! them, replay them once the cause is fixed, or drop them. All authenticated:
//! bodies may hold customer data.

use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::auth::RequireApiKey;
use super::correlation::{echo_request_id, CorrelationId};
use super::problem::method_not_allowed;
use super::{AppState, Problem};

pub const LIMIT_DEFAULT: usize = 100;
pub const LIMIT_MAX: usize = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/dead-letters")
            .wrap(from_fn(echo_request_id))
            .route(web::get().to(list))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/dead-letters/{id}/replay")
            .wrap(from_fn(echo_request_id))
            .route(web::post().to(replay))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/dead-letters/{id}")
            .wrap(from_fn(echo_request_id))
            .route(web::delete().to(delete))
            .default_service(web::to(method_not_allowed)),
    );
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub limit: Option<usize>,
}

#[tracing::instrument(skip_all, fields(limit = ?query.limit))]
async fn list(_: RequireApiKey, state: web::Data<AppState>, query: web::Query<ListQuery>) -> Result<HttpResponse, Problem> {
    let limit = query.limit.unwrap_or(LIMIT_DEFAULT);
    if !(1..=LIMIT_MAX).contains(&limit) {
        return Err(Problem::bad_request(format!("limit must be between 1 and {LIMIT_MAX}")));
    }
    let items = state.transport.list_parked(limit).await?;
    let total = state.transport.parked_count().await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items, "total": total })))
}

#[tracing::instrument(skip_all, fields(correlation_id = %cid, parked_id = %id))]
async fn replay(
    _: RequireApiKey,
    state: web::Data<AppState>,
    cid: CorrelationId,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    if state.transport.replay_parked(&id).await? {
        tracing::info!("parked message replayed");
        Ok(HttpResponse::Accepted().json(json!({ "id": id.as_str(), "status": "replayed" })))
    } else {
        Err(no_such(&id))
    }
}

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
