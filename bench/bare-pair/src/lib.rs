//! The bare pair: hello-svc and formatter-svc's request path on bare axum
//! and reqwest, at the workspace's versions, with no tracing, no logs and no
//! middleware. `make bench-instructions` measures it in the same run as the
//! real services, as the floor each arm is a ratio to.
//!
//! The routes, status codes and greeting are the services' own
//! (`GET /sayHello/{name}`, `GET /formatGreeting?name=`, `GET /healthz`), so
//! the framework does the same work for each request.

use std::time::Duration;

use axum::{
    Router,
    extract::{Path, Query, State},
    http::StatusCode,
    routing::get,
};
use reqwest::Url;
use serde::Deserialize;

/// The formatter call, as hello-svc configures it.
#[derive(Debug, Clone)]
struct Formatter {
    http: reqwest::Client,
    endpoint: Url,
}

/// hello's routes: `/sayHello/{name}` calls `{formatter_url}/formatGreeting`
/// with hello-svc's client settings (timeout, no proxy); and `/healthz`.
pub fn hello(formatter_url: &str, timeout: Duration) -> Result<Router, String> {
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let endpoint = format!("{}/formatGreeting", formatter_url.trim_end_matches('/'));
    let endpoint =
        Url::parse(&endpoint).map_err(|e| format!("`{formatter_url}` is not a URL: {e}"))?;
    Ok(Router::new()
        .route("/sayHello/{name}", get(say_hello))
        .route("/healthz", get(healthz))
        .with_state(Formatter { http, endpoint }))
}

async fn say_hello(
    State(formatter): State<Formatter>,
    Path(name): Path<String>,
) -> Result<String, (StatusCode, &'static str)> {
    let bad_gateway = |_| (StatusCode::BAD_GATEWAY, "formatter unavailable\n");
    // Query-encoded as hello-svc does it.
    let mut url = formatter.endpoint.clone();
    url.query_pairs_mut().append_pair("name", &name);
    let response = formatter.http.get(url).send().await.map_err(bad_gateway)?;
    if !response.status().is_success() {
        return Err((StatusCode::BAD_GATEWAY, "formatter failed\n"));
    }
    response.text().await.map_err(bad_gateway)
}

#[derive(Debug, Deserialize)]
struct GreetingQuery {
    name: Option<String>,
}

/// formatter's routes: `/formatGreeting?name=` answers the v1 greeting; and
/// `/healthz`.
pub fn formatter() -> Router {
    Router::new()
        .route("/formatGreeting", get(format_greeting))
        .route("/healthz", get(healthz))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn format_greeting(
    Query(query): Query<GreetingQuery>,
) -> Result<String, (StatusCode, &'static str)> {
    let name = query.name.filter(|name| !name.is_empty()).ok_or((
        StatusCode::BAD_REQUEST,
        "query parameter `name` is required\n",
    ))?;
    Ok(format!(
        "Hello, puny human {name}! Morbo asks: how do you like running on Kubernetes?"
    ))
}
