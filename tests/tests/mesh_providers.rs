//! Every hop of a request through the mesh, under both of Istio's tracing
//! providers (`make install-istio TRACING=zipkin|otel`), through the real
//! binaries with the `OTEL_PROPAGATORS` that `k8s/app.yaml` gives them:
//!
//! ```text
//! client → gateway (SERVER, then router CLIENT) → hello's sidecar (inbound)
//!        → hello-svc → hello's sidecar (outbound) → formatter's sidecar
//!        (inbound) → formatter-svc
//! ```
//!
//! Each Envoy hop rewrites the headers as that provider's Envoy does
//! ([`tests::envoy_tracing`], which cites its sources), leaving the rest, stale
//! B3 included, as it was. Each app's SERVER span must be the child of its
//! own inbound sidecar's span, and hello's CLIENT span the parent of its
//! outbound sidecar's.

use deploy_checks::manifests::{container_env, containers, deployments};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use test_harness::{TestApp, otlp_receiver::Transport, service_process::ServiceProcess};
use tests::envoy_tracing::{EnvoySpan, Headers, Provider};

/// The trace the gateway starts when the client sends none it reads.
const GATEWAY_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// A client's own trace, sent as B3 and (another one) as `traceparent`.
const CLIENT_B3_TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
const CLIENT_B3_SPAN: &str = "e457b5a2e4d86bd1";
const CLIENT_W3C_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_W3C_SPAN: &str = "b7ad6b7169203331";

/// The span ids the Envoys on the way take.
const GATEWAY_SERVER: &str = "00000000000000a1";
const GATEWAY_CLIENT: &str = "00000000000000a2";
const HELLO_INBOUND: &str = "00000000000000b1";
const HELLO_OUTBOUND: &str = "00000000000000b2";
const FORMATTER_INBOUND: &str = "00000000000000d1";

/// What the client sends, besides its User-Agent.
#[derive(Debug, Clone, Copy)]
enum Client {
    /// No trace context.
    Plain,
    /// Its own B3 span.
    B3,
    /// Its own B3 span and, for another trace, a `traceparent`.
    B3AndTraceparent,
}

impl Client {
    fn headers(self) -> Headers {
        let mut headers = vec![("user-agent".to_owned(), "curl/8.5.0".to_owned())];
        if matches!(self, Self::B3 | Self::B3AndTraceparent) {
            headers.extend([
                ("x-b3-traceid".to_owned(), CLIENT_B3_TRACE.to_owned()),
                ("x-b3-spanid".to_owned(), CLIENT_B3_SPAN.to_owned()),
                ("x-b3-sampled".to_owned(), "1".to_owned()),
            ]);
        }
        if matches!(self, Self::B3AndTraceparent) {
            headers.push((
                "traceparent".to_owned(),
                format!("00-{CLIENT_W3C_TRACE}-{CLIENT_W3C_SPAN}-01"),
            ));
        }
        headers
    }
}

/// `OTEL_PROPAGATORS` of the `app` container in `k8s/app.yaml` (the same
/// in every Deployment of that app).
fn deployed_propagators(app: &str) -> String {
    let values: Vec<String> = deployments()
        .iter()
        .flat_map(|d| containers(d).iter())
        .filter(|c| c.name == app)
        .map(|c| {
            container_env(c)
                .remove("OTEL_PROPAGATORS")
                .unwrap_or_else(|| panic!("{app} sets OTEL_PROPAGATORS"))
        })
        .collect();
    assert!(!values.is_empty(), "k8s/app.yaml runs {app}");
    assert!(values.iter().all(|v| *v == values[0]), "{app}: {values:?}");
    values[0].clone()
}

fn as_pairs(headers: &Headers) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// One request, `path` on hello-svc, through every hop under `provider`;
/// checks each app's spans against the Envoy spans around them.
async fn walk(provider: Provider, client: Client, path: &str) {
    let what = format!("{} provider, {client:?} client, {path}", provider.name());
    let app = TestApp::builder()
        .exporting_over(Transport::HttpProtobuf)
        .env("OTEL_PROPAGATORS", &deployed_propagators("hello-svc"))
        .start()
        .await;
    let endpoint = app.receiver().endpoint();
    let formatter = ServiceProcess::spawn(
        "formatter-svc",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_PROPAGATORS", &deployed_propagators("formatter-svc")),
        ],
    )
    .await;

    // client → gateway → hello's inbound sidecar → hello-svc.
    let mut headers = client.headers();
    let gateway = provider
        .hop(&mut headers, GATEWAY_SERVER, GATEWAY_TRACE)
        .span();
    provider
        .hop(&mut headers, GATEWAY_CLIENT, GATEWAY_TRACE)
        .span();
    let hello_inbound = provider
        .hop(&mut headers, HELLO_INBOUND, GATEWAY_TRACE)
        .span();
    let trace_id = gateway.trace_id.clone();
    let answer = app.get(path, &as_pairs(&headers)).await;
    assert_eq!(answer.status(), 200, "{what}");

    // hello-svc → its outbound sidecar → formatter's inbound sidecar.
    let sent = app.last_formatter_request();
    let mut headers: Headers = sent
        .headers
        .iter()
        .filter(|(n, _)| n != "host")
        .cloned()
        .collect();
    let hello_outbound = provider
        .hop(&mut headers, HELLO_OUTBOUND, GATEWAY_TRACE)
        .span();
    let formatter_inbound = provider
        .hop(&mut headers, FORMATTER_INBOUND, GATEWAY_TRACE)
        .span();
    let answer = reqwest::Client::new()
        .get(format!(
            "{}/{}",
            formatter.url(),
            sent.uri.trim_start_matches('/')
        ))
        .headers(
            headers
                .iter()
                .map(|(n, v)| (n.parse().unwrap(), v.parse().unwrap()))
                .collect(),
        )
        .send()
        .await
        .expect("formatter-svc answers");
    assert_eq!(answer.status(), 200, "{what}");

    let traced = path.starts_with("/sayHello/");
    let spans = app.trace(&trace_id, if traced { 3 } else { 1 }).await;
    let span = |service: &str, kind: SpanKind| {
        spans
            .iter()
            .find(|s| s.service_name == service && s.kind == kind)
            .unwrap_or_else(|| panic!("{what}: no {service} {kind:?} span in {spans:#?}"))
    };
    let child_of = |envoy: &EnvoySpan| (trace_id.clone(), envoy.span_id.clone());
    let formatter_server = span("formatter-svc", SpanKind::Server);
    assert_eq!(
        (
            formatter_server.trace_id.clone(),
            formatter_server.parent_span_id.clone()
        ),
        child_of(&formatter_inbound),
        "{what}: formatter's SERVER span is its inbound sidecar's child"
    );
    assert_eq!(
        formatter_inbound.parent_span_id.as_deref(),
        Some(HELLO_OUTBOUND)
    );

    if traced {
        let (server, client_span) = (
            span("hello-svc", SpanKind::Server),
            span("hello-svc", SpanKind::Client),
        );
        assert_eq!(
            (server.trace_id.clone(), server.parent_span_id.clone()),
            child_of(&hello_inbound),
            "{what}: hello's SERVER span is its inbound sidecar's child"
        );
        assert_eq!(client_span.parent_span_id, server.span_id, "{what}");
        assert_eq!(
            hello_outbound.parent_span_id.as_deref(),
            Some(client_span.span_id.as_str()),
            "{what}: hello's outbound sidecar continues hello's CLIENT span"
        );
        // Both formats name hello's CLIENT span as it leaves, so either
        // provider's outbound sidecar joins. Under otel they are stale by
        // the time formatter's sidecar has passed them on: the case the
        // default OTEL_PROPAGATORS order exists for.
        assert_eq!(
            sent.header("x-b3-spanid"),
            Some(client_span.span_id.as_str())
        );
        if provider == Provider::Otel {
            assert!(
                headers
                    .iter()
                    .any(|(n, v)| n == "x-b3-spanid" && *v == client_span.span_id),
                "{what}: hello's B3 reached formatter-svc stale"
            );
        }
    } else {
        assert!(
            spans.iter().all(|s| s.service_name != "hello-svc"),
            "{what}: /sayHello2 makes no spans of hello's"
        );
        assert_eq!(
            hello_outbound.parent_span_id.as_deref(),
            Some(HELLO_INBOUND),
            "{what}: hello forwards its inbound sidecar's context"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn under_the_zipkin_provider_every_app_span_is_its_own_sidecars_child() {
    for client in [Client::Plain, Client::B3, Client::B3AndTraceparent] {
        walk(Provider::Zipkin, client, "/sayHello/Brian").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn under_the_otel_provider_every_app_span_is_its_own_sidecars_child_despite_stale_b3() {
    for client in [Client::Plain, Client::B3, Client::B3AndTraceparent] {
        walk(Provider::Otel, client, "/sayHello/Brian").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn say_hello2_joins_formatter_to_its_sidecar_under_both_providers() {
    for provider in Provider::ALL {
        for client in [Client::Plain, Client::B3AndTraceparent] {
            walk(provider, client, "/sayHello2/Brian").await;
        }
    }
}

#[test]
fn both_apps_are_deployed_with_traceparent_read_last() {
    for app in ["hello-svc", "formatter-svc"] {
        let propagators = deployed_propagators(app);
        let formats: Vec<&str> = propagators.split(',').collect();
        let carrying: Vec<&&str> = formats.iter().filter(|f| **f != "baggage").collect();
        assert_eq!(
            carrying.last().map(|f| **f),
            Some("tracecontext"),
            "{app}: {propagators}"
        );
        assert!(
            formats.contains(&"b3multi"),
            "{app} still writes B3 for zipkin"
        );
    }
}
