//! The request stack, in one function to read top to bottom.

use std::time::Duration;

use axum::{
    Router,
    extract::{Request, State},
    middleware::{Next, from_fn_with_state},
    response::Response,
};
use http::StatusCode;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    access_log::AccessLog,
    config::RequestLimits,
    responses::plain,
    server_span::{with_server_spans, write_trace_headers},
    shed::ShedLayer,
};

/// Wraps `traced` and `untraced` routes in the request stack. Outermost
/// first, every request meets:
///
/// 1. **load shedding**: past `MAX_CONCURRENT_REQUESTS` in flight, an
///    immediate 503, logged with a running count but not traced,
///    so an overload costs no spans;
/// 2. **the SERVER span** (`traced` routes only; `untraced` ones propagate
///    without spans, as the book's `/sayHello2` does);
/// 3. **the log line** for the request, inside the span so it carries the
///    trace id, and the response headers that name the span;
/// 4. **the header-size guard** (431) and **the request timeout** (503);
/// 5. the handler.
///
/// Every response but a shed one therefore has its span (when traced) with
/// its status, its log line, and the headers that name the span.
pub fn request_stack<S>(traced: Router<S>, untraced: Router<S>, limits: &RequestLimits) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let guard = |traced| Guard {
        timeout: limits.request_timeout(),
        max_header_bytes: limits.max_request_header_bytes as usize,
        traced,
    };
    // Layers 3 and 4 are one middleware: each layer of axum's `from_fn` or
    // `map_response` clones and frees the whole stack below it per request.
    let traced = with_server_spans(traced.layer(from_fn_with_state(guard(true), guard_and_log)));
    let untraced = untraced.layer(from_fn_with_state(guard(false), guard_and_log));
    traced
        .merge(untraced)
        .layer(ShedLayer::new(limits.max_concurrent_requests as usize))
}

#[derive(Debug, Clone, Copy)]
struct Guard {
    timeout: Duration,
    max_header_bytes: usize,
    /// Whether the routes run inside a SERVER span, whose ids the response
    /// then names.
    traced: bool,
}

/// Layers 3 and 4: the header-size guard and the timeout around the
/// handler, then the trace headers (traced routes) and the log line.
async fn guard_and_log(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let log = AccessLog::begin(&request);
    let mut response = guarded(guard, request, next).await;
    if guard.traced {
        write_trace_headers(&mut response);
    }
    log.finish(&response);
    response
}

async fn guarded(guard: Guard, request: Request, next: Next) -> Response {
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
        Err(_) => {
            tracing::Span::current().set_attribute("error.type", "timeout");
            plain(StatusCode::SERVICE_UNAVAILABLE, "request timed out\n")
        }
    }
}
