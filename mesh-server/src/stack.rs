//! The request stack, in one function to read top to bottom.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use axum::{
    BoxError, Router,
    error_handling::HandleErrorLayer,
    extract::{Request, State},
    middleware::{Next, from_fn, from_fn_with_state},
    response::Response,
};
use http::StatusCode;
use tower::{ServiceBuilder, limit::GlobalConcurrencyLimitLayer};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    access_log::log_request, config::RequestLimits, responses::plain,
    server_span::with_server_spans,
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
///    trace id;
/// 4. **the header-size guard** (431) and **the request timeout** (503);
/// 5. the handler.
///
/// Every response but a shed one therefore has its span (when traced) with
/// its status, its log line, and the headers that name the span.
pub fn request_stack<S>(traced: Router<S>, untraced: Router<S>, limits: &RequestLimits) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let guard = Guard {
        timeout: limits.request_timeout(),
        max_header_bytes: limits.max_request_header_bytes as usize,
    };
    // Layers 3 to 5, which both kinds of route share.
    let logged_and_guarded = |routes: Router<S>| {
        routes
            .layer(from_fn_with_state(guard, guard_request))
            .layer(from_fn(log_request))
    };
    let traced = with_server_spans(logged_and_guarded(traced));
    traced.merge(logged_and_guarded(untraced)).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(shed))
            .load_shed()
            // One semaphore for all routes: `Router::layer` wraps each route
            // separately, and a per-route limit would not bound the process.
            .layer(GlobalConcurrencyLimitLayer::new(
                limits.max_concurrent_requests as usize,
            )),
    )
}

/// Requests this process has shed with 503 since it started, for the
/// running count in each `request shed` line.
static SHED: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone, Copy)]
struct Guard {
    timeout: Duration,
    max_header_bytes: usize,
}

async fn shed(_: BoxError) -> Response {
    let shed_total = SHED.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::warn!(
        status = 503,
        shed_total,
        "request shed: MAX_CONCURRENT_REQUESTS in flight"
    );
    plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "server busy, retry later\n",
    )
}

async fn guard_request(State(guard): State<Guard>, request: Request, next: Next) -> Response {
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
