//! Server-side instrumentation for axum routers: the one place where an
//! incoming request's trace context is extracted.

use std::time::Duration;

use axum::{Router, extract::MatchedPath, middleware::map_response, response::Response};
use http::{HeaderValue, Request};
use opentelemetry::trace::{Status, TraceContextExt};
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::propagation;

/// Wraps every route of `router` in a SERVER span that continues the
/// caller's trace, records the semantic-convention HTTP attributes, logs one
/// line per request and returns the trace id in a `traceresponse` header.
///
/// Apply it after the routes it should cover are added: routes merged later
/// (health checks, the propagation-only endpoint) stay untraced.
pub fn with_server_spans<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(map_response(write_traceresponse)).layer(
        TraceLayer::new_for_http()
            .make_span_with(ServerSpan)
            .on_request(())
            .on_response(RecordResponse)
            .on_failure(()),
    )
}

/// Makes the SERVER span for a request, parented on the extracted context.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerSpan;

impl<B> MakeSpan<B> for ServerSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let method = request.method().as_str();
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let user_agent = request
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok());
        let span = tracing::info_span!(
            "http_request",
            otel.name = %match route {
                Some(route) => format!("{method} {route}"),
                None => method.to_owned(),
            },
            otel.kind = "server",
            http.request.method = method,
            http.route = route,
            url.scheme = "http",
            url.path = request.uri().path(),
            user_agent.original = user_agent,
        );
        // Must happen before the span is entered or its context read; after
        // that tracing-opentelemetry has started the span and the parent is
        // fixed.
        let _ = span.set_parent(propagation::extract(request.headers()));
        span
    }
}

/// Records the status on the SERVER span and writes the request's log line.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordResponse;

impl<B> OnResponse<B> for RecordResponse {
    fn on_response(self, response: &http::Response<B>, latency: Duration, span: &Span) {
        let status = response.status();
        // Straight to the OpenTelemetry span: `span.record` would also make
        // the log layer re-render every field of the span, per request.
        span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
        // Semantic conventions: on a server span only 5xx is an error; a 4xx
        // is the caller's mistake, not this service's.
        if status.is_server_error() {
            span.set_status(Status::error(""));
        }
        tracing::info!(
            http.response.status_code = status.as_u16(),
            latency_ms = latency.as_secs_f64() * 1e3,
            "request finished"
        );
    }
}

/// Adds the W3C Trace Context Level 2 `traceresponse` header, so a caller
/// (or a person with curl) can open the trace in Jaeger.
async fn write_traceresponse(mut response: Response) -> Response {
    let cx = Span::current().context();
    let span = cx.span();
    let ids = span.span_context();
    if ids.is_valid() {
        let value = format!(
            "00-{}-{}-{:02x}",
            ids.trace_id(),
            ids.span_id(),
            ids.trace_flags().to_u8()
        );
        if let Ok(value) = HeaderValue::try_from(value) {
            response.headers_mut().insert("traceresponse", value);
        }
    }
    response
}
