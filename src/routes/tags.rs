//! The tag cloud, most used first, as the tag aggregator keeps it.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::problem::method_not_allowed;
use super::{AppState, Problem};

pub const LIMIT_MAX: u32 = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/tags").route(web::get().to(tag_cloud)).default_service(web::to(method_not_allowed)));
}

#[derive(Debug, Deserialize)]
pub struct TagsQuery {
    /// All tags when absent.
    pub limit: Option<u32>,
}

#[tracing::instrument(skip_all, fields(limit = ?query.limit))]
async fn tag_cloud(state: web::Data<AppState>, query: web::Query<TagsQuery>) -> Result<HttpResponse, Problem> {
    if let Some(limit) = query.limit {
        if !(1..=LIMIT_MAX).contains(&limit) {
            return Err(Problem::bad_request(format!("limit must be between 1 and {LIMIT_MAX}")));
        }
    }
    let cloud = state.store.tag_cloud(query.limit).await?;
    Ok(HttpResponse::Ok().json(cloud))
}
