//! RFC 7807 problem details: every error the API answers is an
//! `application/problem+json` body, so clients parse one shape for all failures.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError, Route};
use blog_actors::delivery::TransportError;
use blog_actors::ports::StoreError;
use serde::Serialize;
use serde_json::{Map, Value};

/// Problem types are URIs under one base; the slug names the kind of failure.
const TYPE_BASE: &str = "https://blog.example/problems/";
pub const CONTENT_TYPE: &str = "application/problem+json";

/// One invalid input field, for validation failures.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// An error answer (RFC 7807). Built by the constructors below; `detail` is always safe to show a client.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Problem {
    /// Serialised as the full type URI; kept as a slug so a `Result<_, Problem>` stays small.
    #[serde(rename = "type", serialize_with = "type_uri")]
    #[schema(value_type = String, example = "https://blog.example/problems/validation")]
    pub slug: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// RFC 7807 extension members (e.g. `current_version`, `known_types`).
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

/// One constructor per status whose problem is just the status, its slug and a detail.
macro_rules! statuses {
    ($($(#[doc = $doc:tt])* $name:ident: $status:ident, $slug:tt;)+) => {$(
        $(#[doc = $doc])*
        pub fn $name(detail: impl Into<String>) -> Self {
            Self::new(StatusCode::$status, $slug, detail)
        }
    )+};
}

impl Problem {
    pub fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        Self {
            slug,
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            extensions: Map::new(),
        }
    }

    statuses! {
        bad_request: BAD_REQUEST, "bad-request";
        /// Rendered with `WWW-Authenticate: Bearer`.
        unauthorized: UNAUTHORIZED, "unauthorized";
        forbidden: FORBIDDEN, "forbidden";
        not_found: NOT_FOUND, "not-found";
        method_not_allowed: METHOD_NOT_ALLOWED, "method-not-allowed";
        conflict: CONFLICT, "conflict";
        payload_too_large: PAYLOAD_TOO_LARGE, "payload-too-large";
        unsupported_media_type: UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type";
        /// Rendered with `Retry-After`, since these are passing outages.
        service_unavailable: SERVICE_UNAVAILABLE, "service-unavailable";
    }

    pub fn unprocessable(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self { errors, ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", detail) }
    }
    /// Logs the whole cause chain; the client only learns that something broke.
    pub fn internal(err: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %error_chain(err), "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an unexpected error occurred; it has been logged")
    }

    pub fn with_extension(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }
}

fn type_uri<S: serde::Serializer>(slug: &&'static str, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{TYPE_BASE}{slug}"))
}

/// `a: b: c` from an error and its sources.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        // Errors that print their source already (`{context}: {source}`) are not repeated.
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)
    }
}

impl std::error::Error for Problem {}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)));
        match self.status_code() {
            StatusCode::UNAUTHORIZED => {
                res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                res.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
            }
            _ => {}
        }
        // Serialising plain strings and JSON values cannot fail; fall back to an empty object anyway.
        res.body(serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec()))
    }
}

/// Each kind of store failure gets the status a client can act on; the detail
/// never quotes the store (it may name a URL or a value), the log has the chain.
impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Self {
        match err {
            // Passing: the client may retry (with `Retry-After`).
            StoreError::Unavailable { .. } => outage("store", &err),
            // The write met a unique key someone else took first: the client's state is stale.
            StoreError::Conflict { .. } => {
                tracing::warn!(error = %error_chain(&err), "store conflict");
                Problem::conflict("the write conflicts with what is stored; read it again and retry")
            }
            // Retrying will not help: damaged data or our own defect, for an operator.
            StoreError::Corrupt { .. } | StoreError::Defect { .. } => Problem::internal(&err),
        }
    }
}

/// A passing outage of `what`: the chain is logged, the client gets 503 (with `Retry-After`).
fn outage(what: &str, err: &(dyn std::error::Error + 'static)) -> Problem {
    tracing::error!(error = %error_chain(err), "{what} unavailable");
    Problem::service_unavailable(format!("{what} unavailable"))
}

/// A broker or queue that is down is passing (503); anything else the transport
/// says (a refusal, a damaged queue file, a defect) is for an operator (500).
impl From<TransportError> for Problem {
    fn from(err: TransportError) -> Self {
        match err {
            TransportError::Unavailable { .. } => outage("transport", &err),
            TransportError::Refused { .. }
            | TransportError::Corrupt { .. }
            | TransportError::Misconfigured { .. }
            | TransportError::Defect { .. } => Problem::internal(&err),
        }
    }
}

/// Maps a JSON body failure to the status a client can act on.
pub fn json_error(err: JsonPayloadError) -> Problem {
    match err {
        JsonPayloadError::OverflowKnownLength { limit, .. } | JsonPayloadError::Overflow { limit } => {
            Problem::payload_too_large(format!("the body is larger than {limit} bytes"))
        }
        JsonPayloadError::ContentType => Problem::unsupported_media_type("the body must be sent as Content-Type: application/json"),
        // Well-formed JSON of the wrong shape is a validation failure; broken JSON is a bad request.
        JsonPayloadError::Deserialize(e) if e.classify() == serde_json::error::Category::Data => {
            Problem::unprocessable(e.to_string(), Vec::new())
        }
        JsonPayloadError::Deserialize(e) => Problem::bad_request(format!("the body is not valid JSON: {e}")),
        other => Problem::bad_request(format!("could not read the body: {other}")),
    }
}

/// Body limit and problem+json answers for every extractor failure.
pub fn configure_extractors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(crate::routes::JSON_BODY_LIMIT)
            .error_handler(|err, _req| json_error(err).into()),
    )
    .app_data(web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        Problem::bad_request(format!("invalid query string: {err}")).into()
    }))
    .app_data(web::PathConfig::default().error_handler(|err: PathError, _req| {
        Problem::bad_request(format!("invalid path: {err}")).into()
    }));
}

/// `default_service` of the app: any unknown path.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    Problem::not_found(format!("no route for {} {}", req.method(), req.path())).error_response()
}

/// `default_service` of each resource: a known path with a method it does not serve gets
/// 405 and, as RFC 9110 asks, an `Allow` header naming the `methods` it does serve.
pub fn allow(methods: &'static str) -> Route {
    web::to(move |req: HttpRequest| async move {
        let detail = format!("{} is not allowed on {}; allowed: {methods}", req.method(), req.path());
        let mut res = Problem::method_not_allowed(detail).error_response();
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static(methods));
        res
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{body::to_bytes, test, App};

    async fn body_json(res: HttpResponse) -> Value {
        let bytes = to_bytes(res.into_body()).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[actix_web::test]
    async fn a_problem_renders_as_problem_json() {
        let p = Problem::unprocessable("invalid post", vec![FieldError { field: "title".into(), message: "empty".into() }])
            .with_extension("hint", "x");
        let res = p.error_response();
        assert_eq!(res.status(), 422);
        assert_eq!(res.headers().get(header::CONTENT_TYPE).unwrap(), CONTENT_TYPE);
        let body = body_json(res).await;
        assert_eq!(body["type"], "https://blog.example/problems/validation");
        assert_eq!(body["title"], "Unprocessable Entity");
        assert_eq!(body["status"], 422);
        assert_eq!(body["errors"][0]["field"], "title");
        assert_eq!(body["hint"], "x");
    }

    #[actix_web::test]
    async fn unauthorized_asks_for_a_bearer_token_and_errors_are_omitted() {
        let res = Problem::unauthorized("missing API key").error_response();
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers().get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
        assert!(body_json(res).await.get("errors").is_none());
    }

    #[actix_web::test]
    async fn a_method_a_resource_does_not_serve_is_405_with_allow() {
        let app = test::init_service(App::new().service(web::resource("/r").route(web::get().to(HttpResponse::Ok)).default_service(allow("GET")))).await;
        let res = test::call_service(&app, test::TestRequest::delete().uri("/r").to_request()).await;
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers().get(header::ALLOW).unwrap(), "GET");
        assert_eq!(res.headers().get(header::CONTENT_TYPE).unwrap(), CONTENT_TYPE);
    }

    #[actix_web::test]
    async fn each_kind_of_store_or_transport_error_has_its_status_and_none_leaks() {
        let secret = || std::io::Error::other("mongodb://admin:hunter2@db");
        let cases = [
            (StoreError::unavailable("mongodb find post", secret()), 503, "store unavailable"),
            (StoreError::conflict("mongodb insert post", secret()), 409, "the write conflicts with what is stored; read it again and retry"),
            (StoreError::corrupt("blog.sqlite get post", secret()), 500, "an unexpected error occurred; it has been logged"),
            (StoreError::defect("blog.sqlite insert post", secret()), 500, "an unexpected error occurred; it has been logged"),
        ];
        let transport = [
            (TransportError::unavailable("cannot publish", secret()), 503, "transport unavailable"),
            (TransportError::refused("declaring", secret()), 500, "an unexpected error occurred; it has been logged"),
            (TransportError::corrupt("embedded queue", secret()), 500, "an unexpected error occurred; it has been logged"),
            (TransportError::defect("an AMQP task panicked", secret()), 500, "an unexpected error occurred; it has been logged"),
        ];
        let problems = cases.into_iter().map(|(e, s, d)| (Problem::from(e), s, d)).chain(transport.into_iter().map(|(e, s, d)| (Problem::from(e), s, d)));
        for (problem, status, detail) in problems {
            let res = problem.error_response();
            assert_eq!(res.status(), status);
            assert_eq!(res.headers().get(header::CONTENT_TYPE).unwrap(), CONTENT_TYPE);
            assert_eq!(res.headers().contains_key(header::RETRY_AFTER), status == 503);
            let body = body_json(res).await;
            assert_eq!(body["detail"], detail);
            assert!(!body.to_string().contains("hunter2"), "{body}");
        }
    }

    #[::core::prelude::v1::test]
    fn an_error_chain_names_each_cause_once() {
        let err = StoreError::unavailable("blog.sqlite ping", std::io::Error::other("disk gone"));
        assert_eq!(error_chain(&err), "store unavailable: blog.sqlite ping: disk gone");
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        n: u32,
    }

    #[actix_web::test]
    async fn extractor_failures_are_problems() {
        let app = test::init_service(
            App::new()
                .configure(configure_extractors)
                .route("/b", web::post().to(|_: web::Json<Body>| async { "ok" }))
                .default_service(web::to(not_found)),
        )
        .await;
        let cases: [(&str, &str, Vec<u8>, u16); 4] = [
            ("application/json", "json", b"{nope".to_vec(), 400),
            ("application/json", "json", br#"{"n": "x"}"#.to_vec(), 422),
            ("text/plain", "text", b"{}".to_vec(), 415),
            ("application/json", "big", vec![b' '; crate::routes::JSON_BODY_LIMIT + 1], 413),
        ];
        for (ct, name, body, status) in cases {
            let req = test::TestRequest::post().uri("/b").insert_header((header::CONTENT_TYPE, ct)).set_payload(body);
            let res = test::call_service(&app, req.to_request()).await;
            assert_eq!(res.status(), status, "{name}");
            assert_eq!(res.headers().get(header::CONTENT_TYPE).unwrap(), CONTENT_TYPE, "{name}");
        }
        let res = test::call_service(&app, test::TestRequest::get().uri("/nope").to_request()).await;
        assert_eq!(res.status(), 404);
        let body: Value = test::read_body_json(res).await;
        assert_eq!(body["detail"], "no route for GET /nope");
    }
}
