//! What hello-svc writes on the wire to the formatter, seen by a fake
//! formatter that records every request.

use test_harness::{TestApp, otlp_receiver::Transport, traceresponse_trace_id};

const TRACE_ID: &str = "463ac35c9f6413ad48485a3953bb6124";

/// The ten headers `/sayHello2` must forward, with the values Envoy sends.
const MESH_HEADERS: [(&str, &str); 10] = [
    ("x-request-id", "8d4c2e1f-istio"),
    (
        "traceparent",
        "00-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-01",
    ),
    ("tracestate", "vendor=opaque"),
    ("x-b3-traceid", TRACE_ID),
    ("x-b3-spanid", "a2fb4a1d1a96d312"),
    ("x-b3-parentspanid", "0020000000000001"),
    ("x-b3-sampled", "1"),
    ("x-b3-flags", "0"),
    ("b3", "463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-1"),
    (
        "x-ot-span-context",
        "463ac35c9f6413ad48485a3953bb6124;a2fb4a1d1a96d312;0;cs",
    ),
];

/// `/sayHello/Brian` carrying Istio's B3 context for [`TRACE_ID`], with
/// `x-b3-sampled: sampled`.
async fn say_hello_in_b3_trace(app: &TestApp, sampled: &str) {
    app.say_hello_ok(&[
        ("x-b3-traceid", TRACE_ID),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-sampled", sampled),
    ])
    .await;
}

/// An app exporting over `transport` to the fake formatter, with `env`.
async fn app(transport: Transport, env: &[(&str, &str)]) -> TestApp {
    env.iter()
        .fold(TestApp::builder().exporting_over(transport), |b, (k, v)| {
            b.env(k, v)
        })
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn say_hello2_forwards_exactly_the_mesh_headers_and_exports_no_span() {
    let app = app(Transport::Grpc, &[]).await;
    let mut headers = vec![
        ("user-agent", "Mozilla/4.0 (compatible; Netscape)"),
        ("baggage", "user-agent=Netscape"),
        (
            "uber-trace-id",
            "463ac35c9f6413ad48485a3953bb6124:a2fb4a1d1a96d312:0:1",
        ),
        ("cookie", "session=secret"),
        ("x-forwarded-for", "10.0.0.1"),
    ];
    headers.extend(MESH_HEADERS);
    let response = app.get("/sayHello2/Brian", &headers).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "fake greeting\n");

    let requests = app.formatter_requests();
    assert_eq!(requests.len(), 1);
    let mut sent: Vec<(String, String)> = requests[0]
        .headers
        .iter()
        // The one header the HTTP client adds (no `accept`, no `user-agent`).
        .filter(|(name, _)| name != "host")
        .cloned()
        .collect();
    sent.sort();
    let mut expected: Vec<(String, String)> = MESH_HEADERS
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    expected.sort();
    assert_eq!(sent, expected, "exactly the mesh headers, unchanged");

    // Then an instrumented request: once its spans have arrived, anything
    // /sayHello2 had exported would have arrived too (same batch processor).
    let marker = app.get("/sayHello/marker", &[]).await;
    let marker_trace = traceresponse_trace_id(marker.headers());
    let spans = app.trace(&marker_trace, 2).await;
    assert_eq!(
        spans.len(),
        2,
        "the marker's SERVER and CLIENT spans arrived"
    );
    let others: Vec<_> = app
        .receiver()
        .spans()
        .into_iter()
        .filter(|s| s.trace_id != marker_trace)
        .collect();
    assert!(others.is_empty(), "/sayHello2 exported spans: {others:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn say_hello_injects_every_format_keeps_incoming_baggage_and_forwards_the_request_id() {
    let app = app(Transport::HttpProtobuf, &[]).await;
    app.say_hello_ok(&[
        ("user-agent", "Mozilla/4.0 (compatible; Netscape)"),
        ("x-request-id", "8d4c2e1f-istio"),
        ("x-b3-traceid", TRACE_ID),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-sampled", "1"),
        ("baggage", "tenant=blue"),
    ])
    .await;

    let spans = app.trace(TRACE_ID, 2).await;
    let client_span = spans
        .iter()
        .find(|s| s.name == "GET")
        .unwrap_or_else(|| panic!("no CLIENT span: {spans:#?}"));
    let sent = app.last_formatter_request();
    let header = |name: &str| {
        sent.header(name)
            .unwrap_or_else(|| panic!("{name} not sent: {sent:#?}"))
            .to_owned()
    };

    assert_eq!(header("x-request-id"), "8d4c2e1f-istio");
    // B3 says nothing of the trace id's randomness, so the flags are 01.
    assert_eq!(
        header("traceparent"),
        format!("00-{TRACE_ID}-{}-01", client_span.span_id)
    );
    assert_eq!(header("x-b3-traceid"), TRACE_ID);
    assert_eq!(header("x-b3-spanid"), client_span.span_id);
    assert_eq!(header("x-b3-sampled"), "1");
    assert!(sent.header("tracestate").is_none(), "no empty tracestate");
    assert_eq!(
        header("baggage"),
        "tenant=blue,user-agent=Mozilla/4.0%20(compatible%3B%20Netscape)",
        "incoming baggage kept, User-Agent added and percent-encoded"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_sdk_disabled_the_incoming_context_passes_through_and_nothing_is_exported() {
    let mut app = app(Transport::Grpc, &[("OTEL_SDK_DISABLED", "true")]).await;
    let response = app
        .say_hello(&[
            ("x-b3-traceid", TRACE_ID),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ("x-b3-sampled", "1"),
            ("user-agent", "Netscape"),
            ("baggage", "tenant=blue"),
        ])
        .await;
    assert_eq!(response.status(), 200);
    // No span of hello's own to name, in the response or the log.
    assert_eq!(response.headers().get("traceresponse"), None);
    assert_eq!(response.headers().get("server-timing"), None);
    let access = app
        .hello
        .log_line("the access line", |line| {
            serde_json::from_str::<serde_json::Value>(line)
                .is_ok_and(|l| l["fields"]["message"] == "request")
        })
        .await;
    assert!(!access.contains("trace_id"), "{access}");

    // No span of hello's own: the formatter sees the caller's span as parent.
    let sent = app.last_formatter_request();
    assert_eq!(sent.header("x-b3-traceid"), Some(TRACE_ID));
    assert_eq!(sent.header("x-b3-spanid"), Some("a2fb4a1d1a96d312"));
    assert_eq!(
        sent.header("traceparent"),
        Some(format!("00-{TRACE_ID}-a2fb4a1d1a96d312-01").as_str())
    );
    // The baggage that routes to v2 still goes out, the caller's kept.
    assert_eq!(
        sent.header("baggage"),
        Some("tenant=blue,user-agent=Netscape")
    );
    // A stopped process has flushed everything it would ever export.
    app.hello.terminate();
    assert!(
        app.hello
            .wait_for_exit(std::time::Duration::from_secs(10))
            .await
            .is_some()
    );
    assert!(
        app.receiver().spans().is_empty(),
        "{:#?}",
        app.receiver().spans()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_the_mesh_sampled_out_is_not_exported_and_stays_sampled_out_downstream() {
    let app = app(Transport::Grpc, &[]).await;
    say_hello_in_b3_trace(&app, "0").await;
    let sent = app.last_formatter_request();
    assert_eq!(sent.header("x-b3-traceid"), Some(TRACE_ID));
    assert_eq!(sent.header("x-b3-sampled"), Some("0"));
    assert!(
        sent.header("traceparent")
            .is_some_and(|tp| tp.ends_with("-00")),
        "W3C flags say not sampled: {sent:#?}"
    );

    // A sampled request afterwards proves the export path works, so the
    // absence of the first trace is the sampler's doing.
    let marker_trace = app.say_hello_ok(&[]).await;
    app.trace(&marker_trace, 2).await;
    assert!(
        app.receiver().trace(TRACE_ID).is_empty(),
        "{:#?}",
        app.receiver().trace(TRACE_ID)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_incoming_parent_starts_a_fresh_trace_and_is_not_forwarded() {
    let app = app(Transport::Grpc, &[]).await;
    let zero_trace = "00000000000000000000000000000000";
    let traceparent = format!("00-{zero_trace}-0000000000000000-01");
    let fresh = app
        .say_hello_ok(&[
            ("traceparent", &traceparent),
            ("x-b3-traceid", "not-hex-at-all"),
            ("x-b3-spanid", "zzzz"),
        ])
        .await;
    assert_ne!(fresh, zero_trace);

    let spans = app.trace(&fresh, 2).await;
    let server = spans
        .iter()
        .find(|s| s.name.starts_with("GET /sayHello"))
        .unwrap();
    assert_eq!(server.parent_span_id, "", "the SERVER span is a root");
    let sent = app.last_formatter_request();
    assert!(
        sent.header("traceparent")
            .is_some_and(|tp| tp.contains(&fresh) && tp.ends_with("-03")),
        "a trace started here is sampled and says its id is random: {sent:#?}"
    );
    assert_eq!(sent.header("x-b3-traceid"), Some(fresh.as_str()));
    assert!(
        sent.headers
            .iter()
            .all(|(_, v)| !v.contains(zero_trace) && !v.contains("zzzz"))
    );
}
