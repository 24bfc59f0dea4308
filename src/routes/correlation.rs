//! The correlation id of a request: it goes into the event envelope, so one id
//! ties the HTTP call to every log line its events cause downstream.
//!
//! Taken from `X-Request-Id` (a proxy or the client set it), else from the
//! trace id of a W3C `traceparent` (a tracing client), else a new uuid.

use std::convert::Infallible;
use std::future::{ready, Ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, Required, Type};
use blog_actors::trace_context::{trace_id_of, TRACEPARENT};
use uuid::Uuid;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longer ids are more likely garbage than ids; they would bloat every log line.
const MAX_LEN: usize = 128;

/// The request's correlation id; computed once per request and cached in its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationId(pub String);

impl CorrelationId {
    pub fn of(req: &HttpRequest) -> Self {
        if let Some(id) = req.extensions().get::<CorrelationId>() {
            return id.clone();
        }
        let id = CorrelationId(from_headers(req.headers()));
        req.extensions_mut().insert(id.clone());
        id
    }
}

impl std::fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromRequest for CorrelationId {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(CorrelationId::of(req)))
    }
}

/// Documents the headers the id and the trace context are read from, so `params(CorrelationId)`
/// lists them. All are optional and never rejected: an unusable value is replaced, not refused.
impl utoipa::IntoParams for CorrelationId {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let header = |name: &str, description: &str| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build()
        };
        vec![
            header(
                "X-Request-Id",
                "Correlation id for the request and every event it causes (printable ASCII, at most 128 characters; \
                 anything else is ignored). Echoed in the answer.",
            ),
            header(
                "traceparent",
                "W3C trace context: the request's span and the events it causes continue this trace (a malformed one \
                 starts a new trace); its trace id is the correlation id when X-Request-Id is absent.",
            ),
            header("tracestate", "W3C trace state passed on with traceparent (at most 512 printable ASCII characters)."),
        ]
    }
}

/// Picks the id from the headers; a header that is missing or unusable is skipped, never an error.
pub fn from_headers(headers: &HeaderMap) -> String {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(id) = header("x-request-id").filter(|id| acceptable(id)) {
        return id.to_owned();
    }
    if let Some(trace_id) = header(TRACEPARENT).and_then(trace_id_of) {
        return trace_id.to_owned();
    }
    Uuid::new_v4().to_string()
}

/// Printable ASCII only: the id is echoed in a header and written to logs.
fn acceptable(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Middleware: fixes the id before the handler runs and echoes it as `X-Request-Id`,
/// on error answers too, so a client can quote it when reporting a problem.
pub async fn echo_request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = CorrelationId::of(req.request());
    let mut res = next.call(req).await?;
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        res.headers_mut().insert(X_REQUEST_ID, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::middleware::from_fn;
    use actix_web::{test, web, App};

    use crate::routes::testing::request;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[actix_web::test]
    async fn x_request_id_wins_over_traceparent() {
        let r = request(&[("x-request-id", " abc-123 "), ("traceparent", TP)]);
        assert_eq!(CorrelationId::extract(&r).await.unwrap().0, "abc-123");
    }

    #[actix_web::test]
    async fn traceparent_gives_its_trace_id() {
        let r = request(&[("traceparent", TP)]);
        assert_eq!(CorrelationId::extract(&r).await.unwrap().0, "4bf92f3577b34da6a3ce929d0e0e4736");
        // A garbage X-Request-Id is skipped, not echoed.
        let r = request(&[("x-request-id", "has space"), ("traceparent", TP)]);
        assert_eq!(CorrelationId::of(&r).0, "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[actix_web::test]
    async fn bad_traceparents_fall_back_to_a_uuid() {
        for tp in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "nonsense",
        ] {
            let id = CorrelationId::of(&request(&[("traceparent", tp)]));
            assert!(Uuid::parse_str(&id.0).is_ok(), "{tp} gave {id}");
        }
    }

    #[actix_web::test]
    async fn the_id_is_stable_within_a_request_and_echoed() {
        let app = test::init_service(App::new().wrap(from_fn(echo_request_id)).route(
            "/",
            web::get().to(|a: CorrelationId, b: CorrelationId| async move {
                assert_eq!(a, b);
                a.0
            }),
        ))
        .await;
        let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        let echoed = res.headers().get("x-request-id").unwrap().to_str().unwrap().to_owned();
        assert_eq!(test::read_body(res).await, echoed.as_bytes());
    }
}
