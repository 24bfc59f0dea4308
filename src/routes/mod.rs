//! The HTTP API. One file per area; [`configure`] mounts them all.
// Every handler's error is a `Problem` (the problem+json answer, with its field
// errors and extensions), returned by value on purpose: it is built only on the
// error path, and boxing it would add an allocation to each error answer.
#![allow(clippy::result_large_err)]

mod admin;
mod auth;
mod browser_guard;
mod compiled_page;
mod console;
pub mod correlation;
mod dashboard;
mod dead_letter_bulk;
mod dead_letter_filter;
mod dead_letters;
mod events;
mod feeds;
mod health;
mod metrics;
mod openapi;
mod parked_metrics;
mod posts;
mod problem;
mod problem_responses;
mod resource;
mod server_span;
mod tags;
mod workers;
#[cfg(test)]
mod testing;

use std::sync::Arc;

use blog_actors::metrics::ActorMetrics;
use secrecy::SecretString;

use crate::registry::RunningWorker;
use crate::store::Store;
use crate::transport::Transport;

pub use auth::RequireApiKey;
pub use openapi::ApiDoc;
pub use correlation::{echo_request_id, CorrelationId};
pub use problem::{FieldError, Problem};
pub use server_span::server_span;

/// Largest JSON body accepted; a larger one gets 413.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// What every handler can reach; shared by all HTTP workers.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub transport: Arc<dyn Transport>,
    /// The registered workers, running: for on-demand rebuilds.
    pub workers: Vec<RunningWorker>,
    /// The queue reader: pauses and resumes workers by hand.
    pub steer: actix::Recipient<blog_actors::messages::SteerWorker>,
    pub actor_metrics: ActorMetrics,
    /// Every Prometheus series of the process.
    pub registry: prometheus::Registry,
    /// Writes and admin calls need this key when set.
    pub api_key: Option<SecretString>,
    /// The dead-letter console's pace, threshold and action counts.
    pub dead_letters: crate::dead_letter_ops::DeadLetterOps,
}

/// Mounts every route, the JSON limits and the problem+json fallbacks.
pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    let areas: [fn(&mut actix_web::web::ServiceConfig); 13] = [
        problem::configure_extractors,
        posts::configure, tags::configure, feeds::configure, events::configure, dead_letters::configure,
        admin::configure, workers::configure, health::configure, metrics::configure,
        dashboard::configure, console::configure, openapi::configure,
    ];
    for configure in areas {
        configure(cfg);
    }
}

/// The answer for any route that does not exist.
pub use problem::not_found;
