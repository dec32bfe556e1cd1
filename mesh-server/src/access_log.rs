//! One log line per request: method, route, status and latency, written
//! inside the SERVER span when there is one, so the line carries its
//! `trace_id`.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use mesh_telemetry::JsonEntries;

/// Runs the request and logs its line once the response is ready.
pub(crate) async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    // Milliseconds, to the microsecond: readable, and still a JSON number.
    let latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    let status = response.status().as_u16();
    let route = route.as_ref().map_or("-", MatchedPath::as_str);
    if response.status().is_server_error() {
        tracing::warn!(%method, route = %route, status, latency_ms, "request");
    } else {
        tracing::info!(%method, route = %route, status, latency_ms, "request");
    }
    response
}

/// Header names whose values are credentials and never written to a log.
const CREDENTIALS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Whether `name` (lower case, as `http` keeps it) carries a credential:
/// the standard ones, and API-key and token headers by their name.
pub(crate) fn is_credential(name: &str) -> bool {
    CREDENTIALS.contains(&name)
        || [
            "api-key",
            "apikey",
            "api_key",
            "auth-token",
            "access-token",
            "secret",
        ]
        .iter()
        .any(|part| name.contains(part))
}

/// Request headers for a log line, credential values replaced by
/// `[redacted]`, and bytes that are not UTF-8 by U+FFFD. Log it as
/// `headers = %JsonObject(RedactedHeaders(&headers))`: JSON lines then hold
/// an object, `"headers":{"name":"value",…}`, not a string.
#[derive(Debug, Clone, Copy)]
pub struct RedactedHeaders<'a>(pub &'a http::HeaderMap);

impl JsonEntries for RedactedHeaders<'_> {
    fn for_each_entry(&self, entry: &mut dyn FnMut(&str, &str)) {
        for (name, value) in self.0 {
            if is_credential(name.as_str()) {
                entry(name.as_str(), "[redacted]");
            } else {
                entry(name.as_str(), &String::from_utf8_lossy(value.as_bytes()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use mesh_telemetry::JsonObject;

    #[test]
    fn credential_values_never_reach_the_line() {
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer s3cr3t-token"),
            ("proxy-authorization", "Basic czNjcjN0"),
            ("cookie", "session=s3cr3t"),
            ("x-api-key", "s3cr3t-key"),
            ("baggage", "user-agent=curl"),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        let line = JsonObject(RedactedHeaders(&headers)).to_string();
        assert!(!line.contains("s3cr3t"), "{line}");
        assert!(!line.contains("czNjcjN0"), "{line}");
        assert!(line.contains(r#""baggage":"user-agent=curl""#), "{line}");
        assert_eq!(line.matches("[redacted]").count(), 4, "{line}");
    }
}
