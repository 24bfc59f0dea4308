//! placeholder
pub struct Problem;
pub fn configure_extractors(_: &mut actix_web::web::ServiceConfig) {}
pub async fn not_found() -> actix_web::HttpResponse { actix_web::HttpResponse::NotFound().finish() }
