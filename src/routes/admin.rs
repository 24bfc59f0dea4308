//! Operator actions. `POST /admin/tag-cloud/rebuild` recomputes the tag cloud
//! from the posts now, through the tag aggregator (so it never races the
//! aggregator's own incremental updates), and answers what it found.

use std::time::Duration;

use actix::MailboxError;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};
use blog_actors::messages::RebuildTagCloud;

use super::auth::RequireApiKey;
use super::correlation::{echo_request_id, CorrelationId};
use super::problem::method_not_allowed;
use super::{AppState, Problem};

/// A rebuild scans every post; past this the caller gets 503 (the rebuild itself still finishes).
const REBUILD_TIMEOUT: Duration = Duration::from_secs(120);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/tag-cloud/rebuild")
            .wrap(from_fn(echo_request_id))
            .route(web::post().to(rebuild_tag_cloud))
            .default_service(web::to(method_not_allowed)),
    );
}

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
