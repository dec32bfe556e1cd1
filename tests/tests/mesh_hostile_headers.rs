//! Context headers Envoy and our apps read differently, through the sidecar
//! path (gateway, hello's sidecar, hello-svc, the two sidecars between the
//! apps, formatter-svc) and the real binaries: what each Envoy does
//! ([`tests::envoy_tracing`], which cites Envoy's source) and what our apps
//! then do, by their parents and the headers that go out.
//!
//! Our apps read B3 and `traceparent` as their specifications write them:
//! lower-case hex only, a 16- or 32-digit B3 trace id, no all-zero id
//! (`mesh-propagation`). Envoy is laxer on B3 and on `traceparent`'s case
//! and version, and stricter in one way: what it cannot parse makes a
//! `NullSpan`, which writes nothing, so the header reaches the app as the
//! client sent it.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use test_harness::otlp_receiver::ReceivedSpan;
use tests::{
    envoy_tracing::{EnvoySpan, Headers, Hop, Provider, Proxy, header},
    mesh_apps::{
        CLIENT_B3_SPAN, CLIENT_B3_TRACE, FORMATTER_INBOUND, GATEWAY_CLIENT, GATEWAY_SERVER,
        GATEWAY_TRACE, HELLO_INBOUND, HELLO_OUTBOUND, MeshApps, span,
    },
};

/// What one `/sayHello` request through the sidecar path left behind.
struct Walked {
    /// What the gateway and hello's inbound sidecar did, in order.
    before_hello: Vec<Hop>,
    /// The headers hello-svc received.
    hello_received: Headers,
    /// hello-svc's trace, as its `traceresponse` names it.
    trace_id: String,
    /// The three app spans: hello's SERVER and CLIENT, formatter's SERVER.
    spans: Vec<ReceivedSpan>,
    /// Formatter's inbound sidecar's span.
    formatter_inbound: EnvoySpan,
}

fn with_user_agent(pairs: &[(&str, &str)]) -> Headers {
    std::iter::once(("user-agent", "curl/8.5.0"))
        .chain(pairs.iter().copied())
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// `/sayHello/Brian` with the client's `sent` headers, through every hop
/// under `provider`.
async fn walk(provider: Provider, sent: &[(&str, &str)]) -> Walked {
    let apps = MeshApps::start().await;
    let mut headers = with_user_agent(sent);
    let gateway_ids = [GATEWAY_SERVER, GATEWAY_CLIENT];
    let mut before_hello =
        provider.through(Proxy::Gateway, &mut headers, &gateway_ids, GATEWAY_TRACE);
    before_hello.extend(provider.through(
        Proxy::Sidecar,
        &mut headers,
        &[HELLO_INBOUND],
        GATEWAY_TRACE,
    ));
    let (status, trace_id) = apps.call_hello("/sayHello/Brian", &headers).await;
    assert_eq!(status, 200);
    let trace_id = trace_id.expect("hello-svc's SERVER span sends a traceresponse");

    // hello-svc always writes valid context, so both sidecars make spans.
    let (uri, mut out) = apps.hello_sent();
    let outbound = provider.hop(&mut out, HELLO_OUTBOUND, GATEWAY_TRACE).span();
    let formatter_inbound = provider
        .hop(&mut out, FORMATTER_INBOUND, GATEWAY_TRACE)
        .span();
    assert_eq!(apps.call_formatter(&uri, &out).await, 200);
    let spans = apps.trace(&trace_id, 3).await;
    let hello_client = span(&spans, "hello-svc", SpanKind::Client);
    assert_eq!(
        outbound.parent_span_id.as_ref(),
        Some(&hello_client.span_id)
    );
    Walked {
        before_hello,
        hello_received: headers,
        trace_id,
        spans,
        formatter_inbound,
    }
}

impl Walked {
    /// hello's SERVER span's `(trace id, parent span id)`.
    fn hello_parent(&self) -> (&str, &str) {
        let server = span(&self.spans, "hello-svc", SpanKind::Server);
        (server.trace_id.as_str(), server.parent_span_id.as_str())
    }

    /// formatter's SERVER span hangs under its inbound sidecar's, in
    /// hello's trace: the trace is joined from hello-svc down.
    #[track_caller]
    fn assert_joined_below_hello(&self) {
        let formatter = span(&self.spans, "formatter-svc", SpanKind::Server);
        assert_eq!(
            (
                formatter.trace_id.as_str(),
                formatter.parent_span_id.as_str()
            ),
            (self.trace_id.as_str(), FORMATTER_INBOUND)
        );
        assert_eq!(self.formatter_inbound.trace_id, self.trace_id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_b3_passes_the_zipkin_mesh_unchanged_and_hello_starts_the_trace() {
    let sent = [
        ("x-b3-traceid", CLIENT_B3_TRACE),
        ("x-b3-spanid", "not-a-span-id!!!"),
        ("x-b3-sampled", "1"),
    ];
    let walked = walk(Provider::Zipkin, &sent).await;
    assert_eq!(walked.before_hello, [Hop::Null, Hop::Null, Hop::Null]);
    assert_eq!(walked.hello_received, with_user_agent(&sent));
    // hello-svc reads neither the malformed B3 nor any traceparent: a root.
    assert_eq!(walked.hello_parent(), (walked.trace_id.as_str(), ""));
    assert_ne!(walked.trace_id, CLIENT_B3_TRACE);
    walked.assert_joined_below_hello();
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_b3_is_stale_under_otel_and_hello_joins_its_sidecar() {
    let sent = [
        ("x-b3-traceid", CLIENT_B3_TRACE),
        ("x-b3-spanid", "not-a-span-id!!!"),
    ];
    let walked = walk(Provider::Otel, &sent).await;
    assert!(walked.before_hello.iter().all(|hop| *hop != Hop::Null));
    assert_eq!(
        header(&walked.hello_received, "x-b3-spanid"),
        Some("not-a-span-id!!!")
    );
    assert_eq!(walked.hello_parent(), (GATEWAY_TRACE, HELLO_INBOUND));
    walked.assert_joined_below_hello();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_all_zero_traceparent_passes_the_otel_mesh_unchanged_and_hello_reads_b3_or_starts_the_trace()
 {
    let zeros = format!("00-{}-{CLIENT_B3_SPAN}-01", "0".repeat(32));
    let walked = walk(Provider::Otel, &[("traceparent", &zeros)]).await;
    assert_eq!(walked.before_hello, [Hop::Null, Hop::Null, Hop::Null]);
    assert_eq!(
        header(&walked.hello_received, "traceparent"),
        Some(zeros.as_str())
    );
    assert_eq!(walked.hello_parent(), (walked.trace_id.as_str(), ""));
    walked.assert_joined_below_hello();

    // With the client's own B3 beside it, hello-svc continues that.
    let sent = [
        ("traceparent", zeros.as_str()),
        ("x-b3-traceid", CLIENT_B3_TRACE),
        ("x-b3-spanid", CLIENT_B3_SPAN),
    ];
    let walked = walk(Provider::Otel, &sent).await;
    assert_eq!(walked.before_hello, [Hop::Null, Hop::Null, Hop::Null]);
    assert_eq!(walked.hello_parent(), (CLIENT_B3_TRACE, CLIENT_B3_SPAN));
    walked.assert_joined_below_hello();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_64_bit_b3_trace_id_is_continued_by_zipkin_and_by_hello_zero_padded() {
    let sent = [
        ("x-b3-traceid", "a3ce929d0e0e4736"),
        ("x-b3-spanid", CLIENT_B3_SPAN),
    ];
    let padded = "0000000000000000a3ce929d0e0e4736";
    let walked = walk(Provider::Zipkin, &sent).await;
    let gateway = walked.before_hello[0].clone().span();
    assert_eq!(gateway.parent_span_id.as_deref(), Some(CLIENT_B3_SPAN));
    assert_eq!(
        header(&walked.hello_received, "x-b3-traceid"),
        Some("a3ce929d0e0e4736")
    );
    assert_eq!(walked.hello_parent(), (padded, HELLO_INBOUND));
    walked.assert_joined_below_hello();

    // The otel provider ignores B3: hello-svc reads the client's 64-bit id,
    // then the sidecar's traceparent, which wins.
    let walked = walk(Provider::Otel, &sent).await;
    assert_eq!(walked.hello_parent(), (GATEWAY_TRACE, HELLO_INBOUND));
    walked.assert_joined_below_hello();
}

#[tokio::test(flavor = "multi_thread")]
async fn upper_case_ids_are_continued_by_envoy_and_reach_hello_lower_case() {
    let (trace, span_id) = (
        CLIENT_B3_TRACE.to_uppercase(),
        CLIENT_B3_SPAN.to_uppercase(),
    );
    let b3 = [
        ("x-b3-traceid", trace.as_str()),
        ("x-b3-spanid", span_id.as_str()),
    ];
    let walked = walk(Provider::Zipkin, &b3).await;
    assert_eq!(
        header(&walked.hello_received, "x-b3-traceid"),
        Some(CLIENT_B3_TRACE)
    );
    assert_eq!(walked.hello_parent(), (CLIENT_B3_TRACE, HELLO_INBOUND));
    walked.assert_joined_below_hello();

    let traceparent = format!("01-{trace}-{span_id}-01");
    let walked = walk(Provider::Otel, &[("traceparent", &traceparent)]).await;
    let gateway = walked.before_hello[0].clone().span();
    assert_eq!(gateway.parent_span_id.as_deref(), Some(CLIENT_B3_SPAN));
    assert_eq!(
        header(&walked.hello_received, "traceparent"),
        Some(format!("00-{CLIENT_B3_TRACE}-{HELLO_INBOUND}-01").as_str())
    );
    assert_eq!(walked.hello_parent(), (CLIENT_B3_TRACE, HELLO_INBOUND));
    walked.assert_joined_below_hello();
}

#[tokio::test(flavor = "multi_thread")]
async fn upper_case_ids_sent_straight_to_hello_start_a_new_trace() {
    // Past the mesh (a port-forward to the pod), nothing lower-cases them,
    // and hello-svc reads only what the specifications allow.
    let apps = MeshApps::start().await;
    let (trace, span_id) = (
        CLIENT_B3_TRACE.to_uppercase(),
        CLIENT_B3_SPAN.to_uppercase(),
    );
    let headers = with_user_agent(&[
        ("x-b3-traceid", &trace),
        ("x-b3-spanid", &span_id),
        ("traceparent", &format!("00-{trace}-{span_id}-01")),
    ]);
    let (status, trace_id) = apps.call_hello("/sayHello/Brian", &headers).await;
    assert_eq!(status, 200);
    let trace_id = trace_id.expect("a traceresponse");
    assert_ne!(trace_id, CLIENT_B3_TRACE);
    let spans = apps.trace(&trace_id, 2).await;
    assert_eq!(
        span(&spans, "hello-svc", SpanKind::Server).parent_span_id,
        ""
    );
}
