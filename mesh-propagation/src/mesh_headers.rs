//! The propagation-only path (`/sayHello2`): the mesh's tracing headers
//! copied from a request to its outbound call, as they came, but only when
//! their format's specification says they are valid.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::Extractor;

use super::{
    b3,
    header_lines::{HeaderLines, trim_ows},
    w3c_trace_context::{format_traceparent, read_traceparent, read_tracestate},
};

/// The headers Istio asks applications to forward, and the only ones the
/// propagation-only path copies from a request to its outbound call.
pub const MESH_TRACE_HEADERS: [&str; 10] = [
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "x-ot-span-context",
];

/// The longest mesh header value passed on. Real ones are under 100 bytes
/// (a `tracestate` may reach 512); anything longer is not a trace header.
pub const MAX_FORWARDED_VALUE_BYTES: usize = 1024;

/// The first value of header `name`, if it may be passed on: visible ASCII
/// and at most [`MAX_FORWARDED_VALUE_BYTES`] long.
pub fn forwardable<'a>(incoming: &'a HeaderMap, name: &str) -> Option<&'a HeaderValue> {
    incoming
        .get(name)
        .filter(|value| value.len() <= MAX_FORWARDED_VALUE_BYTES && value.to_str().is_ok())
}

/// The mesh's tracing headers of a request, as the propagation-only path
/// passes them on: only [`MESH_TRACE_HEADERS`], each [`forwardable`], and
/// each trace format only when it is valid, so this path never hands the
/// next service a context the specifications say to discard:
/// - `traceparent`: one valid line, sent as version 00; `tracestate` (its
///   lines combined and normalized) only with it, and only when valid;
/// - `b3`: a valid single header, whitespace trimmed;
/// - `x-b3-*`: together when they form a valid context, in the form B3 says
///   to send;
/// - `x-request-id` and `x-ot-span-context`: as they came.
pub fn mesh_headers(incoming: &HeaderMap) -> HeaderMap {
    let lines = HeaderLines::new(incoming);
    let mut out = HeaderMap::new();
    let mut copy = |name: &'static str| {
        if let Some(value) = forwardable(incoming, name) {
            out.insert(HeaderName::from_static(name), value.clone());
        }
    };
    copy("x-request-id");
    copy("x-ot-span-context");
    // As version 00, the one this implementation speaks: OWS trimmed, and
    // only the flags it defines.
    let traceparent = read_traceparent(&lines);
    if let Some(parent) = traceparent
        && let Ok(value) = HeaderValue::try_from(format_traceparent(
            parent.trace_id,
            parent.parent_id,
            parent.flags,
        ))
    {
        out.insert(HeaderName::from_static("traceparent"), value);
    }
    if let Some(b3) = lines.get("b3").filter(|v| b3::parse_single(v).is_some())
        && let Ok(value) = HeaderValue::from_str(trim_ows(b3))
    {
        out.insert(HeaderName::from_static("b3"), value);
    }
    if b3::parse_multi(&lines).is_some() {
        // Passed on in the form B3 says to send: OWS trimmed, `1`/`0` for
        // the legacy `true`/`false`, X-B3-Flags only as `0` or `1`, and no
        // X-B3-Sampled beside the debug flag ("debug implies accept").
        let flags = lines.get("x-b3-flags").map(trim_ows);
        for name in b3::MULTI_HEADERS {
            let Some(value) = forwardable(incoming, name).and_then(|v| v.to_str().ok()) else {
                continue;
            };
            let value = match (name, trim_ows(value)) {
                ("x-b3-sampled", _) if flags == Some("1") => continue,
                ("x-b3-sampled", "true") => "1",
                ("x-b3-sampled", "false") => "0",
                ("x-b3-flags", flag) if flag != "0" && flag != "1" => continue,
                (_, trimmed) => trimmed,
            };
            if let Ok(value) = HeaderValue::from_str(value) {
                out.insert(HeaderName::from_static(name), value);
            }
        }
    }
    if traceparent.is_some()
        && let Some(tracestate) =
            read_tracestate(&lines).filter(|t| t.len() <= MAX_FORWARDED_VALUE_BYTES)
        && let Ok(value) = HeaderValue::try_from(tracestate)
    {
        out.insert(HeaderName::from_static("tracestate"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debug_flag_is_not_forwarded_with_a_sampling_decision() {
        // The shape of the input cargo fuzz found.
        let mut headers = HeaderMap::new();
        headers.insert("x-b3-sampled", HeaderValue::from_static("1"));
        headers.insert("x-b3-flags", HeaderValue::from_static("1"));
        let forwarded = mesh_headers(&headers);
        assert_eq!(forwarded.get("x-b3-flags").unwrap(), "1");
        assert!(forwarded.get("x-b3-sampled").is_none());
    }

    #[test]
    fn an_undefined_b3_flags_value_is_not_forwarded() {
        // The shape of the second input cargo fuzz found.
        let mut headers = HeaderMap::new();
        headers.insert("x-b3-sampled", HeaderValue::from_static("1"));
        headers.insert("x-b3-flags", HeaderValue::from_static("-T"));
        let forwarded = mesh_headers(&headers);
        assert_eq!(forwarded.get("x-b3-sampled").unwrap(), "1");
        assert!(forwarded.get("x-b3-flags").is_none());

        // And the third: whitespace and the legacy spelling are normalized.
        headers.insert("x-b3-sampled", HeaderValue::from_static("false"));
        headers.insert("x-b3-flags", HeaderValue::from_static("0\t"));
        let forwarded = mesh_headers(&headers);
        assert_eq!(forwarded.get("x-b3-sampled").unwrap(), "0");
        assert_eq!(forwarded.get("x-b3-flags").unwrap(), "0");
    }

    #[test]
    fn an_invalid_traceparent_is_not_forwarded_and_takes_its_tracestate_with_it() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_static("00-1-2-01"));
        headers.insert("tracestate", HeaderValue::from_static("foo=1"));
        headers.insert("x-request-id", HeaderValue::from_static("abc"));
        let forwarded = mesh_headers(&headers);
        assert_eq!(forwarded.len(), 1);
        assert_eq!(forwarded.get("x-request-id").unwrap(), "abc");
    }
}
