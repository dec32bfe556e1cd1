//! hello-svc's default `OTEL_PROPAGATORS` joins Envoy's spans under both of
//! Istio's tracing providers (`make install-istio TRACING=zipkin|otel`): it
//! continues the span the inbound sidecar sends, and the outbound sidecar
//! finds hello's CLIENT span in the format that provider reads.

use mesh_test_harness::{TestApp, fake_formatter::RecordedRequest, otlp_receiver::Transport};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

/// The span of hello's inbound sidecar, as the headers below carry it.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SIDECAR_SPAN_ID: &str = "00f067aa0ba902b7";
const GATEWAY_SPAN_ID: &str = "a2fb4a1d1a96d312";

/// An Istio tracing provider, as far as context headers go.
#[derive(Debug, Clone, Copy)]
enum Provider {
    /// Envoy's Zipkin tracer with `traceContextOption:
    /// USE_B3_WITH_W3C_PROPAGATION` (k8s/istio/tracing-zipkin.yaml).
    ZipkinB3WithW3c,
    /// Envoy's OpenTelemetry tracer (k8s/istio/tracing-otel.yaml).
    OpenTelemetry,
}

impl Provider {
    /// What the inbound sidecar sends to hello-svc: the zipkin provider
    /// injects B3 and W3C for the same span; the otel provider W3C only.
    fn inbound_headers(self) -> Vec<(&'static str, String)> {
        let traceparent = format!("00-{TRACE_ID}-{SIDECAR_SPAN_ID}-01");
        let mut headers = vec![
            ("x-request-id", "5f1c6a0e-istio".to_owned()),
            ("user-agent", "curl/8.5.0".to_owned()),
            ("traceparent", traceparent),
        ];
        match self {
            Self::ZipkinB3WithW3c => headers.extend([
                ("x-b3-traceid", TRACE_ID.to_owned()),
                ("x-b3-spanid", SIDECAR_SPAN_ID.to_owned()),
                ("x-b3-parentspanid", GATEWAY_SPAN_ID.to_owned()),
                ("x-b3-sampled", "1".to_owned()),
            ]),
            Self::OpenTelemetry => headers.push(("tracestate", "istio=1".to_owned())),
        }
        headers
    }

    /// The parent (trace id, span id) the outbound sidecar's tracer takes
    /// from hello's request: B3 first with W3C as the fallback for zipkin,
    /// W3C alone for otel. `None` would start a new, disconnected trace.
    fn envoy_parent(self, sent: &RecordedRequest) -> Option<(String, String)> {
        let w3c = || {
            let fields: Vec<&str> = sent.header("traceparent")?.split('-').collect();
            (fields.len() == 4).then(|| (fields[1].to_owned(), fields[2].to_owned()))
        };
        match self {
            Self::ZipkinB3WithW3c => {
                let b3 = sent
                    .header("x-b3-traceid")
                    .zip(sent.header("x-b3-spanid"))
                    .map(|(t, s)| (t.to_owned(), s.to_owned()));
                b3.or_else(w3c)
            }
            Self::OpenTelemetry => w3c(),
        }
    }
}

async fn joins_envoy_spans_under(provider: Provider) {
    // No OTEL_PROPAGATORS: the default is what is under test.
    let app = TestApp::builder()
        .exporting_over(Transport::HttpProtobuf)
        .start()
        .await;
    let inbound = provider.inbound_headers();
    let headers: Vec<(&str, &str)> = inbound.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.say_hello_ok(&headers).await;

    let spans = app.trace(TRACE_ID, 2).await;
    let span = |kind: SpanKind| {
        spans
            .iter()
            .find(|s| s.kind == kind)
            .unwrap_or_else(|| panic!("{provider:?}: no {kind:?} span in {spans:#?}"))
    };
    let (server, client) = (span(SpanKind::Server), span(SpanKind::Client));
    assert_eq!(
        server.parent_span_id, SIDECAR_SPAN_ID,
        "{provider:?}: hello's SERVER span is the inbound sidecar's child"
    );
    assert_eq!(client.parent_span_id, server.span_id);

    let sent = app.last_formatter_request();
    assert_eq!(
        provider.envoy_parent(&sent),
        Some((TRACE_ID.to_owned(), client.span_id.clone())),
        "{provider:?}: the outbound sidecar continues hello's CLIENT span; sent {sent:#?}"
    );
    // Both formats name the same span, so a sidecar reading either joins.
    assert_eq!(
        sent.header("traceparent"),
        Some(format!("00-{TRACE_ID}-{}-01", client.span_id).as_str())
    );
    assert_eq!(sent.header("x-b3-spanid"), Some(client.span_id.as_str()));
    assert_eq!(sent.header("x-request-id"), Some("5f1c6a0e-istio"));
}

#[tokio::test(flavor = "multi_thread")]
async fn under_the_zipkin_provider_hello_continues_envoys_b3_span_and_hands_envoy_its_client_span()
{
    joins_envoy_spans_under(Provider::ZipkinB3WithW3c).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn under_the_otel_provider_hello_continues_envoys_w3c_span_and_hands_envoy_its_client_span() {
    joins_envoy_spans_under(Provider::OpenTelemetry).await;
}
