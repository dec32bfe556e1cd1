//! The SERVER span of a traced request: the one place where an incoming
//! request's trace context is extracted, with the semantic-convention HTTP
//! attributes, the response status, and the response headers that name the
//! span (`traceresponse`, `Server-Timing`).

use std::time::Duration;

use axum::{Router, extract::MatchedPath, response::Response};
use http::Request;
use mesh_propagation as propagation;
use opentelemetry::trace::Status;
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Wraps every route of `router` in a SERVER span that continues the
/// caller's trace. The request stack's middleware, inside the span, returns
/// the span's ids in the response headers ([`write_trace_headers`]).
pub(crate) fn with_server_spans<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(
        TraceLayer::new_for_http()
            .make_span_with(ServerSpan)
            .on_request(())
            .on_response(RecordResponse)
            .on_failure(()),
    )
}

/// Makes the SERVER span for a request, parented on the extracted context.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ServerSpan;

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
        // Formatted once, by the layer as it records the field.
        let name = SpanName { method, route };
        let span = tracing::info_span!(
            "http_request",
            otel.name = %name,
            otel.kind = "server",
            http.request.method = method,
            http.route = route,
            url.scheme = "http",
            url.path = request.uri().path(),
            url.query = request
                .uri()
                .query()
                .map(|query| tracing::field::display(RedactedQuery(query))),
            user_agent.original = user_agent,
        );
        // Must happen before the span is entered or its context read; after
        // that tracing-opentelemetry has started the span and the parent is
        // fixed.
        // A failure is logged once and marked on the span by `set_parent`;
        // the request is served either way.
        mesh_telemetry::span_parent::set_parent(&span, propagation::extract(request.headers()));
        span
    }
}

/// A SERVER span's name, `{method} {route}` (or the method alone when no
/// route matched), as the semantic conventions name HTTP server spans.
struct SpanName<'a> {
    method: &'a str,
    route: Option<&'a str>,
}

impl std::fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.method)?;
        if let Some(route) = self.route {
            f.write_str(" ")?;
            f.write_str(route)?;
        }
        Ok(())
    }
}

/// `url.query` as the semantic conventions want it recorded: as received,
/// except the values of the query keys they list as credentials
/// (`AWSAccessKeyId`, `Signature`, `sig`, `X-Goog-Signature`), written
/// `REDACTED`.
struct RedactedQuery<'a>(&'a str);

/// The query keys whose values semantic conventions redact by default.
const REDACTED_QUERY_KEYS: [&str; 4] = ["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"];

impl std::fmt::Display for RedactedQuery<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, pair) in self.0.split('&').enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            match pair.split_once('=') {
                Some((key, _)) if REDACTED_QUERY_KEYS.contains(&key) => {
                    write!(f, "{key}=REDACTED")?;
                }
                _ => f.write_str(pair)?,
            }
        }
        Ok(())
    }
}

/// Records the status on the SERVER span.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RecordResponse;

impl<B> OnResponse<B> for RecordResponse {
    fn on_response(self, response: &http::Response<B>, _latency: Duration, span: &Span) {
        let status = response.status();
        // Straight to the OpenTelemetry span: `span.record` would also make
        // the log layer re-render every field of the span, per request.
        span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
        // Semantic conventions: on a server span only 5xx is an error; a 4xx
        // (a 431 from our header guard included) is the caller's mistake.
        if status.is_server_error() {
            span.set_status(Status::error(""));
        }
    }
}

/// Adds the headers that name the request's SERVER span, so a caller, or a
/// person with curl, can open the trace in Jaeger. Called inside the span.
pub(crate) fn write_trace_headers(response: &mut Response) {
    if let Some(headers) = propagation::response_headers(&Span::current().context()) {
        response.headers_mut().extend(headers);
    }
}

#[cfg(test)]
mod tests {
    use super::RedactedQuery;

    #[test]
    fn credentials_in_the_query_are_redacted_and_the_rest_kept() {
        for (query, recorded) in [
            ("name=Brian", "name=Brian"),
            ("sig=abc&name=a%26b", "sig=REDACTED&name=a%26b"),
            (
                "AWSAccessKeyId=AK&Signature=s&X-Goog-Signature=g&x=1",
                "AWSAccessKeyId=REDACTED&Signature=REDACTED&X-Goog-Signature=REDACTED&x=1",
            ),
            ("signature=lower&flag&=v", "signature=lower&flag&=v"),
        ] {
            assert_eq!(RedactedQuery(query).to_string(), recorded);
        }
    }
}
