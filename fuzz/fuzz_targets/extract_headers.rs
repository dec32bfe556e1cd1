//! Fuzzes the header-extraction path with arbitrary tracing headers: the
//! composite of every propagator, then injection, then the propagation-only
//! copy. Besides "no panic", it checks what goes out is bounded and valid.

#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mesh_telemetry::propagation::{MESH_TRACE_HEADERS, PropagatorKind, composite, mesh_headers};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};

fuzz_target!(|data: &[u8]| {
    use PropagatorKind::*;
    let propagator = composite(&[Tracecontext, Baggage, B3, B3multi]);
    // Every header either path reads: the propagators' fields and what the
    // propagation-only path copies.
    let names: Vec<&str> = propagator.fields().chain(MESH_TRACE_HEADERS).collect();

    // Input: records of [name selector byte][value bytes...] separated by 0xFF.
    let mut headers = HeaderMap::new();
    for record in data.split(|&b| b == 0xFF) {
        let Some((&selector, value)) = record.split_first() else {
            continue;
        };
        let Ok(name) = HeaderName::from_bytes(names[selector as usize % names.len()].as_bytes())
        else {
            continue;
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }

    let cx = propagator.extract(&HeaderExtractor(&headers));
    let mut out = HeaderMap::new();
    propagator.inject_context(&cx, &mut HeaderInjector(&mut out));

    for value in out.values() {
        assert!(
            value.to_str().is_ok(),
            "injected a non-ASCII value: {value:?}"
        );
    }
    if let Some(baggage) = out.get("baggage") {
        assert!(baggage.len() <= 8192);
    }
    if let Some(tracestate) = out.get("tracestate").and_then(|v| v.to_str().ok()) {
        assert!(tracestate.split(',').count() <= 32);
    }
    for value in mesh_headers(&headers).values() {
        assert!(value.len() <= mesh_telemetry::propagation::MAX_FORWARDED_VALUE_BYTES);
    }
});
