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

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tests::{
    envoy_tracing::{EnvoySpan, Headers, Provider, header},
    mesh_apps::{
        Client, FORMATTER_INBOUND, GATEWAY_CLIENT, GATEWAY_SERVER, GATEWAY_TRACE, HELLO_INBOUND,
        HELLO_OUTBOUND, MeshApps, deployed_propagators, span,
    },
};

/// The Envoy spans of one walk, each app's neighbours.
struct Hops {
    trace_id: String,
    hello_inbound: EnvoySpan,
    hello_outbound: EnvoySpan,
    formatter_inbound: EnvoySpan,
}

/// One request, `path` on hello-svc, through every hop under `provider`;
/// returns the Envoy spans and the headers formatter-svc received.
async fn send(apps: &MeshApps, provider: Provider, client: Client, path: &str) -> (Hops, Headers) {
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
    assert_eq!(apps.call_hello(path, &headers).await.0, 200, "{path}");

    // hello-svc → its outbound sidecar → formatter's inbound sidecar.
    let (uri, mut headers) = apps.hello_sent();
    let hello_outbound = provider
        .hop(&mut headers, HELLO_OUTBOUND, GATEWAY_TRACE)
        .span();
    let formatter_inbound = provider
        .hop(&mut headers, FORMATTER_INBOUND, GATEWAY_TRACE)
        .span();
    assert_eq!(apps.call_formatter(&uri, &headers).await, 200, "{path}");
    let hops = Hops {
        trace_id: gateway.trace_id,
        hello_inbound,
        hello_outbound,
        formatter_inbound,
    };
    (hops, headers)
}

/// One request, `path` on hello-svc, through every hop under `provider`;
/// checks each app's spans against the Envoy spans around them.
async fn walk(provider: Provider, client: Client, path: &str) {
    let what = format!("{} provider, {client:?} client, {path}", provider.name());
    let apps = MeshApps::start().await;
    let (hops, formatter_headers) = send(&apps, provider, client, path).await;
    let trace_id = hops.trace_id.clone();

    let traced = path.starts_with("/sayHello/");
    let spans = apps.trace(&trace_id, if traced { 3 } else { 1 }).await;
    let child_of = |envoy: &EnvoySpan| (trace_id.clone(), envoy.span_id.clone());
    let formatter_server = span(&spans, "formatter-svc", SpanKind::Server);
    assert_eq!(
        (
            formatter_server.trace_id.clone(),
            formatter_server.parent_span_id.clone()
        ),
        child_of(&hops.formatter_inbound),
        "{what}: formatter's SERVER span is its inbound sidecar's child"
    );
    assert_eq!(
        hops.formatter_inbound.parent_span_id.as_deref(),
        Some(HELLO_OUTBOUND)
    );

    if !traced {
        assert!(
            spans.iter().all(|s| s.service_name != "hello-svc"),
            "{what}: /sayHello2 makes no spans of hello's"
        );
        assert_eq!(
            hops.hello_outbound.parent_span_id.as_deref(),
            Some(HELLO_INBOUND),
            "{what}: hello forwards its inbound sidecar's context"
        );
        return;
    }
    let server = span(&spans, "hello-svc", SpanKind::Server);
    let client_span = span(&spans, "hello-svc", SpanKind::Client);
    assert_eq!(
        (server.trace_id.clone(), server.parent_span_id.clone()),
        child_of(&hops.hello_inbound),
        "{what}: hello's SERVER span is its inbound sidecar's child"
    );
    assert_eq!(client_span.parent_span_id, server.span_id, "{what}");
    assert_eq!(
        hops.hello_outbound.parent_span_id.as_deref(),
        Some(client_span.span_id.as_str()),
        "{what}: hello's outbound sidecar continues hello's CLIENT span"
    );
    // Both formats name hello's CLIENT span as it leaves, so either
    // provider's outbound sidecar joins. Under otel they are stale by the
    // time formatter's sidecar has passed them on: the case the default
    // OTEL_PROPAGATORS order exists for.
    let (_, sent) = apps.hello_sent();
    let b3_span = |headers: &Headers| header(headers, "x-b3-spanid").map(str::to_owned);
    assert_eq!(b3_span(&sent), Some(client_span.span_id.clone()));
    if provider == Provider::Otel {
        assert_eq!(
            b3_span(&formatter_headers),
            Some(client_span.span_id.clone()),
            "{what}: hello's B3 reached formatter-svc stale"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn under_the_zipkin_provider_every_app_span_is_its_own_sidecars_child() {
    for client in Client::ALL {
        walk(Provider::Zipkin, client, "/sayHello/Brian").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn under_the_otel_provider_every_app_span_is_its_own_sidecars_child_despite_stale_b3() {
    for client in Client::ALL {
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
