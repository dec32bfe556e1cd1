//! Tracing headers and baggage arrive from the internet through the ingress
//! gateway: untrusted input. Whatever arrives, extraction must not panic and
//! what we send on must be well-formed and bounded.

use http::{HeaderMap, HeaderName, HeaderValue};
use mesh_propagation::{
    MAX_FORWARDED_VALUE_BYTES, MESH_TRACE_HEADERS, Propagator, PropagatorKind, composite,
    mesh_headers,
    w3c_baggage::{MAX_BYTES, decode_value},
    with_member_first,
};
use opentelemetry::{
    Context,
    baggage::{Baggage, BaggageExt},
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::TraceContextExt,
};
use propagation_conformance::grammar::grammar_errors;
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
        // Members whose values decode to any ASCII byte: what the writer
        // must encode again (space, `"`, `,`, `;`, `\`, controls).
        "([a-z]{1,5}=(%[0-7][0-9A-F]){1,8},?){1,5}".prop_map(String::into_bytes),
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

/// Few headers, mostly well-formed: two formats naming the same span or
/// different ones, B3 decisions sent alone, and now and then anything.
fn trace_headers() -> impl Strategy<Value = HeaderMap> {
    let names = [
        "traceparent",
        "tracestate",
        "baggage",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-sampled",
        "x-b3-flags",
    ];
    let value = prop_oneof![
        Just(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_vec()),
        Just(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02".to_vec()),
        Just(b"0af7651916cd43dd8448eb211c80319c".to_vec()),
        Just(b"463ac35c9f6413ad48485a3953bb6124".to_vec()),
        Just(b"b7ad6b7169203331".to_vec()),
        Just(b"0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-d".to_vec()),
        Just(b"463ac35c9f6413ad48485a3953bb6124-b7ad6b7169203331".to_vec()),
        "[01d]|true|false| 1\t".prop_map(String::into_bytes),
        "[a-z]{1,3}=[a-z0-9%]{1,4}(;p(=[a-z]{1,3})?)?(,[a-z]{1,3}=[A-Z0-9%]{1,4})?"
            .prop_map(String::into_bytes),
        header_value(),
    ];
    prop::collection::vec((prop::sample::select(names.to_vec()), value), 0..8).prop_map(|pairs| {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                headers.append(name, value);
            }
        }
        headers
    })
}

fn sent(propagator: &Propagator, cx: &opentelemetry::Context) -> HeaderMap {
    let mut out = HeaderMap::new();
    propagator.inject(cx, &mut out);
    out
}

/// A carrier as any other library would hand one to a propagator: no
/// knowledge of which headers the formats read.
struct Carrier<'a>(&'a HeaderMap);

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.get_all(key)?.first().copied()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let lines: Vec<&str> = self
            .0
            .get_all(key)
            .iter()
            .map(|line| line.to_str().unwrap_or("\u{fffd}"))
            .collect();
        (!lines.is_empty()).then_some(lines)
    }
}

struct Outbound(HeaderMap);

impl Injector for Outbound {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(key.as_bytes()), value.parse()) {
            self.0.insert(name, value);
        }
    }
}

/// What a context carries that the formats set, comparable.
fn contents(cx: &Context) -> impl PartialEq + std::fmt::Debug {
    let mut baggage: Vec<(String, String, String)> = cx
        .baggage()
        .iter()
        .map(|(k, (v, m))| (k.to_string(), v.to_string(), m.as_str().to_owned()))
        .collect();
    baggage.sort();
    (
        cx.span().span_context().clone(),
        mesh_propagation::caller_trace::caller_trace(cx).cloned(),
        baggage,
    )
}

/// Any formats, in any order, repeated or not.
fn kinds() -> impl Strategy<Value = Vec<PropagatorKind>> {
    prop::collection::vec(
        prop::sample::select(PropagatorKind::NAMES.map(|(kind, _)| kind).to_vec()),
        0..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_per_request_path_agrees_with_the_general_one(
        incoming in prop_oneof![hostile_headers(), trace_headers()],
        kinds in kinds(),
    ) {
        let propagator = composite(&kinds);
        let fast = propagator.extract(&incoming);
        let general = propagator.extract_with_context(&Context::new(), &Carrier(&incoming));
        prop_assert_eq!(contents(&fast), contents(&general));

        // And written out, from both contexts and from a span of our own.
        let ours = fast.with_remote_span_context(opentelemetry::trace::SpanContext::new(
            opentelemetry::trace::TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736_u128),
            opentelemetry::trace::SpanId::from(0x00f067aa0ba902b7_u64),
            opentelemetry::trace::TraceFlags::SAMPLED,
            false,
            Default::default(),
        ));
        for cx in [&fast, &general, &ours] {
            let mut outbound = Outbound(HeaderMap::new());
            propagator.inject_context(cx, &mut outbound);
            prop_assert_eq!(sent(&propagator, cx), outbound.0);
        }
    }

    #[test]
    fn whatever_arrives_what_goes_out_parses_under_the_grammar_and_round_trips(
        incoming in hostile_headers()
    ) {
        let propagator = everything();
        let out = sent(&propagator, &propagator.extract(&incoming));
        let errors = grammar_errors(&out);
        prop_assert!(errors.is_empty(), "{errors:?} in {out:?}");
        // Read back and sent again, it is the same: nothing we emit is
        // something we would read differently.
        let again = sent(&propagator, &propagator.extract(&out));
        prop_assert_eq!(again, out);
    }

    #[test]
    fn an_invalid_parent_is_never_passed_on(incoming in hostile_headers()) {
        let propagator = everything();
        let cx = propagator.extract(&incoming);
        if !cx.span().span_context().is_valid() {
            // The server span becomes the root of a fresh trace; nothing
            // trace-shaped of the caller's is written.
            let out = sent(&propagator, &cx);
            prop_assert!(out.get("traceparent").is_none());
            prop_assert!(out.get("x-b3-traceid").is_none());
            prop_assert!(out.get("b3").is_none_or(|v| v.len() == 1));
        }
    }

    #[test]
    fn the_user_agent_member_always_says_what_the_user_agent_header_says(
        incoming in hostile_headers(),
        user_agent in "[ -~]{0,100}|\\PC{0,300}",
    ) {
        let propagator = everything();
        let cx = propagator.extract(&incoming);
        let (baggage, left_out) = with_member_first(cx.baggage(), "user-agent", Some(&user_agent));
        prop_assert_eq!(left_out, None);
        let out = sent(&propagator, &cx.with_baggage(baggage));
        let errors = grammar_errors(&out);
        prop_assert!(errors.is_empty(), "{errors:?} in {out:?}");
        let header = out.get("baggage").expect("the user agent is always sent").to_str().unwrap();
        prop_assert!(header.len() <= MAX_BYTES);
        let members: Vec<&str> = header
            .split(',')
            .filter(|m| m.starts_with("user-agent="))
            .collect();
        prop_assert_eq!(members.len(), 1, "{}", header);
        let value = decode_value(&members[0]["user-agent=".len()..]);
        prop_assert_eq!(value.as_deref(), Some(user_agent.as_str()));

        // With no usable User-Agent, the caller's member is removed.
        let (baggage, _) = with_member_first(cx.baggage(), "user-agent", None);
        let out = sent(&propagator, &cx.with_baggage(baggage));
        let header = out.get("baggage").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        prop_assert!(!header.split(',').any(|m| m.starts_with("user-agent=")), "{}", header);
    }

    #[test]
    fn the_propagation_only_path_copies_only_valid_bounded_mesh_headers(incoming in hostile_headers()) {
        let forwarded = mesh_headers(&incoming);
        for (name, value) in &forwarded {
            prop_assert!(MESH_TRACE_HEADERS.contains(&name.as_str()), "{name} is not a mesh header");
            prop_assert!(value.len() <= MAX_FORWARDED_VALUE_BYTES);
            prop_assert!(value.to_str().is_ok());
            prop_assert_eq!(forwarded.get_all(name).iter().count(), 1, "one value per header");
        }
        let mut trace_headers = forwarded.clone();
        trace_headers.remove("x-request-id");
        trace_headers.remove("x-ot-span-context");
        let errors = grammar_errors(&trace_headers);
        prop_assert!(errors.is_empty(), "{errors:?} in {forwarded:?}");
    }
}

/// Every ordering of the formats, on headers where the order matters: two
/// formats naming the same span or different ones, B3 decisions sent alone
/// beside a trace, `tracestate` that only W3C carries, repeated lines.
#[test]
fn the_per_request_path_agrees_with_the_general_one_in_every_order() {
    use PropagatorKind::*;
    const W3C: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let cases: &[&[(&str, &str)]] = &[
        &[("traceparent", W3C), ("b3", "0")],
        &[("traceparent", W3C), ("x-b3-sampled", "0")],
        &[("traceparent", W3C), ("x-b3-flags", "1")],
        &[("b3", "d")],
        &[
            ("traceparent", W3C),
            ("tracestate", "a=1,b=2"),
            ("b3", "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-d"),
        ],
        &[
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02",
            ),
            ("x-b3-traceid", "0af7651916cd43dd8448eb211c80319c"),
            ("x-b3-spanid", "b7ad6b7169203331"),
        ],
        &[
            ("traceparent", W3C),
            ("tracestate", "a=1"),
            ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ("x-b3-sampled", "1"),
        ],
        &[
            ("traceparent", W3C),
            ("traceparent", W3C),
            ("b3", "463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312"),
        ],
        &[
            ("baggage", "a=1;p"),
            ("baggage", "b=%20x,a=2"),
            ("traceparent", W3C),
        ],
    ];
    let orders = [
        vec![Tracecontext, B3, Baggage],
        vec![B3, Tracecontext, Baggage],
        vec![B3multi, Tracecontext, Baggage],
        vec![Tracecontext, B3multi, B3],
        vec![Baggage, B3, Tracecontext, B3multi],
        vec![B3, B3multi],
        vec![Tracecontext],
        vec![None, Baggage, Baggage],
    ];
    for case in cases {
        let mut incoming = HeaderMap::new();
        for (name, value) in *case {
            incoming.append(*name, HeaderValue::from_static(value));
        }
        for kinds in &orders {
            let propagator = composite(kinds);
            let fast = propagator.extract(&incoming);
            let general = propagator.extract_with_context(&Context::new(), &Carrier(&incoming));
            assert_eq!(
                contents(&fast),
                contents(&general),
                "{case:?} read by {kinds:?}"
            );
            let mut outbound = Outbound(HeaderMap::new());
            propagator.inject_context(&general, &mut outbound);
            assert_eq!(
                sent(&propagator, &fast),
                outbound.0,
                "{case:?} by {kinds:?}"
            );
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
        let cx = propagator.extract(&incoming);
        let out = sent(&propagator, &cx);
        let out_len = out.get("baggage").map_or(0, HeaderValue::len);
        assert!(
            out_len <= MAX_BYTES,
            "{members} members in, {out_len} bytes out"
        );
        assert_eq!(cx.baggage().len(), 64, "the first 64 members are kept");
        assert!(cx.baggage().get("key0").is_some() && cx.baggage().get("key63").is_some());
    }
}

#[test]
fn a_full_caller_baggage_makes_room_for_the_user_agent() {
    let propagator = everything();
    let mut caller = Baggage::new();
    for i in 0..64 {
        let _ = caller.insert(format!("k{i:02}"), "v".repeat(120));
    }
    let _ = caller.insert("user-agent", "Netscape");
    let (baggage, _) = with_member_first(&caller, "user-agent", Some("curl/8.5.0"));
    let out = sent(
        &propagator,
        &opentelemetry::Context::new().with_baggage(baggage),
    );
    let header = out["baggage"].to_str().unwrap();
    assert!(header.len() <= MAX_BYTES);
    assert!(
        header.split(',').any(|m| m == "user-agent=curl/8.5.0"),
        "{header}"
    );
    assert!(!header.contains("Netscape"));
}
