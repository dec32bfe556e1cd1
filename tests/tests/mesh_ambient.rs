//! A request through the ambient data plane (`DATAPLANE=ambient`), under
//! both of Istio's tracing providers, through the real binaries with the
//! `OTEL_PROPAGATORS` that `k8s/app.yaml` gives them:
//!
//! ```text
//! client → Gateway API gateway (SERVER, then router CLIENT) → hello-svc
//!        → ztunnel → waypoint (SERVER) → ztunnel → formatter-svc
//! ```
//!
//! No sidecar: ztunnel makes no span and passes the app's HTTP headers on
//! as bytes inside its HBONE tunnel, so it is no hop here (istio/ztunnel
//! `1.30.3`: `Cargo.toml` has no OTLP or Zipkin exporter, and `traceparent`
//! and `baggage` are read only from its own HBONE CONNECT request,
//! `src/proxy/inbound.rs` `extract_traceparent`). The waypoint is
//! one Envoy span, read and written as an inbound sidecar's
//! ([`tests::envoy_tracing::Proxy::Waypoint`], which cites Istio's source).
//! formatter-svc's SERVER span must be the waypoint's child, hello-svc's the
//! gateway CLIENT span's child, whatever stale B3 or own context the client
//! sent.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tests::{
    envoy_tracing::{EnvoySpan, Provider, Proxy},
    mesh_apps::{Client, GATEWAY_CLIENT, GATEWAY_SERVER, GATEWAY_TRACE, MeshApps, WAYPOINT, span},
};

/// One request, `path` on hello-svc, through the gateway and the waypoint;
/// returns the gateway's CLIENT span and the waypoint's span.
async fn send(apps: &MeshApps, provider: Provider, client: Client, path: &str) -> [EnvoySpan; 2] {
    let mut headers = client.headers();
    let gateway = provider.through(
        Proxy::Gateway,
        &mut headers,
        &[GATEWAY_SERVER, GATEWAY_CLIENT],
        GATEWAY_TRACE,
    );
    let gateway_client = gateway[1].clone().span();
    assert_eq!(apps.call_hello(path, &headers).await.0, 200, "{path}");

    let (uri, mut headers) = apps.hello_sent();
    let waypoint = provider.through(Proxy::Waypoint, &mut headers, &[WAYPOINT], GATEWAY_TRACE);
    let waypoint = waypoint[0].clone().span();
    assert_eq!(apps.call_formatter(&uri, &headers).await, 200, "{path}");
    [gateway_client, waypoint]
}

/// One request through the ambient path; checks each app's spans against
/// the Envoy spans around them.
async fn walk(provider: Provider, client: Client, path: &str) {
    let what = format!("{} provider, {client:?} client, {path}", provider.name());
    let apps = MeshApps::start().await;
    let [gateway_client, waypoint] = send(&apps, provider, client, path).await;
    let trace_id = gateway_client.trace_id.clone();
    assert_eq!(
        gateway_client.parent_span_id.as_deref(),
        Some(GATEWAY_SERVER)
    );

    let traced = path.starts_with("/sayHello/");
    let spans = apps.trace(&trace_id, if traced { 3 } else { 1 }).await;
    let formatter_server = span(&spans, "formatter-svc", SpanKind::Server);
    assert_eq!(
        (
            formatter_server.trace_id.as_str(),
            formatter_server.parent_span_id.as_str()
        ),
        (trace_id.as_str(), WAYPOINT),
        "{what}: formatter's SERVER span is the waypoint's child"
    );
    if !traced {
        assert!(
            spans.iter().all(|s| s.service_name != "hello-svc"),
            "{what}: /sayHello2 makes no spans of hello's"
        );
        assert_eq!(
            waypoint.parent_span_id.as_deref(),
            Some(GATEWAY_CLIENT),
            "{what}: hello forwards the gateway's context to the waypoint"
        );
        return;
    }
    let server = span(&spans, "hello-svc", SpanKind::Server);
    let client_span = span(&spans, "hello-svc", SpanKind::Client);
    assert_eq!(
        (server.trace_id.as_str(), server.parent_span_id.as_str()),
        (trace_id.as_str(), GATEWAY_CLIENT),
        "{what}: hello's SERVER span is the gateway CLIENT span's child"
    );
    assert_eq!(client_span.parent_span_id, server.span_id, "{what}");
    assert_eq!(
        waypoint.parent_span_id.as_deref(),
        Some(client_span.span_id.as_str()),
        "{what}: the waypoint continues hello's CLIENT span"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn under_the_zipkin_provider_formatter_is_the_waypoints_child_and_hello_the_gateways() {
    for client in Client::ALL {
        walk(Provider::Zipkin, client, "/sayHello/Brian").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn under_the_otel_provider_formatter_is_the_waypoints_child_despite_stale_b3() {
    for client in Client::ALL {
        walk(Provider::Otel, client, "/sayHello/Brian").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn say_hello2_joins_formatter_to_the_waypoint_under_both_providers() {
    for provider in Provider::ALL {
        for client in [Client::Plain, Client::B3AndTraceparent] {
            walk(provider, client, "/sayHello2/Brian").await;
        }
    }
}
