//! The problem answers that several endpoints share, described once for the OpenAPI
//! document: a handler names them in its `#[utoipa::path(responses(...))]`, so the same
//! failure reads the same on every endpoint.
// Only `#[utoipa::path]` reads these types (their `IntoResponses`); no handler builds one.
#![expect(dead_code, reason = "documentation types, never constructed")]

use utoipa::IntoResponses;

use super::Problem;

/// Every endpoint behind the API key.
#[derive(IntoResponses)]
#[response(status = 401, description = "No valid API key", content_type = "application/problem+json")]
pub struct NoApiKey(Problem);

/// Endpoints that read or write the store.
#[derive(IntoResponses)]
#[response(status = 503, description = "The store is unavailable", content_type = "application/problem+json")]
pub struct StoreUnavailable(Problem);

/// The parking lot's endpoints, which ask the transport.
#[derive(IntoResponses)]
#[response(status = 503, description = "The transport is unavailable", content_type = "application/problem+json")]
pub struct TransportUnavailable(Problem);

/// Endpoints that take a JSON body ([`super::JSON_BODY_LIMIT`] at most).
#[derive(IntoResponses)]
pub enum JsonBodyRefused {
    #[response(status = 413, description = "The body is over 64 KiB", content_type = "application/problem+json")]
    TooLarge(Problem),
    #[response(status = 415, description = "The body is not sent as JSON", content_type = "application/problem+json")]
    NotJson(Problem),
}

/// Endpoints whose JSON body may fail to parse.
#[derive(IntoResponses)]
#[response(status = 400, description = "The body is not JSON", content_type = "application/problem+json")]
pub struct BodyNotJson(Problem);

/// The endpoints of one post.
#[derive(IntoResponses)]
#[response(status = 404, description = "No such post", content_type = "application/problem+json")]
pub struct NoSuchPost(Problem);

/// The endpoints that write a post.
#[derive(IntoResponses)]
#[response(status = 422, description = "The post is not valid; `errors` names each field", content_type = "application/problem+json")]
pub struct PostNotValid(Problem);

/// The endpoints of one parked message.
#[derive(IntoResponses)]
#[response(status = 404, description = "No such parked message", content_type = "application/problem+json")]
pub struct NoSuchParkedMessage(Problem);
