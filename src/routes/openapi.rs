//! `GET /openapi.json`: the API described as OpenAPI 3.1, generated from the
//! handlers' `#[utoipa::path]` annotations and the types they read and answer,
//! so the description cannot drift from the code.

use std::sync::LazyLock;

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::resource::get_only;
use super::{admin, console, dashboard, dead_letter_bulk, dead_letters, events, feeds, health, metrics, posts, tags, workers};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "blog",
        description = "A blog API whose side work (tag cloud, read model, order mails) runs in supervised actors \
                       fed by a durable queue. Every error is `application/problem+json`."
    ),
    paths(
        posts::list_posts, posts::create_post, posts::get_post, posts::update_post, posts::delete_post,
        tags::tag_cloud,
        feeds::site_feed,
        feeds::tag_feed,
        events::publish_event,
        dead_letters::list, dead_letters::replay, dead_letters::delete,
        dead_letter_bulk::replay_matching, dead_letter_bulk::delete_matching,
        admin::rebuild_tag_cloud,
        admin::rebuild_all,
        workers::pause, workers::resume,
        health::live, health::ready,
        metrics::metrics, metrics::actors,
        dashboard::page, dashboard::script, dashboard::style,
        console::page, console::script, console::style,
        openapi_json,
    ),
    modifiers(&ApiKeys),
    tags(
        (name = "posts", description = "Posts: written to the write model, read from the read model"),
        (name = "tags", description = "The tag cloud"),
        (name = "feeds", description = "Atom feeds of the newest posts"),
        (name = "events", description = "Events from other services"),
        (name = "dead-letters", description = "The parking lot of messages a worker gave up on"),
        (name = "admin", description = "Operator actions"),
        (name = "health", description = "Liveness and readiness"),
        (name = "observability", description = "Metrics, actor figures, the dashboard and this document"),
    )
)]
pub struct ApiDoc;

/// The two ways to present the API key, and the operations that need it: those that
/// name [`NoApiKey`](super::problem_responses::NoApiKey)'s 401, so a handler states it once.
struct ApiKeys;

impl Modify for ApiKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        components.add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
        let either_scheme = || vec![SecurityRequirement::new("bearer", [""; 0]), SecurityRequirement::new("api_key", [""; 0])];
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                if operation.responses.responses.contains_key("401") {
                    operation.security = Some(either_scheme());
                }
            }
        }
    }
}

/// Built once: the document only changes with the binary.
static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serialises"));

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/openapi.json", openapi_json));
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "observability",
    responses((status = 200, description = "The OpenAPI 3.1 description of this API", body = Object))
)]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().insert_header(ContentType::json()).body(DOCUMENT.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn every_route_is_described_with_its_errors() {
        let doc: Value = serde_json::from_str(&DOCUMENT).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/posts", "/posts/{id}", "/tags", "/events", "/dead-letters", "/dead-letters/{id}/replay", "/dead-letters/{id}",
            "/dead-letters/replay", "/dead-letters/delete",
            "/admin/tag-cloud/rebuild", "/admin/workers/{name}/pause", "/admin/workers/{name}/resume", "/health/live", "/health/ready", "/metrics", "/actors", "/", "/openapi.json",
        ] {
            assert!(paths.contains_key(path), "{path} is missing");
        }
        let create = &doc["paths"]["/posts"]["post"];
        assert!(create["responses"]["422"]["content"]["application/problem+json"].is_object(), "{create}");
        assert_eq!(create["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/PostInput");
        assert!(create["security"].is_array());
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }
}
