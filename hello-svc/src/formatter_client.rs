//! The HTTP client for formatter-svc, built once and shared by all requests.

use axum::http::HeaderMap;
use opentelemetry::{Context, trace::Status};
use reqwest::Url;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{config::Config, error::AppError};

/// Calls `GET {FORMATTER_URL}/formatGreeting?name=`.
#[derive(Debug, Clone)]
pub struct FormatterClient {
    http: reqwest::Client,
    endpoint: Url,
}

impl FormatterClient {
    /// Builds the client: one connection pool, and the timeout from `config`.
    pub fn new(config: &Config) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.formatter_timeout())
            .connect_timeout(config.formatter_timeout())
            // Inside a mesh the sidecar is the proxy; an HTTP_PROXY meant for
            // something else must not capture service-to-service calls.
            .no_proxy()
            .build()?;
        let mut endpoint = config.formatter_url.clone();
        // An http(s) URL with a host (checked when parsing) always has a path.
        if let Ok(mut path) = endpoint.path_segments_mut() {
            path.pop_if_empty().push("formatGreeting");
        }
        Ok(Self { http, endpoint })
    }

    /// Formats the greeting inside a CLIENT span whose context, with the
    /// baggage in `cx`, is written into the outbound headers.
    ///
    /// `cx` is the caller's context: the SERVER span plus any baggage the
    /// handler added. `headers` holds anything else to send (`x-request-id`).
    pub(crate) async fn format_greeting_traced(
        &self,
        name: &str,
        cx: Context,
        mut headers: HeaderMap,
    ) -> Result<String, AppError> {
        let url = self.url_for(name);
        let span = tracing::info_span!(
            "http_client",
            otel.name = "GET",
            otel.kind = "client",
            http.request.method = "GET",
            url.full = url.as_str(),
            server.address = url.host_str(),
            // i64: semantic conventions type it as an int, and
            // tracing-opentelemetry records unsigned fields as strings.
            server.port = url.port_or_known_default().map(i64::from),
        );
        // The parent is the caller's context, not the tracing parent: that is
        // how the baggage the handler added reaches this span and the wire.
        let _ = span.set_parent(cx);
        mesh_propagation::inject(&span.context(), &mut headers);

        // If the server's request timeout drops this future mid-call, the
        // guard still marks the span, so Jaeger does not show a cut call as a
        // slow success.
        let outcome = CallOutcome(Some(span.clone()));
        let result = self
            .send(url, headers, Some(&span))
            .instrument(span.clone())
            .await;
        outcome.finish(result.as_ref().err().map(AppError::error_type));
        result
    }

    /// Formats the greeting sending exactly `headers`, with no span: the
    /// propagation-only path.
    pub async fn format_greeting(
        &self,
        name: &str,
        headers: HeaderMap,
    ) -> Result<String, AppError> {
        self.send(self.url_for(name), headers, None).await
    }

    fn url_for(&self, name: &str) -> Url {
        let mut url = self.endpoint.clone();
        // Query-encoded, so `&`, `=`, `+`, `#` and spaces arrive as sent.
        url.query_pairs_mut().append_pair("name", name);
        url
    }

    /// GETs `url`; the answer's status goes on `span` (the CLIENT span, when
    /// traced).
    async fn send(
        &self,
        url: Url,
        headers: HeaderMap,
        span: Option<&tracing::Span>,
    ) -> Result<String, AppError> {
        let response = self
            .http
            .get(url)
            .headers(headers)
            .send()
            .await
            .map_err(AppError::from_transport)?;
        let status = response.status();
        if let Some(span) = span {
            span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
        }
        if !status.is_success() {
            return Err(AppError::FormatterStatus(status));
        }
        response.text().await.map_err(AppError::from_transport)
    }
}

/// Marks a CLIENT span with the call's outcome, including the outcome of a
/// call that never finished because its future was dropped.
struct CallOutcome(Option<tracing::Span>);

impl CallOutcome {
    /// Records a finished call: `error_type` when it failed.
    fn finish(mut self, error_type: Option<&'static str>) {
        if let (Some(span), Some(error_type)) = (self.0.take(), error_type) {
            mark_failed(&span, error_type);
        }
    }
}

impl Drop for CallOutcome {
    fn drop(&mut self) {
        if let Some(span) = self.0.take() {
            mark_failed(&span, "cancelled");
        }
    }
}

fn mark_failed(span: &tracing::Span, error_type: &'static str) {
    span.set_status(Status::error(""));
    span.set_attribute("error.type", error_type);
}
