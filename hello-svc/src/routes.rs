//! HTTP routes of hello-svc.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Path, Request, State, rejection::PathRejection},
    http::{HeaderMap, HeaderName, header},
    routing::get,
};
use opentelemetry::baggage::BaggageExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{error::AppError, formatter_client::FormatterClient, name::valid_name};
use hello_contract::USER_AGENT_BAGGAGE_KEY;
use mesh_propagation::{
    LeftOut, forwardable, mesh_headers, w3c_baggage::MAX_MEMBER_BYTES, with_member_first,
};
use mesh_server::{
    RequestLimits, request_context, request_stack,
    responses::{healthz, not_found},
};

/// On the SERVER span when the caller's User-Agent was left out of the
/// baggage: the member's size in bytes, over the per-member limit.
pub(crate) const USER_AGENT_LEFT_OUT_ATTRIBUTE: &str = "app.baggage.user_agent.left_out_bytes";

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler shares, built once at start-up.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The pooled client for formatter-svc.
    pub formatter: FormatterClient,
    /// Concurrency, time and header-size limits for the app's routes.
    pub limits: RequestLimits,
}

/// All routes. Only `/sayHello` gets SERVER spans; `/sayHello2` is the
/// book's propagation-only contrast. Both are held to the request limits;
/// `/healthz` is not, so an overloaded pod is not also killed by its probe.
pub fn router(state: AppState) -> Router {
    let traced = Router::new().route("/sayHello/{name}", get(say_hello));
    let untraced = Router::new().route("/sayHello2/{name}", get(say_hello2));
    Router::new()
        .merge(request_stack(traced, untraced, &state.limits))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        // Shared, not copied: axum clones the state for every request, and
        // the client is a dozen `Arc`s.
        .with_state(Arc::new(state))
}

/// Explicitly instrumented: runs inside the SERVER span (see
/// [`request_stack`]), adds the caller's User-Agent to the baggage, and
/// calls the formatter inside a CLIENT span.
async fn say_hello(
    State(state): State<Arc<AppState>>,
    name: Result<Path<String>, PathRejection>,
    // The request itself, read in place: a `HeaderMap` extractor would copy
    // every header, per request, to read two of them.
    request: Request,
) -> Result<String, AppError> {
    let name = valid_name(name)?;
    let headers = request.headers();
    // The `user-agent` member is the one Istio routes on, so it always says
    // what the caller's User-Agent header says, never what the caller's own
    // baggage claims: set ahead of the caller's members (which yield when
    // the header is full), or removed when there is no usable User-Agent.
    let cx = request_context(headers);
    let (baggage, left_out) =
        with_member_first(cx.baggage(), USER_AGENT_BAGGAGE_KEY, user_agent(headers));
    if let Some(LeftOut { bytes }) = left_out {
        // Never truncated (a partial value would claim what the caller never
        // sent), so the request routes as one without a User-Agent: v1.
        tracing::Span::current().set_attribute(USER_AGENT_LEFT_OUT_ATTRIBUTE, bytes as i64);
        tracing::warn!(
            bytes,
            limit = MAX_MEMBER_BYTES,
            "user-agent left out of baggage: its member is over the limit, so the mesh routes this request as if it had no User-Agent"
        );
    }
    let cx = cx.with_baggage(baggage);
    // The request id, under the same rules as the propagation-only path;
    // the trace headers themselves come from `cx`, injected by the client.
    // Room for the request id and every trace header the client injects.
    let mut outbound = HeaderMap::with_capacity(8);
    if let Some(request_id) = forwardable(headers, X_REQUEST_ID.as_str()) {
        outbound.insert(X_REQUEST_ID, request_id.clone());
    }
    state
        .formatter
        .format_greeting_traced(&name, cx, outbound)
        .await
}

/// Propagation only, as in the book: no span, no baggage, just the mesh's
/// tracing headers copied to the outbound call so Envoy can join its spans.
async fn say_hello2(
    State(state): State<Arc<AppState>>,
    name: Result<Path<String>, PathRejection>,
    // Read in place, as in `say_hello`.
    request: Request,
) -> Result<String, AppError> {
    let name = valid_name(name)?;
    state
        .formatter
        .format_greeting(&name, mesh_headers(request.headers()))
        .await
}

/// The caller's User-Agent, if there is exactly one and it is text.
fn user_agent(headers: &HeaderMap) -> Option<&str> {
    let mut lines = headers.get_all(header::USER_AGENT).iter();
    match (lines.next(), lines.next()) {
        (Some(one), None) => one.to_str().ok().filter(|ua| !ua.trim().is_empty()),
        _ => None,
    }
}
