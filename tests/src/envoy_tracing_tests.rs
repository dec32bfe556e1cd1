//! The model against each point of Envoy's tracers its module docs cite.

use super::*;

fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

const T1: &str = "11111111111111111111111111111111";
const T2: &str = "22222222222222222222222222222222";
const S1: &str = "aaaaaaaaaaaaaaaa";
const S2: &str = "bbbbbbbbbbbbbbbb";
const MINE: &str = "cccccccccccccccc";

fn traceparent(trace: &str, span: &str) -> String {
    format!("00-{trace}-{span}-01")
}

#[test]
fn the_otel_provider_reads_and_writes_traceparent_and_leaves_b3_stale() {
    let mut h = headers(&[
        ("traceparent", &traceparent(T1, S1)),
        ("x-b3-traceid", T2),
        ("x-b3-spanid", S2),
    ]);
    let span = Provider::Otel.hop(&mut h, MINE, T2).span();
    assert_eq!(span.trace_id, T1);
    assert_eq!(span.parent_span_id.as_deref(), Some(S1));
    assert_eq!(
        header(&h, "traceparent"),
        Some(traceparent(T1, MINE).as_str())
    );
    assert_eq!(header(&h, "tracestate"), Some(""));
    assert_eq!(header(&h, "x-b3-spanid"), Some(S2));
}

#[test]
fn the_zipkin_provider_prefers_b3_and_writes_both_formats_for_its_span() {
    let mut h = headers(&[
        ("traceparent", &traceparent(T1, S1)),
        ("x-b3-traceid", T2),
        ("x-b3-spanid", S2),
    ]);
    let span = Provider::Zipkin.hop(&mut h, MINE, T1).span();
    assert_eq!(span.trace_id, T2);
    assert_eq!(span.parent_span_id.as_deref(), Some(S2));
    assert_eq!(
        header(&h, "traceparent"),
        Some(traceparent(T2, MINE).as_str())
    );
    assert_eq!(header(&h, "x-b3-spanid"), Some(MINE));
    assert_eq!(header(&h, "x-b3-parentspanid"), Some(S2));
}

#[test]
fn with_no_b3_the_zipkin_provider_falls_back_to_a_valid_traceparent_only() {
    let mut h = headers(&[("traceparent", &traceparent(T1, S1))]);
    let span = Provider::Zipkin.hop(&mut h, MINE, T2).span();
    assert_eq!(
        (span.trace_id.as_str(), span.parent_span_id.as_deref()),
        (T1, Some(S1))
    );
    let mut h = headers(&[("traceparent", "00-not-a-traceparent-01")]);
    let span = Provider::Zipkin.hop(&mut h, MINE, T2).span();
    assert_eq!((span.trace_id.as_str(), span.parent_span_id), (T2, None));
}

#[test]
fn a_zipkin_root_span_leaves_a_clients_x_b3_parentspanid_alone() {
    let mut h = headers(&[("user-agent", "curl/8.5.0"), ("x-b3-parentspanid", S1)]);
    let span = Provider::Zipkin.hop(&mut h, MINE, T1).span();
    assert_eq!((span.trace_id.as_str(), span.parent_span_id), (T1, None));
    assert_eq!(header(&h, "x-b3-parentspanid"), Some(S1));
    assert_eq!(header(&h, "x-b3-spanid"), Some(MINE));
}

#[test]
fn an_otel_root_span_writes_an_empty_tracestate_over_a_clients() {
    let mut h = headers(&[("tracestate", "vendor=1")]);
    let span = Provider::Otel.hop(&mut h, MINE, T1).span();
    assert_eq!(span.parent_span_id, None);
    assert_eq!(header(&h, "tracestate"), Some(""));
}

#[test]
fn a_continued_otel_span_carries_every_tracestate_line_joined() {
    let mut h = headers(&[
        ("traceparent", &traceparent(T1, S1)),
        ("tracestate", "a=1"),
        ("tracestate", "b=2"),
    ]);
    Provider::Otel.hop(&mut h, MINE, T2).span();
    let lines: Vec<&(String, String)> = h.iter().filter(|(n, _)| n == "tracestate").collect();
    assert_eq!(lines, [&("tracestate".to_owned(), "a=1,b=2".to_owned())]);
}

/// Each header set is malformed for the Zipkin tracer.
const MALFORMED_B3: [&[(&str, &str)]; 5] = [
    &[("x-b3-traceid", T1), ("x-b3-spanid", "not-hex-at-all!!")],
    &[("x-b3-traceid", "zz"), ("x-b3-spanid", S1)],
    &[
        ("x-b3-traceid", T1),
        ("x-b3-spanid", S1),
        ("x-b3-parentspanid", "xyz"),
    ],
    // Seventeen digits overflow `strtoull`.
    &[("x-b3-traceid", T1), ("x-b3-spanid", "1aaaaaaaaaaaaaaaa")],
    &[("b3", "11111111111111111111111111111111-aaaaaaaaaaaaaaaa-x")],
];

#[test]
fn malformed_b3_makes_the_zipkin_tracer_a_null_span_that_changes_no_header() {
    for malformed in MALFORMED_B3 {
        let mut h = headers(malformed);
        h.push(("traceparent".to_owned(), traceparent(T2, S2)));
        let before = h.clone();
        assert_eq!(
            Provider::Zipkin.hop(&mut h, MINE, T1),
            Hop::Null,
            "{malformed:?}"
        );
        assert_eq!(h, before, "{malformed:?}");
        assert_eq!(Provider::Zipkin.parent(&h), None);
    }
}

#[test]
fn the_single_b3_header_is_read_alone_and_a_lone_sampling_flag_is_no_context() {
    let single = format!("{T2}-{S2}-1-{S1}");
    let mut h = headers(&[("b3", &single), ("x-b3-traceid", T1), ("x-b3-spanid", S1)]);
    let span = Provider::Zipkin.hop(&mut h, MINE, T1).span();
    assert_eq!(
        (span.trace_id.as_str(), span.parent_span_id.as_deref()),
        (T2, Some(S2))
    );
    // The b3 header is read, never written.
    assert_eq!(header(&h, "b3"), Some(single.as_str()));

    let mut h = headers(&[("b3", "1"), ("x-b3-traceid", T2), ("x-b3-spanid", S2)]);
    let span = Provider::Zipkin.hop(&mut h, MINE, T1).span();
    assert_eq!((span.trace_id.as_str(), span.parent_span_id), (T1, None));
}

#[test]
fn the_zipkin_tracer_takes_64_bit_and_upper_case_b3_ids_and_writes_them_lower_case() {
    let mut h = headers(&[
        ("x-b3-traceid", "A3CE929D0E0E4736"),
        ("x-b3-spanid", "E457B5A2E4D86BD1"),
    ]);
    let span = Provider::Zipkin.hop(&mut h, MINE, T1).span();
    assert_eq!(span.trace_id, "0000000000000000a3ce929d0e0e4736");
    assert_eq!(span.parent_span_id.as_deref(), Some("e457b5a2e4d86bd1"));
    assert_eq!(header(&h, "x-b3-traceid"), Some("a3ce929d0e0e4736"));
    assert_eq!(header(&h, "x-b3-parentspanid"), Some("e457b5a2e4d86bd1"));
    assert_eq!(
        header(&h, "traceparent"),
        Some(traceparent("0000000000000000a3ce929d0e0e4736", MINE).as_str())
    );
    // A 128-bit id whose high half is zero is written back as 64-bit.
    let mut h = headers(&[
        ("x-b3-traceid", "0000000000000000a3ce929d0e0e4736"),
        ("x-b3-spanid", S1),
    ]);
    Provider::Zipkin.hop(&mut h, MINE, T1).span();
    assert_eq!(header(&h, "x-b3-traceid"), Some("a3ce929d0e0e4736"));
}

#[test]
fn the_otel_tracer_takes_any_two_digit_version_and_upper_case_and_writes_00_lower_case() {
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    for version in ["00", "01", "cc", "FF"] {
        let upper = format!(
            "{version}-{}-{}-01",
            trace.to_uppercase(),
            S1.to_uppercase()
        );
        let mut h = headers(&[("traceparent", &upper)]);
        let span = Provider::Otel.hop(&mut h, MINE, T2).span();
        assert_eq!(
            (span.trace_id.as_str(), span.parent_span_id.as_deref()),
            (trace, Some(S1))
        );
        assert_eq!(
            header(&h, "traceparent"),
            Some(traceparent(trace, MINE).as_str())
        );
    }
}

#[test]
fn an_invalid_traceparent_makes_the_otel_tracer_a_null_span_that_changes_no_header() {
    let zeros = "0".repeat(32);
    for invalid in [
        format!("00-{zeros}-{S1}-01"),
        format!("00-{T1}-0000000000000000-01"),
        format!("00-{T1}-{S1}-1"),
        format!("00-{T1}-{S1}-01-extra"),
        format!("0-{T1}-{S1}-011"),
        format!("00-{}-{S1}-01", "g".repeat(32)),
    ] {
        let mut h = headers(&[("traceparent", &invalid), ("tracestate", "a=1")]);
        let before = h.clone();
        assert_eq!(Provider::Otel.hop(&mut h, MINE, T2), Hop::Null, "{invalid}");
        assert_eq!(h, before, "{invalid}");
    }
}

#[test]
fn a_gateway_makes_two_spans_a_waypoint_one_and_a_null_span_has_null_children() {
    for provider in Provider::ALL {
        let mut h = headers(&[("user-agent", "curl/8.5.0")]);
        let hops = provider.through(Proxy::Gateway, &mut h, &[S1, S2], T1);
        let [server, client] = [hops[0].clone().span(), hops[1].clone().span()];
        assert_eq!(server.parent_span_id, None);
        assert_eq!(client.parent_span_id.as_deref(), Some(S1));
        let waypoint = provider.through(Proxy::Waypoint, &mut h, &[MINE], T2);
        assert_eq!(
            waypoint[0].clone().span().parent_span_id.as_deref(),
            Some(S2)
        );
        assert_eq!(waypoint[0].clone().span().trace_id, T1);
    }
    let mut h = headers(&[("traceparent", "garbage")]);
    let hops = Provider::Otel.through(Proxy::Gateway, &mut h, &[S1, S2], T1);
    assert_eq!(hops, [Hop::Null, Hop::Null]);
    assert_eq!(h, headers(&[("traceparent", "garbage")]));
}

#[test]
fn with_nothing_to_continue_envoy_starts_the_trace() {
    for provider in Provider::ALL {
        let mut h = headers(&[("user-agent", "curl/8.5.0")]);
        let span = provider.hop(&mut h, MINE, T1).span();
        assert_eq!((span.trace_id.as_str(), span.parent_span_id), (T1, None));
        assert!(header(&h, "x-b3-parentspanid").is_none());
    }
}
