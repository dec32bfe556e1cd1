//! HTTP routes of formatter-svc.

use axum::{
    Router,
    extract::{Query, Request, State, rejection::QueryRejection},
    routing::get,
};
use hello_contract::{MAX_NAME_BYTES, USER_AGENT_BAGGAGE_KEY};
use mesh_server::{
    RequestLimits,
    access_log::RedactedHeaders,
    request_stack,
    responses::{healthz, not_found},
};
use mesh_telemetry::JsonObject;
use opentelemetry::baggage::BaggageExt;
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{error::AppError, greeting::FormatterVersion};

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The greeting this instance serves.
    pub version: FormatterVersion,
    /// Concurrency, time and header-size limits for `/formatGreeting`.
    pub limits: RequestLimits,
}

/// All routes. `/formatGreeting` is traced and limited; `/healthz` is
/// neither, so probes do not flood Jaeger or fail under load.
pub fn router(state: AppState) -> Router {
    let traced = Router::new().route("/formatGreeting", get(format_greeting));
    Router::new()
        .merge(request_stack(traced, Router::new(), &state.limits))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(state)
}

#[derive(Debug, Deserialize)]
struct GreetingQuery {
    name: Option<String>,
}

async fn format_greeting(
    State(state): State<AppState>,
    query: Result<Query<GreetingQuery>, QueryRejection>,
    // The request itself, read in place: a `HeaderMap` extractor would copy
    // every header, per request, for a line that may not be logged.
    request: Request,
) -> Result<String, AppError> {
    // The book's formatter printed every request's headers; with Istio they
    // show what the mesh and hello-svc really sent. Credentials never.
    tracing::info!(
        headers = %JsonObject(RedactedHeaders(request.headers())),
        "incoming request headers"
    );

    // Baggage arrives through the composite propagator; the user agent is
    // the key Istio routes on, so put it where Jaeger shows it.
    // Only a span can show it: with the SDK disabled nothing is extracted.
    if mesh_telemetry::spans_enabled() {
        let span = tracing::Span::current();
        if let Some(user_agent) = span.context().baggage().get(USER_AGENT_BAGGAGE_KEY) {
            span.set_attribute("baggage.user_agent", user_agent.to_string());
        }
    }

    let Query(query) = query.map_err(|_| AppError::MalformedQuery)?;
    let name = query
        .name
        .filter(|name| !name.is_empty())
        .ok_or(AppError::MissingName)?;
    if name.len() > MAX_NAME_BYTES {
        return Err(AppError::NameTooLong);
    }
    Ok(state.version.greet(&name))
}
