//! The traces the two real services export join into one correct tree,
//! whichever format the incoming context arrives in.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use test_harness::{
    Formatter, TestApp,
    otlp_receiver::{ReceivedSpan, Transport},
};

/// The span Istio's ingress gateway would have created for this request.
const INGRESS_TRACE_ID: &str = "463ac35c9f6413ad48485a3953bb6124";
const INGRESS_SPAN_ID: &str = "a2fb4a1d1a96d312";
const NETSCAPE: &str = "Mozilla/4.0 (compatible; Netscape)";
const V1_BRIAN: &str =
    "Hello, puny human Brian! Morbo asks: how do you like running on Kubernetes?";

/// Checks the tree hello-svc and formatter-svc must produce under the
/// caller's span `parent_span_id`, and returns it as (server, client,
/// formatter server).
fn assert_joined_tree(
    spans: &[ReceivedSpan],
    parent_span_id: &str,
    user_agent: &str,
) -> (ReceivedSpan, ReceivedSpan, ReceivedSpan) {
    assert_eq!(
        spans.len(),
        3,
        "exactly hello's two spans and the formatter's one: {spans:#?}"
    );
    let find = |service: &str, kind: SpanKind| {
        spans
            .iter()
            .find(|s| s.service_name == service && s.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} span from {service}: {spans:#?}"))
            .clone()
    };
    let hello_server = find("hello-svc", SpanKind::Server);
    let hello_client = find("hello-svc", SpanKind::Client);
    let formatter_server = find("formatter-svc", SpanKind::Server);

    assert_eq!(
        hello_server.parent_span_id, parent_span_id,
        "hello continues the caller's span"
    );
    assert_eq!(
        hello_client.parent_span_id, hello_server.span_id,
        "the call is inside the request"
    );
    assert_eq!(
        formatter_server.parent_span_id, hello_client.span_id,
        "the formatter continues hello's CLIENT span"
    );

    assert_hello_attributes(&hello_server, &hello_client, user_agent);
    assert_formatter_attributes(&formatter_server, user_agent);
    assert_eq!(
        hello_server.attr("url.query"),
        None,
        "no query, no url.query"
    );
    for span in [&hello_server, &hello_client, &formatter_server] {
        assert_eq!(
            span.scope,
            ("mesh-telemetry".to_owned(), "0.1.0".to_owned()),
            "the scope names the instrumenting library, not the service"
        );
    }
    (hello_server, hello_client, formatter_server)
}

/// hello-svc's SERVER and CLIENT spans carry the semantic conventions'
/// attributes, with their types.
fn assert_hello_attributes(
    hello_server: &ReceivedSpan,
    hello_client: &ReceivedSpan,
    user_agent: &str,
) {
    assert_eq!(hello_server.name, "GET /sayHello/{name}");
    assert_eq!(hello_server.attr("http.request.method"), Some("GET"));
    assert_eq!(hello_server.attr("http.route"), Some("/sayHello/{name}"));
    assert_eq!(
        hello_server.int_attr("http.response.status_code"),
        Some(200)
    );
    assert_eq!(hello_server.attr("user_agent.original"), Some(user_agent));

    assert_eq!(hello_client.name, "GET");
    assert_eq!(hello_client.attr("http.request.method"), Some("GET"));
    assert_eq!(hello_client.attr("server.address"), Some("127.0.0.1"));
    assert_eq!(
        hello_client.int_attr("http.response.status_code"),
        Some(200)
    );
    assert_eq!(
        hello_client.int_attr("server.port"),
        hello_client.attr("url.full").and_then(|url| url
            .split(':')
            .nth(2)?
            .split('/')
            .next()?
            .parse()
            .ok()),
        "server.port is an int, the port url.full names"
    );
    let url = hello_client.attr("url.full").unwrap_or_default();
    assert!(
        url.ends_with("/formatGreeting?name=Brian"),
        "url.full = {url}"
    );
}

/// formatter-svc's SERVER span carries the conventions' attributes, the
/// query it received, and the baggage hello-svc set.
fn assert_formatter_attributes(formatter_server: &ReceivedSpan, user_agent: &str) {
    assert_eq!(formatter_server.name, "GET /formatGreeting");
    assert_eq!(formatter_server.attr("http.request.method"), Some("GET"));
    assert_eq!(formatter_server.attr("http.route"), Some("/formatGreeting"));
    // Conditionally required when a query was received, and only then.
    assert_eq!(formatter_server.attr("url.query"), Some("name=Brian"));
    assert_eq!(
        formatter_server.int_attr("http.response.status_code"),
        Some(200)
    );
    assert_eq!(
        formatter_server.attr("baggage.user_agent"),
        Some(user_agent),
        "the baggage set by hello reaches the formatter"
    );
    assert_eq!(
        formatter_server
            .resource
            .get("service.version")
            .map(String::as_str),
        Some("v1")
    );
}

/// The pair as `make run` runs it, exporting over `transport`.
async fn pair(transport: Transport) -> TestApp {
    TestApp::builder()
        .exporting_over(transport)
        .formatter(Formatter::Real)
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn b3_context_from_the_ingress_joins_both_services_into_one_trace_over_grpc() {
    let app = pair(Transport::Grpc).await;

    let response = app
        .say_hello(&[
            ("x-request-id", "8d4c2e1f-istio"),
            ("x-b3-traceid", INGRESS_TRACE_ID),
            ("x-b3-spanid", INGRESS_SPAN_ID),
            ("x-b3-sampled", "1"),
            ("user-agent", NETSCAPE),
        ])
        .await;
    let traceresponse = response.headers()["traceresponse"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.text().await.unwrap(), V1_BRIAN);

    let spans = app.trace(INGRESS_TRACE_ID, 3).await;
    let (hello_server, _, _) = assert_joined_tree(&spans, INGRESS_SPAN_ID, NETSCAPE);
    assert_eq!(
        traceresponse,
        format!("00-{INGRESS_TRACE_ID}-{}-01", hello_server.span_id),
        "the response names the trace and hello's span"
    );
    assert_eq!(
        hello_server
            .resource
            .get("service.name")
            .map(String::as_str),
        Some("hello-svc")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn w3c_traceparent_joins_both_services_into_one_trace_over_http() {
    let app = pair(Transport::HttpProtobuf).await;

    app.say_hello_ok(&[
        (
            "traceparent",
            &format!("00-{INGRESS_TRACE_ID}-{INGRESS_SPAN_ID}-01"),
        ),
        ("user-agent", "curl/8.5.0"),
    ])
    .await;

    let spans = app.trace(INGRESS_TRACE_ID, 3).await;
    assert_joined_tree(&spans, INGRESS_SPAN_ID, "curl/8.5.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_meshs_traceparent_wins_over_stale_b3_headers() {
    const STALE_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
    let app = pair(Transport::HttpProtobuf).await;

    // Under Istio's otel provider Envoy rewrites traceparent at every hop and
    // passes a client's (or an earlier hop's) x-b3-* headers through as they
    // were, so the default OTEL_PROPAGATORS lists tracecontext last.
    app.say_hello_ok(&[
        (
            "traceparent",
            &format!("00-{INGRESS_TRACE_ID}-{INGRESS_SPAN_ID}-01"),
        ),
        ("x-b3-traceid", STALE_TRACE_ID),
        ("x-b3-spanid", "b7ad6b7169203331"),
        ("x-b3-sampled", "1"),
        ("user-agent", NETSCAPE),
    ])
    .await;

    let spans = app.trace(INGRESS_TRACE_ID, 3).await;
    assert_joined_tree(&spans, INGRESS_SPAN_ID, NETSCAPE);
    assert!(
        app.receiver().trace(STALE_TRACE_ID).is_empty(),
        "nothing joined the stale trace"
    );
}
