//! HTTP routes of formatter-svc.

use axum::{
    Router,
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode},
    routing::get,
};
use opentelemetry::baggage::BaggageExt;
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    error::AppError,
    greeting::{FormatterVersion, MAX_NAME_BYTES},
};

/// What every handler shares.
#[derive(Debug, Clone, Copy)]
pub struct AppState {
    /// The greeting this instance serves.
    pub version: FormatterVersion,
}

/// All routes. `/formatGreeting` is traced; `/healthz` is not, so probes do
/// not flood Jaeger.
pub fn router(state: AppState) -> Router {
    let traced = Router::new().route("/formatGreeting", get(format_greeting));
    Router::new()
        .merge(mesh_telemetry::http_server::with_server_spans(traced))
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
    headers: HeaderMap,
    query: Result<Query<GreetingQuery>, QueryRejection>,
) -> Result<String, AppError> {
    // The book's formatter printed every request's headers; with Istio they
    // show what the mesh and hello-svc really sent.
    tracing::info!(?headers, "incoming request headers");

    // Baggage arrives through the composite propagator; the user agent is
    // the key Istio routes on, so put it where Jaeger shows it.
    if let Some(user_agent) = opentelemetry::Context::current()
        .baggage()
        .get("user-agent")
    {
        tracing::Span::current().set_attribute("baggage.user_agent", user_agent.to_string());
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

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found\n")
}
