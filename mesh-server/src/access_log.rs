//! One log line per request: method, route, status and latency, written
//! inside the SERVER span when there is one, so the line carries its
//! `trace_id`.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    http::Method,
    response::Response,
};
use mesh_telemetry::JsonEntries;

/// A request's log line, begun as the request arrives.
pub(crate) struct AccessLog {
    started: Instant,
    method: Method,
    route: Option<MatchedPath>,
}

impl AccessLog {
    /// Notes the time, method and route of `request`.
    pub(crate) fn begin(request: &Request) -> Self {
        Self {
            started: Instant::now(),
            method: request.method().clone(),
            route: request.extensions().get::<MatchedPath>().cloned(),
        }
    }

    /// Logs the line, once `response` is ready: a warning for a 5xx.
    pub(crate) fn finish(self, response: &Response) {
        // Milliseconds, to the microsecond: readable, and still a JSON number.
        let latency_ms = (self.started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
        let status = response.status().as_u16();
        let method = self.method;
        let route = self.route.as_ref().map_or("-", MatchedPath::as_str);
        if response.status().is_server_error() {
            tracing::warn!(%method, route = %route, status, latency_ms, "request");
        } else {
            tracing::info!(%method, route = %route, status, latency_ms, "request");
        }
    }
}

/// Header names whose values are credentials and never written to a log.
const CREDENTIALS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Parts of a header name that mark an API key or token.
const CREDENTIAL_PARTS: [&[u8]; 6] = [
    b"api-key",
    b"apikey",
    b"api_key",
    b"auth-token",
    b"access-token",
    b"secret",
];

/// Whether `name` (lower case, as `http` keeps it) carries a credential:
/// the standard ones, and API-key and token headers by their name.
pub(crate) fn is_credential(name: &str) -> bool {
    let bytes = name.as_bytes();
    // One pass, trying the parts only where one could begin (each starts
    // with `a` or `s`): this runs for every header of every logged request.
    CREDENTIALS.contains(&name)
        || (0..bytes.len()).any(|i| {
            matches!(bytes[i], b'a' | b's')
                && CREDENTIAL_PARTS
                    .iter()
                    .any(|part| bytes[i..].starts_with(part))
        })
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
            } else if let Ok(value) = std::str::from_utf8(value.as_bytes()) {
                // The usual case, checked a word at a time; the lossy
                // conversion walks it character by character.
                entry(name.as_str(), value);
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

    #[test]
    fn a_value_that_is_not_utf8_is_written_lossily_and_the_rest_as_is() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-bytes", http::HeaderValue::from_bytes(b"a\xffb").unwrap());
        headers.insert("accept", "text/plain; q=\"1\"".parse().unwrap());
        assert_eq!(
            JsonObject(RedactedHeaders(&headers)).to_string(),
            "{\"x-bytes\":\"a\u{fffd}b\",\"accept\":\"text/plain; q=\\\"1\\\"\"}"
        );
    }

    #[test]
    fn a_credential_part_is_found_anywhere_in_the_name() {
        for name in [
            "x-api-key",
            "apikey",
            "my-api_key-2",
            "x-auth-token",
            "access-token",
            "client-secret",
            "secret",
            "cookie",
        ] {
            assert!(is_credential(name), "{name}");
        }
        for name in [
            "accept",
            "user-agent",
            "x-request-id",
            "api",
            "secre",
            "baggage",
        ] {
            assert!(!is_credential(name), "{name}");
        }
    }
}
