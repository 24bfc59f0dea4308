//! `POST /dead-letters/replay` and `POST /dead-letters/delete`: act on every
//! parked message a filter matches. `"dry_run": true` answers how many that is
//! without acting, so the console can show the count before anyone confirms.
//! Replays go at `BLOG_REPLAY_RATE`, so a pile of dead letters never floods a worker.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::RequireApiKey;
use super::correlation::CorrelationId;
use super::dead_letter_filter::{scope, FilterFields};
use super::problem_responses::{BodyNotJson, JsonBodyRefused, NoApiKey, TransportUnavailable};
use super::resource::with_request_id;
use super::{AppState, Problem};
use crate::dead_letter_ops::OperatorAction;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(with_request_id("/dead-letters/replay", "POST", [web::post().to(replay_matching)]))
        .service(with_request_id("/dead-letters/delete", "POST", [web::post().to(delete_matching)]));
}

/// A filter (every field optional; none means every parked message) and whether only to count.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// The worker that parked them (`unrouted` for events no worker takes).
    #[schema(max_length = 64)]
    pub worker: Option<String>,
    /// The event type (routing key), exactly.
    #[serde(rename = "type")]
    #[schema(max_length = 255)]
    pub event_type: Option<String>,
    /// Text the reason contains, case-insensitively.
    #[schema(max_length = 200)]
    pub reason: Option<String>,
    /// Parked at or after this instant (RFC 3339).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// A group's reason fingerprint, exactly (as `groups[].fingerprint` shows it).
    #[schema(max_length = 1000)]
    pub group: Option<String>,
    /// Count the matching messages without acting on them.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a bulk action did (or, on a dry run, would do).
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkOutcome {
    /// `replay` or `delete`.
    pub action: &'static str,
    pub dry_run: bool,
    /// Messages matching the filter (dry run) or acted on.
    pub count: u64,
}

/// Declares the two bulk handlers, which differ only in path, wording and the action.
macro_rules! bulk_routes {
    ($($(#[doc = $doc:tt])* $handler:ident: $path:tt, $answer:tt, $action:ident;)+) => {$(
        $(#[doc = $doc])*
        #[utoipa::path(
            post, path = $path, tag = "dead-letters",
            params(CorrelationId),
            request_body = BulkRequest,
            responses(
                (status = 200, description = $answer, body = BulkOutcome,
                    headers(("X-Request-Id" = String, description = "The correlation id of the request"))),
                (status = 422, description = "A filter field is invalid or unknown", body = Problem, content_type = "application/problem+json"),
                BodyNotJson, NoApiKey, JsonBodyRefused, TransportUnavailable,
            )
        )]
        #[tracing::instrument(skip_all, fields(correlation_id = %cid))]
        async fn $handler(_: RequireApiKey, state: web::Data<AppState>, cid: CorrelationId, body: web::Json<BulkRequest>) -> Result<HttpResponse, Problem> {
            bulk(&state, &body, OperatorAction::$action).await
        }
    )+};
}

bulk_routes! {
    /// Replay every parked message the filter matches, throttled to `BLOG_REPLAY_RATE`.
    replay_matching: "/dead-letters/replay", "How many were replayed, or on a dry run would be", ReplayBulk;
    /// Drop every parked message the filter matches.
    delete_matching: "/dead-letters/delete", "How many were dropped, or on a dry run would be", DeleteBulk;
}

async fn bulk(state: &AppState, request: &BulkRequest, action: OperatorAction) -> Result<HttpResponse, Problem> {
    let fields = FilterFields {
        worker: request.worker.clone(),
        event_type: request.event_type.clone(),
        reason: request.reason.clone(),
        since: request.since.clone(),
        group: request.group.clone(),
    };
    let filter = fields.check().map_err(|errors| Problem::unprocessable("a filter field is invalid", errors))?;
    let name = if action == OperatorAction::ReplayBulk { "replay" } else { "delete" };
    if request.dry_run {
        let count = state.transport.query_parked(&filter, 0, 0).await?.total;
        return Ok(HttpResponse::Ok().json(BulkOutcome { action: name, dry_run: true, count }));
    }
    let count = if action == OperatorAction::ReplayBulk {
        state.transport.replay_matching(&filter, &state.dead_letters.throttle).await?
    } else {
        state.transport.delete_matching(&filter).await?
    };
    state.dead_letters.record(action, count, &scope(&filter));
    Ok(HttpResponse::Ok().json(BulkOutcome { action: name, dry_run: false, count }))
}
