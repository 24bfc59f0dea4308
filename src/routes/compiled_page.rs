//! How a page compiled into the binary is served: the dashboard and the dead-letter
//! console each declare their page, script and style with [`compiled_page!`], which
//! writes the three handlers, their `#[utoipa::path]` and their mounting alike.

use actix_web::http::header::{self, HeaderValue};
use actix_web::HttpResponse;

/// Same-origin only; `data:` for the inline icon. No inline script or style is needed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One compiled-in file, answered with its type and the pages' Content-Security-Policy.
pub(super) fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        // Assets change with the binary; revalidating keeps an upgraded service from showing an old page.
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .body(body)
}

/// Declares `configure` and, per file, a `GET` handler: its name, path, OpenAPI media
/// type (served with `; charset=utf-8`), the constant holding the file from `assets/`,
/// and the response's description; the doc comment above each becomes the operation's summary.
macro_rules! compiled_page {
    (tag = $tag:tt; $($(#[doc = $doc:tt])* $name:ident: $path:tt, $media_type:tt, $text:ident = $file:tt, $description:tt;)+) => {
        $(pub(super) const $text: &str = include_str!(concat!("../../assets/", $file));)+

        pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
            $(cfg.service(super::resource::get_only($path, $name));)+
        }

        $(
            $(#[doc = $doc])*
            #[utoipa::path(
                get, path = $path, tag = $tag,
                responses((status = 200, description = $description, body = String, content_type = $media_type))
            )]
            async fn $name() -> actix_web::HttpResponse {
                super::compiled_page::asset(concat!($media_type, "; charset=utf-8"), $text)
            }
        )+
    };
}
pub(super) use compiled_page;

#[cfg(test)]
mod tests {
    use super::super::{console, dashboard};

    /// Every `http` the files hold is the SVG namespace name, which is never fetched.
    #[test]
    fn each_page_names_no_other_origin_and_loads_its_own_script_and_style() {
        let pages = [
            ("/dashboard", dashboard::PAGE, dashboard::SCRIPT, dashboard::STYLE),
            ("/console/dead-letters", console::PAGE, console::SCRIPT, console::STYLE),
        ];
        for (path, page, script, style) in pages {
            for text in [page, script, style] {
                let rest = text.replace("http://www.w3.org/2000/svg", "");
                let named = ["http:", "https:", "//cdn", "@import"].into_iter().find(|origin| rest.contains(origin));
                assert_eq!(named, None, "a file of {path} names another origin");
            }
            assert!(page.contains(&format!(r#"<script src="{path}.js" defer></script>"#)));
            assert!(page.contains(&format!(r#"<link rel="stylesheet" href="{path}.css">"#)));
        }
    }
}
