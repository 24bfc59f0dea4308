//! Helpers shared by the route modules' unit tests.

use actix_web::http::header::HeaderMap;
use actix_web::test::TestRequest;
use actix_web::HttpRequest;

/// A request carrying these headers, in this order.
pub(super) fn request(headers: &[(&str, &str)]) -> HttpRequest {
    headers.iter().fold(TestRequest::default(), |r, (k, v)| r.insert_header((*k, *v))).to_http_request()
}

/// The headers of such a request, for the checks that read only those.
pub(super) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    request(pairs).headers().clone()
}
