//! Posts. Writes go to the write model (with their event in the outbox, then the
//! outbox wakes the relay itself); reads come from the read model the projector keeps, so a
//! post just written may take a moment to appear in `GET`. Reads are served as the store's
//! JSON, which a store may keep between changes of its read model.

use actix_web::http::header::{self, ContentType, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use blog_actors::event::PostSnapshot;
use blog_actors::ports::PostView;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::auth::RequireApiKey;
use super::correlation::CorrelationId;
use super::problem::FieldError;
use super::problem_responses::{BodyNotJson, JsonBodyRefused, NoApiKey, NoSuchPost, PostNotValid, StoreUnavailable};
use super::resource::with_request_id;
use super::{AppState, Problem};
use crate::domain::post::{InvalidPost, PostInput};
use crate::store::{PostPage, PostWrite};

pub const PER_PAGE_DEFAULT: u32 = 20;
pub const PER_PAGE_MAX: u32 = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(with_request_id("/posts", "GET, POST", [web::get().to(list_posts), web::post().to(create_post)]))
        .service(with_request_id(
            "/posts/{id}",
            "GET, PUT, DELETE",
            [web::get().to(get_post), web::put().to(update_post), web::delete().to(delete_post)],
        ));
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only posts with this tag (matched trimmed and lower-cased); empty means all.
    pub tag: Option<String>,
    /// Counts from 1; a page past the end is empty.
    #[param(minimum = 1, maximum = 4294967295_u64, format = Int64, default = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
}

/// List posts from the read model, newest first.
#[utoipa::path(
    get, path = "/posts", tag = "posts",
    params(ListQuery, CorrelationId),
    responses(
        (status = 200, description = "One page of posts", body = PostPage),
        (status = 400, description = "A query parameter is out of range", body = Problem, content_type = "application/problem+json"),
        StoreUnavailable,
    )
)]
#[tracing::instrument(skip_all, fields(tag = ?query.tag, page = ?query.page))]
async fn list_posts(state: web::Data<AppState>, query: web::Query<ListQuery>) -> Result<HttpResponse, Problem> {
    let page = query.page.unwrap_or(1);
    let per_page = query.per_page.unwrap_or(PER_PAGE_DEFAULT);
    if page < 1 {
        return Err(Problem::bad_request("page counts from 1"));
    }
    if !(1..=PER_PAGE_MAX).contains(&per_page) {
        return Err(Problem::bad_request(format!("per_page must be between 1 and {PER_PAGE_MAX}")));
    }
    // Tags are stored normalised, so the filter is normalised the same way; `?tag=` means no filter.
    let tag = query.tag.as_deref().map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty());
    let found = state.store.list_posts_json(tag.as_deref(), page, per_page).await?;
    Ok(HttpResponse::Ok().content_type(ContentType::json()).body(found))
}

/// One post as the read model holds it; its `ETag` is its version.
#[utoipa::path(
    get, path = "/posts/{id}", tag = "posts",
    params(("id" = String, Path, description = "The post's id (a uuid)"), CorrelationId),
    responses(
        (status = 200, description = "The post", body = PostView,
            headers(("ETag" = String, description = "The version, quoted"))),
        NoSuchPost, StoreUnavailable,
    )
)]
#[tracing::instrument(skip_all, fields(post_id = %id))]
async fn get_post(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, Problem> {
    let id = post_id(&id)?;
    match state.store.get_post_view_json(id).await? {
        Some(view) => Ok(HttpResponse::Ok().insert_header(etag(view.version)).content_type(ContentType::json()).body(view.json)),
        None => Err(no_post(id)),
    }
}

/// Create a post; its `post.created` event leaves through the outbox.
#[utoipa::path(
    post, path = "/posts", tag = "posts",
    params(CorrelationId),
    request_body = PostInput,
    responses(
        (status = 201, description = "Created", body = PostSnapshot, headers(
            ("Location" = String, description = "Where the post can be read"),
            ("ETag" = String, description = "The version, quoted"),
            ("X-Request-Id" = String, description = "The correlation id of the request"),
        )),
        BodyNotJson, PostNotValid, NoApiKey, JsonBodyRefused, StoreUnavailable,
    )
)]
#[tracing::instrument(skip_all, fields(correlation_id = %cid))]
async fn create_post(_: RequireApiKey, state: web::Data<AppState>, cid: CorrelationId, input: web::Json<PostInput>) -> Result<HttpResponse, Problem> {
    let post = input.into_inner().validate().map_err(invalid)?;
    let snapshot = state.store.create_post(post, Some(cid.0)).await?;
    tracing::info!(post_id = %snapshot.id, "post created");
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/posts/{}", snapshot.id)))
        .insert_header(etag(snapshot.version))
        .json(snapshot))
}

/// Replace a post; `If-Match` makes it conditional on the version.
#[utoipa::path(
    put, path = "/posts/{id}", tag = "posts",
    params(
        ("id" = String, Path, description = "The post's id (a uuid)"),
        ("If-Match" = Option<String>, Header, description = "The version the change is based on, e.g. `\"3\"`; `*` for any",
            pattern = r#"^[ \t]*(\*|(W/)?("[+-]?[0-9]+"|[+-]?[0-9]+))[ \t]*$"#),
        CorrelationId,
    ),
    request_body = PostInput,
    responses(
        (status = 200, description = "Replaced", body = PostSnapshot, headers(
            ("ETag" = String, description = "The new version, quoted"),
            ("X-Request-Id" = String, description = "The correlation id of the request"),
        )),
        (status = 400, description = "The body is not JSON, or If-Match is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "If-Match names another version; `current_version` tells which", body = Problem, content_type = "application/problem+json"),
        NoSuchPost, PostNotValid, NoApiKey, JsonBodyRefused, StoreUnavailable,
    )
)]
#[tracing::instrument(skip_all, fields(correlation_id = %cid, post_id = %id))]
async fn update_post(
    _: RequireApiKey,
    state: web::Data<AppState>,
    cid: CorrelationId,
    req: HttpRequest,
    id: web::Path<String>,
    input: web::Json<PostInput>,
) -> Result<HttpResponse, Problem> {
    let id = post_id(&id)?;
    let expected = if_match(&req)?;
    let post = input.into_inner().validate().map_err(invalid)?;
    match state.store.update_post(id, post, expected, Some(cid.0)).await? {
        PostWrite::Done(snapshot) => {
            tracing::info!(version = snapshot.version, "post updated");
            Ok(HttpResponse::Ok().insert_header(etag(snapshot.version)).json(snapshot))
        }
        PostWrite::NotFound => Err(no_post(id)),
        PostWrite::VersionConflict { current } => Err(conflict(id, expected, current)),
    }
}

/// Delete a post; `post.deleted` removes it from the tag cloud and the read model.
#[utoipa::path(
    delete, path = "/posts/{id}", tag = "posts",
    params(("id" = String, Path, description = "The post's id (a uuid)"), CorrelationId),
    responses(
        (status = 204, description = "Deleted", headers(("X-Request-Id" = String, description = "The correlation id of the request"))),
        (status = 409, description = "The post changed meanwhile", body = Problem, content_type = "application/problem+json"),
        NoSuchPost, NoApiKey, StoreUnavailable,
    )
)]
#[tracing::instrument(skip_all, fields(correlation_id = %cid, post_id = %id))]
async fn delete_post(_: RequireApiKey, state: web::Data<AppState>, cid: CorrelationId, id: web::Path<String>) -> Result<HttpResponse, Problem> {
    let id = post_id(&id)?;
    match state.store.delete_post(id, Some(cid.0)).await? {
        PostWrite::Done(_) => {
            tracing::info!("post deleted");
            Ok(HttpResponse::NoContent().finish())
        }
        PostWrite::NotFound => Err(no_post(id)),
        PostWrite::VersionConflict { current } => Err(conflict(id, None, current)),
    }
}

/// A path segment that is not a uuid names no post: 404, not 400.
fn post_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::not_found(format!("no post {raw:?}")))
}

fn no_post(id: Uuid) -> Problem {
    Problem::not_found(format!("no post {id}"))
}

fn conflict(id: Uuid, expected: Option<i64>, current: i64) -> Problem {
    let asked = expected.map(|v| format!(" (If-Match asked for {v})")).unwrap_or_default();
    Problem::conflict(format!("post {id} is at version {current}{asked}")).with_extension("current_version", current)
}

fn invalid(err: InvalidPost) -> Problem {
    let errors = err.0.iter().map(|(field, message)| FieldError { field: (*field).to_owned(), message: message.clone() });
    Problem::unprocessable(format!("the post is not valid: {err}"), errors.collect())
}

fn etag(version: i64) -> (header::HeaderName, HeaderValue) {
    // A decimal number in quotes is always a valid header value.
    (header::ETAG, HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\"")))
}

/// `If-Match: "3"` (also `W/"3"` or a bare `3`) → `Some(3)`; absent or `*` → `None`.
pub fn if_match(req: &HttpRequest) -> Result<Option<i64>, Problem> {
    let Some(raw) = req.headers().get(header::IF_MATCH) else { return Ok(None) };
    let bad = || Problem::bad_request("If-Match must hold one version in quotes, e.g. \"3\"");
    let value = raw.to_str().map_err(|_| bad())?.trim();
    if value == "*" {
        return Ok(None);
    }
    let value = value.strip_prefix("W/").unwrap_or(value);
    let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
    value.parse::<i64>().map(Some).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn with_if_match(v: &str) -> HttpRequest {
        TestRequest::default().insert_header((header::IF_MATCH, v)).to_http_request()
    }

    #[test]
    fn if_match_names_the_expected_version() {
        assert_eq!(if_match(&TestRequest::default().to_http_request()).unwrap(), None);
        assert_eq!(if_match(&with_if_match("\"3\"")).unwrap(), Some(3));
        assert_eq!(if_match(&with_if_match("W/\"4\"")).unwrap(), Some(4));
        assert_eq!(if_match(&with_if_match("*")).unwrap(), None);
        assert_eq!(if_match(&with_if_match("\"x\"")).unwrap_err().status, 400);
    }

    #[test]
    fn a_conflict_names_the_current_version() {
        let p = conflict(Uuid::nil(), Some(1), 2);
        assert_eq!(p.status, 409);
        assert_eq!(p.extensions["current_version"], 2);
    }

    #[test]
    fn a_non_uuid_is_not_found() {
        assert_eq!(post_id("nope").unwrap_err().status, 404);
    }
}
