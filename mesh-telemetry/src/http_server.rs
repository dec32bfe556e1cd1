//! What both services wrap their routes in: SERVER spans (the one place
//! where an incoming request's trace context is extracted) and request
//! limits.

use std::time::Duration;

use axum::{
    BoxError, Router,
    error_handling::HandleErrorLayer,
    extract::{MatchedPath, State},
    middleware::{Next, from_fn_with_state, map_response},
    response::{IntoResponse, Response},
};
use http::{Request, StatusCode, header};
use opentelemetry::trace::Status;
use tower::ServiceBuilder;
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{config::RequestLimits, propagation};

/// Wraps every route of `router` in a SERVER span that continues the
/// caller's trace, records the semantic-convention HTTP attributes, logs one
/// line per request and returns the trace id in the `traceresponse` and
/// `Server-Timing` headers.
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

/// Adds the headers that name the request's SERVER span (`traceresponse`
/// and `Server-Timing: trace;desc=…`, see
/// [`propagation::response_headers`]), so a caller, or a person with curl,
/// can open the trace in Jaeger.
async fn write_traceresponse(mut response: Response) -> Response {
    if let Some(headers) = propagation::response_headers(&Span::current().context()) {
        response
            .headers_mut()
            .extend(headers.map(|(name, value)| (http::HeaderName::from_static(name), value)));
    }
    response
}

/// Holds every route of `router` to `limits`: a global concurrency limit that
/// sheds excess load with 503, a request timeout (503) and a bound on header
/// size (431). Apply it outside [`with_server_spans`], so a shed request
/// costs no span.
pub fn with_request_limits<S>(router: Router<S>, limits: &RequestLimits) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let guard = Guard {
        timeout: Duration::from_millis(limits.request_timeout_ms),
        max_header_bytes: limits.max_request_header_bytes as usize,
    };
    router.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(overloaded))
            .load_shed()
            // One semaphore for all routes: `Router::layer` wraps each route
            // separately, and a per-route limit would not bound the process.
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                limits.max_concurrent_requests as usize,
            ))
            .layer(from_fn_with_state(guard, guard_request)),
    )
}

#[derive(Debug, Clone, Copy)]
struct Guard {
    timeout: Duration,
    max_header_bytes: usize,
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn overloaded(_: BoxError) -> Response {
    plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "server busy, retry later\n",
    )
}

async fn guard_request(
    State(guard): State<Guard>,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > guard.max_header_bytes {
        return plain(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large\n",
        );
    }
    match tokio::time::timeout(guard.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => plain(StatusCode::SERVICE_UNAVAILABLE, "request timed out\n"),
    }
}
