//! `GET /console/dead-letters`: the dead-letter console, a page of its own
//! beside the dashboard (same style of delivery: compiled in, same-origin only,
//! the dashboard's Content-Security-Policy). The page reads and acts through
//! the `/dead-letters` API with the key the operator types in.

use actix_web::{web, HttpResponse};

use super::dashboard::asset;
use super::resource::get_only;

const PAGE: &str = include_str!("../../assets/dead_letters.html");
const SCRIPT: &str = include_str!("../../assets/dead_letters.js");
const STYLE: &str = include_str!("../../assets/dead_letters.css");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/console/dead-letters", page))
        .service(get_only("/console/dead-letters.js", script))
        .service(get_only("/console/dead-letters.css", style));
}

/// The dead-letter console: groups, filters, details, replay and delete.
#[utoipa::path(
    get, path = "/console/dead-letters", tag = "dead-letters",
    responses((status = 200, description = "The dead-letter console page (it asks for the API key)", body = String, content_type = "text/html"))
)]
async fn page() -> HttpResponse {
    asset("text/html; charset=utf-8", PAGE)
}

/// The console's script.
#[utoipa::path(
    get, path = "/console/dead-letters.js", tag = "dead-letters",
    responses((status = 200, description = "The console's script", body = String, content_type = "text/javascript"))
)]
async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The console's style sheet.
#[utoipa::path(
    get, path = "/console/dead-letters.css", tag = "dead-letters",
    responses((status = 200, description = "The console's style sheet", body = String, content_type = "text/css"))
)]
async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_names_no_other_origin_and_loads_its_own_files() {
        for (name, text) in [("html", PAGE), ("js", SCRIPT), ("css", STYLE)] {
            let rest = text.replace("http://www.w3.org/2000/svg", "");
            assert!(!rest.contains("http:") && !rest.contains("https:") && !rest.contains("@import"), "{name} names another origin");
        }
        assert!(PAGE.contains(r#"<script src="/console/dead-letters.js" defer></script>"#));
        assert!(PAGE.contains(r#"<link rel="stylesheet" href="/console/dead-letters.css">"#));
    }

    #[test]
    fn the_key_is_kept_for_the_tab_only() {
        assert!(SCRIPT.contains("sessionStorage") && !SCRIPT.contains("localStorage"));
        assert!(!SCRIPT.contains("innerHTML"), "message data is set as text, never parsed as HTML");
    }
}
