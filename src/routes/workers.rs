//! `POST /admin/workers/{name}/pause` and `/resume`: an operator stops a worker
//! taking deliveries (they wait in its queue, no attempt is used) and lets it go
//! on. A worker paused by hand stays paused until resumed by hand, whatever its
//! circuit breaker does. The queue reader does the steering.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use blog_actors::messages::SteerWorker;
use blog_actors::metrics::BreakerFigures;
use serde::Serialize;

use super::auth::RequireApiKey;
use crate::dead_letter_ops::OperatorAction;
use super::correlation::CorrelationId;
use super::problem_responses::NoApiKey;
use super::resource::with_request_id;
use super::{AppState, Problem};

/// The reader answers at once unless it is swamped.
const STEER_TIMEOUT: Duration = Duration::from_secs(10);
/// Worker names are short identifiers; a longer one cannot be a worker.
const MAX_NAME: usize = 64;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(with_request_id("/admin/workers/{name}/pause", "POST", [web::post().to(pause)]))
        .service(with_request_id("/admin/workers/{name}/resume", "POST", [web::post().to(resume)]));
}

/// A worker's switches after the call.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkerSwitches {
    pub worker: String,
    pub breaker: BreakerFigures,
}

/// Declares the two steering handlers, which differ only in path, wording and the switch.
macro_rules! steering_routes {
    ($($(#[doc = $doc:tt])* $handler:ident: $path:tt, $answer:tt, pause = $pause:tt;)+) => {$(
        $(#[doc = $doc])*
        #[utoipa::path(
            post, path = $path, tag = "admin",
            params(("name" = String, Path, description = "The worker, as `/actors` names it"), CorrelationId),
            responses(
                (status = 200, description = $answer, body = WorkerSwitches),
                (status = 404, description = "No such worker", body = Problem, content_type = "application/problem+json"),
                (status = 503, description = "The queue reader did not answer", body = Problem, content_type = "application/problem+json"),
                NoApiKey,
            )
        )]
        #[tracing::instrument(skip_all, fields(correlation_id = %cid, worker = %name))]
        async fn $handler(_: RequireApiKey, state: web::Data<AppState>, name: web::Path<String>, cid: CorrelationId) -> Result<HttpResponse, Problem> {
            steer(&state, name.into_inner(), $pause).await
        }
    )+};
}

steering_routes! {
    /// Pause one worker: it takes no deliveries until resumed; they wait in its queue.
    pause: "/admin/workers/{name}/pause", "Paused; the worker's breaker and switch now", pause = true;
    /// Resume a worker paused by hand (its breaker, if open, still holds it until a probe succeeds).
    resume: "/admin/workers/{name}/resume", "Resumed; the worker's breaker and switch now", pause = false;
}

async fn steer(state: &AppState, worker: String, pause: bool) -> Result<HttpResponse, Problem> {
    let unknown = || Problem::not_found("no worker of that name");
    if worker.len() > MAX_NAME {
        return Err(unknown());
    }
    let answer = state.steer.send(SteerWorker { worker: worker.clone(), pause }).timeout(STEER_TIMEOUT).await;
    let breaker = answer.map_err(|_| Problem::service_unavailable("the queue reader did not answer; try again"))?.ok_or_else(unknown)?;
    let action = if pause { OperatorAction::Pause } else { OperatorAction::Resume };
    state.dead_letters.record(action, 0, &format!("worker={worker}"));
    Ok(HttpResponse::Ok().json(WorkerSwitches { worker, breaker }))
}
