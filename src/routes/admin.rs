//! Operator actions. `POST /admin/tag-cloud/rebuild` recomputes the tag cloud
//! from the posts now, through the tag aggregator (so it never races the
//! aggregator's own incremental updates), and answers what it found.

use std::time::Duration;

use actix::MailboxError;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};
use blog_actors::messages::RebuildTagCloud;
use blog_actors::ports::RebuildReport;

use super::auth::RequireApiKey;
use super::correlation::{echo_request_id, CorrelationId};
use super::problem::allow;
use super::{AppState, Problem};

/// A rebuild scans every post; past this the caller gets 503 (the rebuild itself still finishes).
const REBUILD_TIMEOUT: Duration = Duration::from_secs(120);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/tag-cloud/rebuild")
            .wrap(from_fn(echo_request_id))
            .route(web::post().to(rebuild_tag_cloud))
            .default_service(allow("POST")),
    );
}

/// Rebuild the tag cloud from all posts now, through the tag aggregator.
#[utoipa::path(
    post, path = "/admin/tag-cloud/rebuild", tag = "admin",
    params(CorrelationId),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Rebuilt; what was found and how long it took", body = RebuildReport,
            headers(("X-Request-Id" = String, description = "The correlation id of the request"))),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store or the tag aggregator is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(correlation_id = %cid))]
async fn rebuild_tag_cloud(_: RequireApiKey, state: web::Data<AppState>, cid: CorrelationId) -> Result<HttpResponse, Problem> {
    let report = state.tag_aggregator.send(RebuildTagCloud).timeout(REBUILD_TIMEOUT).await.map_err(mailbox)??;
    tracing::info!(posts = report.posts, tags = report.tags, took_ms = report.took_ms, "tag cloud rebuilt");
    Ok(HttpResponse::Ok().json(report))
}

/// The aggregator is restarting, stopped or too slow: a passing condition.
fn mailbox(err: MailboxError) -> Problem {
    tracing::error!(error = %err, "tag aggregator did not answer");
    Problem::service_unavailable("the tag aggregator is not available; try again")
}
