//! Operator actions. `POST /admin/rebuild` recomputes, from the posts, the state
//! of every worker that keeps one (the tag cloud, ...); `POST
//! /admin/tag-cloud/rebuild` the tag cloud alone. Each goes through its worker
//! (so it never races the worker's own incremental updates) and answers what it found.

use std::collections::BTreeMap;

use actix::MailboxError;
use actix_web::{web, HttpResponse};
use blog_actors::messages::Rebuild;
use blog_actors::ports::RebuildReport;
use blog_actors::tag_aggregator::TagAggregator;
use blog_actors::supervision::Worker;

use super::auth::RequireApiKey;
use super::correlation::CorrelationId;
use super::problem_responses::NoApiKey;
use super::resource::with_request_id;
use super::{AppState, Problem};
use crate::configuration::REBUILD_WAIT;
use crate::registry::RunningWorker;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(with_request_id("/admin/tag-cloud/rebuild", "POST", [web::post().to(rebuild_tag_cloud)]))
        .service(with_request_id("/admin/rebuild", "POST", [web::post().to(rebuild_all)]));
}

/// Rebuild the tag cloud from all posts now, through the tag aggregator.
#[utoipa::path(
    post, path = "/admin/tag-cloud/rebuild", tag = "admin",
    params(CorrelationId),
    responses(
        (status = 200, description = "Rebuilt; what was found and how long it took", body = RebuildReport,
            headers(("X-Request-Id" = String, description = "The correlation id of the request"))),
        (status = 503, description = "The store or the tag aggregator is unavailable", body = Problem, content_type = "application/problem+json"),
        NoApiKey,
    )
)]
#[tracing::instrument(skip_all, fields(correlation_id = %cid))]
async fn rebuild_tag_cloud(_: RequireApiKey, state: web::Data<AppState>, cid: CorrelationId) -> Result<HttpResponse, Problem> {
    let aggregator = state.workers.iter().find(|w| w.kind == TagAggregator::kind());
    let report = match aggregator {
        Some(worker) => rebuild(worker).await?,
        None => None,
    };
    let report = report.ok_or_else(|| Problem::service_unavailable("this service runs no tag aggregator"))?;
    Ok(HttpResponse::Ok().json(report))
}

/// Rebuild, from all posts, every worker that keeps state of its own; one report per worker.
#[utoipa::path(
    post, path = "/admin/rebuild", tag = "admin",
    params(CorrelationId),
    responses(
        (status = 200, description = "Rebuilt; per worker, what was found and how long it took",
            body = BTreeMap<String, RebuildReport>,
            headers(("X-Request-Id" = String, description = "The correlation id of the request"))),
        (status = 503, description = "The store or a worker is unavailable", body = Problem, content_type = "application/problem+json"),
        NoApiKey,
    )
)]
#[tracing::instrument(skip_all, fields(correlation_id = %cid))]
async fn rebuild_all(_: RequireApiKey, state: web::Data<AppState>, cid: CorrelationId) -> Result<HttpResponse, Problem> {
    let mut reports = BTreeMap::new();
    for worker in &state.workers {
        if let Some(report) = rebuild(worker).await? {
            reports.insert(worker.kind.name(), report);
        }
    }
    Ok(HttpResponse::Ok().json(reports))
}

/// Asks one worker to rebuild; `None` when it keeps nothing to rebuild.
async fn rebuild(worker: &RunningWorker) -> Result<Option<RebuildReport>, Problem> {
    let name = worker.kind.name();
    let answer = worker.rebuild.send(Rebuild).timeout(REBUILD_WAIT).await.map_err(|e| mailbox(name, e))?;
    // The worker's actor logs what it found.
    Ok(answer.transpose()?)
}

/// The worker is restarting, stopped or too slow: a passing condition.
fn mailbox(worker: &str, err: MailboxError) -> Problem {
    tracing::error!(worker, error = %err, "worker did not answer a rebuild");
    Problem::service_unavailable(format!("the {} is not available; try again", worker.replace('_', " ")))
}
