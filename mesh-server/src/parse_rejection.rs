//! Requests hyper answers itself, before any route sees them: a request line
//! or header it cannot parse (400), a head over 100 headers or past its read
//! buffer (431), a URI over its length limit (414). Each still gets its
//! SERVER span and its `request` log line, written from the connection's
//! error path.

use opentelemetry::trace::Status;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The status hyper wrote for `error`, if it wrote one: hyper 1.12's
/// `proto/h1/role.rs` (`Server::on_error`) answers a parse error of the
/// method, URI, version or a header with 400, `TooLarge` (too many headers,
/// or the head past `max_buf_size`) with 431 and `UriTooLong` with 414; an
/// HTTP/2 preface or an internal parse error gets no answer
/// (`proto/h1/conn.rs`, `on_parse_error`).
pub(crate) fn automatic_status(error: &hyper::Error) -> Option<u16> {
    if error.is_parse_too_large() {
        // hyper's API joins TooLarge and UriTooLong; only its description
        // (`src/error.rs`) tells them apart.
        Some(if error.to_string() == "URI too long" {
            414
        } else {
            431
        })
    } else if error.is_parse() && !error.is_parse_version_h2() && !is_internal(error) {
        Some(400)
    } else {
        None
    }
}

fn is_internal(error: &hyper::Error) -> bool {
    error.to_string().starts_with("internal error inside Hyper")
}

/// Records a request hyper answered with `status` itself: a SERVER span
/// named `HTTP` (the semantic conventions' name when the method is not
/// known), a root since no trace context could be read, and the `request`
/// log line inside it. `reason` is hyper's description of what it refused;
/// it goes to the log and the span, never to the caller.
pub(crate) fn record(status: u16, reason: &str) {
    let span = tracing::info_span!(
        "http_request",
        otel.name = "HTTP",
        otel.kind = "server",
        http.request.method = "_OTHER",
        url.scheme = "http",
    );
    span.set_attribute("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.set_status(Status::error(""));
    }
    span.in_scope(|| {
        tracing::info!(
            method = "-",
            route = "-",
            status,
            rejected_by = "http parser",
            reason,
            "request"
        );
    });
}
