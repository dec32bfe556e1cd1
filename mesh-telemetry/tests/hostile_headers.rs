//! Tracing headers and baggage arrive from the internet through the ingress
//! gateway: untrusted input. Whatever arrives, extraction must not panic and
//! what we send on must be well-formed and bounded.

use http::{HeaderMap, HeaderName, HeaderValue};
use mesh_telemetry::propagation::{
    MAX_FORWARDED_VALUE_BYTES, MESH_TRACE_HEADERS, Propagator, PropagatorKind, composite,
    mesh_headers,
};
use opentelemetry::{
    baggage::{Baggage, BaggageExt},
    propagation::TextMapPropagator,
    trace::TraceContextExt,
};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use proptest::prelude::*;

/// Every header either path reads: what the propagators use (their
/// `fields()`) and what the propagation-only path copies.
fn read_headers() -> Vec<HeaderName> {
    let propagator = everything();
    let mut names: Vec<HeaderName> = propagator
        .fields()
        .chain(MESH_TRACE_HEADERS.iter().copied())
        .map(|name| HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"))
        .collect();
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    names
}

/// All propagators, so every parser sees every input.
fn everything() -> Propagator {
    use PropagatorKind::*;
    composite(&[Tracecontext, Baggage, B3, B3multi])
}

/// Values that look like trace headers, broken ones, all-zero ids, huge ones
/// and arbitrary bytes (including non-ASCII).
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]".prop_map(String::into_bytes),
        Just(b"00-00000000000000000000000000000000-0000000000000000-01".to_vec()),
        Just(b"00000000000000000000000000000000-0000000000000000-1".to_vec()),
        "[0-9a-fA-FxXzZ:;,=-]{0,80}".prop_map(String::into_bytes),
        "([a-z0-9%_-]{1,12}=[^,;\\x00-\\x1f]{0,20},){0,40}".prop_map(String::into_bytes),
        // Baggage members with properties, percent-encoded bytes included.
        "([a-z]{1,5}=[a-z%0-9A-F]{1,8}(;[a-z]{1,5}(=(%[0-9A-F]{2}|[a-z]){1,8})?)?,?){1,5}"
            .prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..200),
        (1usize..20_000).prop_map(|n| "k=v,".repeat(n / 4).into_bytes()),
    ]
}

fn hostile_headers() -> impl Strategy<Value = HeaderMap> {
    prop::collection::vec(
        (prop::sample::select(read_headers()), header_value()),
        0..24,
    )
    .prop_map(|pairs| {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            // What hyper would refuse never reaches the service.
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                headers.append(name, value);
            }
        }
        headers
    })
}

fn is_lower_hex(value: &str, len: usize) -> bool {
    value.len() == len
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn not_all_zero(value: &str) -> bool {
    value.bytes().any(|b| b != b'0')
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn whatever_arrives_what_goes_out_is_well_formed_and_bounded(incoming in hostile_headers()) {
        let propagator = everything();
        let cx = propagator.extract(&HeaderExtractor(&incoming));
        let mut out = HeaderMap::new();
        propagator.inject_context(&cx, &mut HeaderInjector(&mut out));

        for (name, value) in &out {
            prop_assert!(value.to_str().is_ok(), "{name} is not visible ASCII: {value:?}");
        }
        if let Some(traceparent) = out.get("traceparent").map(|v| v.to_str().unwrap()) {
            let parts: Vec<&str> = traceparent.split('-').collect();
            prop_assert_eq!(parts.len(), 4, "{}", traceparent);
            prop_assert_eq!(parts[0], "00");
            prop_assert!(is_lower_hex(parts[1], 32) && not_all_zero(parts[1]), "{}", traceparent);
            prop_assert!(is_lower_hex(parts[2], 16) && not_all_zero(parts[2]), "{}", traceparent);
        }
        if let Some(trace_id) = out.get("x-b3-traceid").map(|v| v.to_str().unwrap()) {
            prop_assert!(is_lower_hex(trace_id, 32) && not_all_zero(trace_id), "{}", trace_id);
        }
        if let Some(tracestate) = out.get("tracestate").map(|v| v.to_str().unwrap()) {
            prop_assert!(tracestate.split(',').count() <= 32, "{}", tracestate);
        }
        if let Some(baggage) = out.get("baggage").map(|v| v.to_str().unwrap()) {
            prop_assert!(baggage.len() <= 8192, "baggage of {} bytes", baggage.len());
            prop_assert!(baggage.split(',').count() <= 180, "{} members", baggage.split(',').count());
        }
    }

    #[test]
    fn an_invalid_parent_is_never_passed_on_as_is(incoming in hostile_headers()) {
        let propagator = everything();
        let cx = propagator.extract(&HeaderExtractor(&incoming));
        let span = cx.span();
        let extracted = span.span_context();
        if extracted.is_valid() {
            // Only a context with real ids is continued...
            prop_assert!(not_all_zero(&extracted.trace_id().to_string()));
            prop_assert!(not_all_zero(&extracted.span_id().to_string()));
        } else {
            // ...otherwise nothing trace-shaped is written: the server span
            // becomes the root of a fresh trace.
            let mut out = HeaderMap::new();
            propagator.inject_context(&cx, &mut HeaderInjector(&mut out));
            prop_assert!(out.get("traceparent").is_none());
            prop_assert!(out.get("x-b3-traceid").is_none());
            prop_assert!(out.get("uber-trace-id").is_none());
        }
    }

    #[test]
    fn any_user_agent_goes_out_as_a_valid_baggage_value_that_reads_back(user_agent in "\\PC{0,200}") {
        let propagator = everything();
        let mut baggage = Baggage::new();
        let _ = baggage.insert("user-agent", user_agent.clone());
        let cx = opentelemetry::Context::new().with_baggage(baggage);
        let mut out = HeaderMap::new();
        propagator.inject_context(&cx, &mut HeaderInjector(&mut out));

        let header = out.get("baggage").expect("a non-empty baggage is written");
        prop_assert!(header.to_str().is_ok(), "not visible ASCII: {header:?}");
        let read_back = propagator.extract(&HeaderExtractor(&out));
        let value = read_back.baggage().get("user-agent").map(|v| v.to_string()).unwrap_or_default();
        prop_assert_eq!(value, user_agent.trim());
    }

    #[test]
    fn the_propagation_only_path_copies_only_bounded_mesh_headers(incoming in hostile_headers()) {
        let forwarded = mesh_headers(&incoming);
        for (name, value) in &forwarded {
            prop_assert!(MESH_TRACE_HEADERS.contains(&name.as_str()), "{name} is not a mesh header");
            prop_assert!(value.len() <= MAX_FORWARDED_VALUE_BYTES);
            prop_assert!(value.to_str().is_ok());
            prop_assert_eq!(forwarded.get_all(name).iter().count(), 1, "one value per header");
        }
    }
}

#[test]
fn a_huge_incoming_baggage_cannot_inflate_the_outbound_one() {
    let propagator = everything();
    for members in [100, 1_000, 50_000] {
        let value: String = (0..members)
            .map(|i| format!("key{i}=value{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut incoming = HeaderMap::new();
        incoming.insert("baggage", HeaderValue::from_str(&value).unwrap());
        let cx = propagator.extract(&HeaderExtractor(&incoming));
        let mut out = HeaderMap::new();
        propagator.inject_context(&cx, &mut HeaderInjector(&mut out));
        let out_len = out.get("baggage").map_or(0, HeaderValue::len);
        assert!(out_len <= 8192, "{members} members in, {out_len} bytes out");
        assert!(
            cx.baggage().len() <= 180,
            "{} members kept",
            cx.baggage().len()
        );
    }
}
