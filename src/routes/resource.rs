//! How a path is mounted: a method it does not serve gets 405 with `Allow`, and the
//! resources that act for a caller echo the request's correlation id.

use actix_web::dev::HttpServiceFactory;
use actix_web::middleware::from_fn;
use actix_web::{web, FromRequest, Handler, Responder, Route};

use super::correlation::echo_request_id;
use super::problem::allow;

/// A resource that only answers `GET`, with `handler`.
pub fn get_only<F, Args>(path: &str, handler: F) -> impl HttpServiceFactory
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path).route(web::get().to(handler)).default_service(allow("GET"))
}

/// A resource serving `routes`, whose methods `allowed` lists, that answers with the
/// request's `X-Request-Id`.
pub fn with_request_id(path: &str, allowed: &'static str, routes: impl IntoIterator<Item = Route>) -> impl HttpServiceFactory {
    let resource = web::resource(path).wrap(from_fn(echo_request_id));
    routes.into_iter().fold(resource, |resource, route| resource.route(route)).default_service(allow(allowed))
}
