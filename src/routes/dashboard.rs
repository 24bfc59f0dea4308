//! `GET /`: the live dashboard. One page and its script and style, compiled
//! into the binary; the page only talks to this service (`/actors`, `/tags`),
//! and its Content-Security-Policy forbids anything else, so it works offline.

use super::compiled_page::compiled_page;

compiled_page! {
    tag = "observability";
    /// The dashboard page: the tag cloud and every actor's figures, live.
    page: "/", "text/html", PAGE = "dashboard.html", "The dashboard page";
    /// The dashboard's script.
    script: "/dashboard.js", "text/javascript", SCRIPT = "dashboard.js", "The dashboard's script";
    /// The dashboard's style sheet.
    style: "/dashboard.css", "text/css", STYLE = "dashboard.css", "The dashboard's style sheet";
}
