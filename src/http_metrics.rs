//! HTTP request metrics: an actix middleware counting every answer by route,
//! method and status, and timing it.
//!
//! The route label is the matched pattern (`/posts/{id}`), never the raw path:
//! one series per route, however many ids clients ask for. Paths that match no
//! route share the label `unmatched`, and unusual methods the label `OTHER`, so
//! a scanner cannot blow up the number of series.

use std::future::{ready, Ready};
use std::rc::Rc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::Method;
use futures::future::LocalBoxFuture;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

const UNMATCHED: &str = "unmatched";
/// From a fast read to a slow rebuild.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The middleware factory; `.wrap(http_metrics.clone())` on the `App`.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    /// Creates `blog_http_requests_total` and `blog_http_request_duration_seconds` in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new("blog_http_requests_total", "HTTP requests answered, by route pattern, method and status"),
            &["route", "method", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("blog_http_request_duration_seconds", "Time to answer an HTTP request, by route pattern and method")
                .buckets(BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }

    fn record(&self, route: &str, method: &Method, status: u16, started: Instant) {
        let method = method_label(method);
        self.requests.with_label_values(&[route, method, &status.to_string()]).inc();
        self.duration.with_label_values(&[route, method]).observe(started.elapsed().as_secs_f64());
    }
}

/// The route label of a request: its matched pattern, or `unmatched`.
pub(crate) fn route_label(req: &ServiceRequest) -> String {
    req.match_pattern().unwrap_or_else(|| UNMATCHED.to_owned())
}

/// The method label: a standard method, or `OTHER`.
pub(crate) fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
    ];
    KNOWN.iter().find(|m| *m == method).map_or("OTHER", Method::as_str)
}

impl<S, B> Transform<S, ServiceRequest> for HttpMetrics
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = HttpMetricsMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(HttpMetricsMiddleware { service: Rc::new(service), metrics: self.clone() }))
    }
}

/// The middleware itself, one per worker thread.
pub struct HttpMetricsMiddleware<S> {
    service: Rc<S>,
    metrics: HttpMetrics,
}

impl<S, B> Service<ServiceRequest> for HttpMetricsMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let route = route_label(&req);
        let method = req.method().clone();
        let (service, metrics) = (self.service.clone(), self.metrics.clone());
        Box::pin(async move {
            let answer = service.call(req).await;
            let status = match &answer {
                Ok(res) => res.status().as_u16(),
                Err(err) => err.as_response_error().status_code().as_u16(),
            };
            metrics.record(&route, &method, status, started);
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{test, web, App, HttpResponse};

    #[actix_web::test]
    async fn requests_are_counted_by_route_pattern_not_by_path() {
        let registry = Registry::new();
        let app = test::init_service(
            App::new()
                .wrap(HttpMetrics::new(&registry).unwrap())
                .route("/posts/{id}", web::get().to(|| async { HttpResponse::NotFound().finish() })),
        )
        .await;
        for path in ["/posts/1", "/posts/2", "/nowhere/3"] {
            test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        }
        test::call_service(&app, test::TestRequest::default().method(Method::from_bytes(b"BREW").unwrap()).uri("/posts/1").to_request()).await;
        let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap();
        assert!(text.contains(r#"blog_http_requests_total{method="GET",route="/posts/{id}",status="404"} 2"#), "{text}");
        assert!(text.contains(r#"blog_http_requests_total{method="GET",route="unmatched",status="404"} 1"#), "{text}");
        assert!(text.contains(r#"blog_http_requests_total{method="OTHER",route="/posts/{id}",status="404"} 1"#), "{text}");
        assert!(text.contains(r#"blog_http_request_duration_seconds_count{method="GET",route="/posts/{id}"} 2"#), "{text}");
        assert!(!text.contains("/posts/1"), "{text}");
    }
}
