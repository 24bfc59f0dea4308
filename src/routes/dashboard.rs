//! `GET /`: the live dashboard. One page and its script and style, compiled
//! into the binary; the page only talks to this service (`/actors`, `/tags`),
//! and its Content-Security-Policy forbids anything else, so it works offline.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};

use super::resource::get_only;

const PAGE: &str = include_str!("../../assets/dashboard.html");
const SCRIPT: &str = include_str!("../../assets/dashboard.js");
const STYLE: &str = include_str!("../../assets/dashboard.css");

/// Same-origin only; `data:` for the inline icon. No inline script or style is needed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/", page)).service(get_only("/dashboard.js", script)).service(get_only("/dashboard.css", style));
}

pub(super) fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        // Assets change with the binary; revalidating keeps an upgraded service from showing an old page.
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .body(body)
}

/// The dashboard page: the tag cloud and every actor's figures, live.
#[utoipa::path(
    get, path = "/", tag = "observability",
    responses((status = 200, description = "The dashboard page", body = String, content_type = "text/html"))
)]
async fn page() -> HttpResponse {
    asset("text/html; charset=utf-8", PAGE)
}

/// The dashboard's script.
#[utoipa::path(
    get, path = "/dashboard.js", tag = "observability",
    responses((status = 200, description = "The dashboard's script", body = String, content_type = "text/javascript"))
)]
async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The dashboard's style sheet.
#[utoipa::path(
    get, path = "/dashboard.css", tag = "observability",
    responses((status = 200, description = "The dashboard's style sheet", body = String, content_type = "text/css"))
)]
async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `http` in the assets is the SVG namespace name, which is never fetched.
    #[test]
    fn the_assets_name_no_other_origin() {
        for (name, text) in [("html", PAGE), ("js", SCRIPT), ("css", STYLE)] {
            let rest = text.replace("http://www.w3.org/2000/svg", "");
            assert!(!rest.contains("http:") && !rest.contains("https:") && !rest.contains("//cdn"), "{name} names another origin");
            assert!(!rest.contains("@import"), "{name} imports");
        }
    }

    #[test]
    fn the_page_loads_its_own_script_and_style() {
        assert!(PAGE.contains(r#"<script src="/dashboard.js" defer></script>"#));
        assert!(PAGE.contains(r#"<link rel="stylesheet" href="/dashboard.css">"#));
    }
}
