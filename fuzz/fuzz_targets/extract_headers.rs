//! Fuzzes the header-extraction path with arbitrary tracing headers: the
//! composite of every propagator, then injection, then the propagation-only
//! copy. Besides "no panic", it holds the property tests' invariants: what
//! goes out parses under the specifications' grammar, within their limits,
//! and reads back to the same headers.

#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mesh_propagation::{MESH_TRACE_HEADERS, PropagatorKind, composite, mesh_headers};
use opentelemetry::propagation::TextMapPropagator;
use propagation_conformance::grammar::grammar_errors;

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

    let cx = propagator.extract(&headers);
    let mut out = HeaderMap::new();
    propagator.inject(&cx, &mut out);
    let errors = grammar_errors(&out);
    assert!(errors.is_empty(), "{errors:?} in {out:?}");
    let mut again = HeaderMap::new();
    propagator.inject(&propagator.extract(&out), &mut again);
    assert_eq!(again, out, "what we send reads back the same");

    let mut forwarded = mesh_headers(&headers);
    for value in forwarded.values() {
        assert!(value.len() <= mesh_propagation::MAX_FORWARDED_VALUE_BYTES);
    }
    forwarded.remove("x-request-id");
    forwarded.remove("x-ot-span-context");
    let errors = grammar_errors(&forwarded);
    assert!(errors.is_empty(), "{errors:?} in {forwarded:?}");
});
