//! `GET /console/dead-letters`: the dead-letter console, a page of its own
//! beside the dashboard (same style of delivery: compiled in, same-origin only,
//! the dashboard's Content-Security-Policy). The page reads and acts through
//! the `/dead-letters` API with the key the operator types in.

use super::compiled_page::compiled_page;

compiled_page! {
    tag = "dead-letters";
    /// The dead-letter console: groups, filters, details, replay and delete.
    page: "/console/dead-letters", "text/html", PAGE = "dead_letters.html", "The dead-letter console page (it asks for the API key)";
    /// The console's script.
    script: "/console/dead-letters.js", "text/javascript", SCRIPT = "dead_letters.js", "The console's script";
    /// The console's style sheet.
    style: "/console/dead-letters.css", "text/css", STYLE = "dead_letters.css", "The console's style sheet";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_kept_for_the_tab_only() {
        assert!(SCRIPT.contains("sessionStorage") && !SCRIPT.contains("localStorage"));
        assert!(!SCRIPT.contains("innerHTML"), "message data is set as text, never parsed as HTML");
    }
}
