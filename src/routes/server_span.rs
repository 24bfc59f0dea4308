//! The server span of every request: a child of the caller's W3C `traceparent`
//! when it sent a well-formed one, else the root of a new trace. Whatever the
//! request writes to the outbox carries this span's context on.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use blog_actors::trace_context::{TraceContext, TRACEPARENT, TRACESTATE};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::http_metrics::{method_label, route_label};

/// Middleware: runs the rest of the request inside its server span.
pub async fn server_span(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let (method, route) = (method_label(req.method()), route_label(&req));
    let span = tracing::info_span!(
        parent: None,
        "request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
    );
    if let Some(caller) = caller_context(&req) {
        caller.adopt_as_parent(&span);
    }
    // Attributes for the trace only: the log lines already name the handler.
    span.set_attribute("http.request.method", method);
    span.set_attribute("http.route", route);
    let answer = next.call(req).instrument(span.clone()).await;
    let status = match &answer {
        Ok(res) => res.status(),
        Err(err) => err.as_response_error().status_code(),
    };
    span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    answer
}

/// The caller's context; a malformed or repeated header counts as none.
fn caller_context(req: &ServiceRequest) -> Option<TraceContext> {
    let single = |name| {
        let mut values = req.headers().get_all(name);
        let first = values.next()?.to_str().ok()?;
        values.next().is_none().then_some(first)
    };
    TraceContext::parse(single(TRACEPARENT)?, single(TRACESTATE))
}
