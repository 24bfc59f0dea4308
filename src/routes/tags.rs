//! The tag cloud, most used first, as the tag aggregator keeps it.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};
use blog_actors::ports::TagCount;
use serde::Deserialize;
use utoipa::IntoParams;

use super::problem_responses::StoreUnavailable;
use super::resource::get_only;
use super::{AppState, Problem};

pub const LIMIT_MAX: u32 = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/tags", tag_cloud));
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TagsQuery {
    /// At most this many tags, the most used; all tags when absent.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The tag cloud, most used first (ties by name).
#[utoipa::path(
    get, path = "/tags", tag = "tags",
    params(TagsQuery),
    responses(
        (status = 200, description = "Every tag with the number of posts that carry it", body = Vec<TagCount>),
        (status = 400, description = "`limit` is out of range", body = Problem, content_type = "application/problem+json"),
        StoreUnavailable,
    )
)]
#[tracing::instrument(skip_all, fields(limit = ?query.limit))]
async fn tag_cloud(state: web::Data<AppState>, query: web::Query<TagsQuery>) -> Result<HttpResponse, Problem> {
    if let Some(limit) = query.limit {
        if !(1..=LIMIT_MAX).contains(&limit) {
            return Err(Problem::bad_request(format!("limit must be between 1 and {LIMIT_MAX}")));
        }
    }
    let cloud = state.store.tag_cloud_json(query.limit).await?;
    Ok(HttpResponse::Ok().content_type(ContentType::json()).body(cloud))
}
