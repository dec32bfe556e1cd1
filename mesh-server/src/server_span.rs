//! The SERVER span of a traced request: the one place where an incoming
//! request's trace context is extracted, with the semantic-convention HTTP
//! attributes, the response status, and the response headers that name the
//! span (`traceresponse`, `Server-Timing`); and the context a handler
//! continues, with or without spans.

use std::borrow::Cow;

use axum::{extract::MatchedPath, response::Response};
use http::{HeaderMap, Request};
use mesh_propagation as propagation;
use opentelemetry::{Context, trace::Status};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The SERVER span for `request`, parented on the context its headers
/// carry. Made before the handler runs and entered whenever it is polled,
/// so the handler's own spans and log lines are inside it.
pub(crate) fn server_span<B>(request: &Request<B>) -> Span {
    let method = request.method().as_str();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let user_agent = request
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|value| value.to_str().ok());
    let name = span_name(method, route);
    let query = request.uri().query().map(redacted_query);
    let span = tracing::info_span!(
        "http_request",
        otel.name = name.as_str(),
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        url.scheme = "http",
        url.path = request.uri().path(),
        url.query = query.as_deref(),
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

/// The OpenTelemetry context a handler continues: its SERVER span's, or,
/// with the SDK disabled and so no spans made, the caller's, read from the
/// request's `headers` as the propagators extract it. Either way the
/// baggage the caller sent is in it.
pub fn request_context(headers: &HeaderMap) -> Context {
    if mesh_telemetry::spans_enabled() {
        Span::current().context()
    } else {
        propagation::extract(headers)
    }
}

/// A SERVER span's name, `{method} {route}` (or the method alone when no
/// route matched), as the semantic conventions name HTTP server spans.
/// Written into a string of the right size: through `Display`, the string
/// would grow, and copy, as each part arrived.
fn span_name(method: &str, route: Option<&str>) -> String {
    let Some(route) = route else {
        return method.to_owned();
    };
    let mut name = String::with_capacity(method.len() + 1 + route.len());
    name.push_str(method);
    name.push(' ');
    name.push_str(route);
    name
}

/// `url.query` as the semantic conventions want it recorded: as received,
/// except the values of the query keys they list as credentials
/// (`AWSAccessKeyId`, `Signature`, `sig`, `X-Goog-Signature`), written
/// `REDACTED`. Borrowed when there is nothing to redact, the usual case.
fn redacted_query(query: &str) -> Cow<'_, str> {
    let is_credential = |pair: &str| {
        pair.split_once('=')
            .is_some_and(|(key, _)| REDACTED_QUERY_KEYS.contains(&key))
    };
    if !query.split('&').any(is_credential) {
        return Cow::Borrowed(query);
    }
    let mut redacted = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            redacted.push('&');
        }
        match pair.split_once('=') {
            Some((key, _)) if is_credential(pair) => {
                redacted.push_str(key);
                redacted.push_str("=REDACTED");
            }
            _ => redacted.push_str(pair),
        }
    }
    Cow::Owned(redacted)
}

/// The query keys whose values semantic conventions redact by default.
const REDACTED_QUERY_KEYS: [&str; 4] = ["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"];

/// Records `response`'s status on the SERVER span `span`, and adds the
/// headers that name the span (`traceresponse`, `Server-Timing`), so a
/// caller, or a person with curl, can open the trace in Jaeger.
pub(crate) fn record_response(span: &Span, response: &mut Response) {
    let status = response.status();
    // Straight to the OpenTelemetry span: `span.record` would also make
    // the log layer re-render every field of the span, per request.
    span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
    // Semantic conventions: on a server span only 5xx is an error; a 4xx
    // (a 431 from our header guard included) is the caller's mistake.
    if status.is_server_error() {
        span.set_status(Status::error(""));
    }
    if let Some(headers) = propagation::response_headers(&span.context()) {
        response.headers_mut().extend(headers);
    }
}

#[cfg(test)]
mod tests {
    use super::{redacted_query, span_name};

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
            assert_eq!(redacted_query(query), recorded);
        }
        assert!(matches!(
            redacted_query("name=Brian&x=1"),
            std::borrow::Cow::Borrowed("name=Brian&x=1")
        ));
    }

    #[test]
    fn a_span_is_named_after_its_method_and_route() {
        assert_eq!(
            span_name("GET", Some("/sayHello/{name}")),
            "GET /sayHello/{name}"
        );
        assert_eq!(span_name("POST", None), "POST");
    }
}
