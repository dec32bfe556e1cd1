//! Failures of the formatter reach the caller as short text/plain errors
//! with the right status, and the spans say so.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode as SpanStatus};
use reqwest::StatusCode;
use serde_json::Value;
use test_harness::{
    Formatter, TestApp, eventually,
    fake_formatter::Behaviour,
    otlp_receiver::{OtlpReceiver, Transport},
    traceresponse_trace_id,
};

const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";
const TRACEPARENT: &str = "00-5b8efff798038103d269b633813fc60c-a2fb4a1d1a96d312-01";

/// hello-svc exporting over gRPC, calling `formatter`, with `env`.
async fn app(formatter: Behaviour, env: &[(&str, &str)]) -> TestApp {
    env.iter()
        .fold(
            TestApp::builder()
                .exporting_over(Transport::Grpc)
                .formatter(Formatter::Fake(formatter)),
            |builder, (name, value)| builder.env(name, value),
        )
        .start()
        .await
}

/// Sends `/sayHello/Brian` in trace [`TRACE_ID`]; returns status, content
/// type and body.
async fn say_hello(app: &TestApp) -> (u16, String, String) {
    let response = app.say_hello(&[("traceparent", TRACEPARENT)]).await;
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

/// Both of hello's spans are marked as errors, with `error_type`.
async fn assert_spans_marked_error(receiver: &OtlpReceiver, error_type: &str, status: i64) {
    let spans = receiver.wait_for_trace(TRACE_ID, 2).await;
    for kind in [SpanKind::Server, SpanKind::Client] {
        let span = spans
            .iter()
            .find(|s| s.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} span: {spans:#?}"));
        assert_eq!(span.status, SpanStatus::Error, "{kind:?} span status");
        assert_eq!(
            span.attr("error.type"),
            Some(error_type),
            "{kind:?} span error.type"
        );
    }
    let server = spans.iter().find(|s| s.kind == SpanKind::Server).unwrap();
    assert_eq!(server.int_attr("http.response.status_code"), Some(status));
}

/// hello's log line for the request in trace `trace_id`, as JSON.
async fn request_log_line(app: &TestApp, trace_id: &str) -> Value {
    let is_it = |line: &str| {
        serde_json::from_str::<Value>(line)
            .is_ok_and(|l| l["trace_id"] == trace_id && l["fields"]["message"] == "request")
    };
    let line = app
        .hello
        .log_line(&format!("request line for {trace_id}"), is_it)
        .await;
    serde_json::from_str(&line).expect("a JSON line")
}

#[tokio::test(flavor = "multi_thread")]
async fn returns_502_when_formatter_is_down() {
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let closed = format!("http://{closed}");
    let app = app(Behaviour::default(), &[("FORMATTER_URL", &closed)]).await;

    let (status, content_type, body) = say_hello(&app).await;
    assert_eq!(status, 502);
    assert_eq!(content_type, "text/plain; charset=utf-8");
    assert_eq!(
        body, "formatter unavailable\n",
        "no internal error chain leaks"
    );
    assert_spans_marked_error(app.receiver(), "formatter_unreachable", 502).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn returns_504_within_the_timeout_when_formatter_is_slow() {
    let slow = Behaviour::answering_after(Duration::from_secs(10));
    let app = app(slow, &[("FORMATTER_TIMEOUT_MS", "300")]).await;

    let started = Instant::now();
    let (status, _, body) = say_hello(&app).await;
    let elapsed = started.elapsed();
    assert_eq!(status, 504);
    assert_eq!(body, "formatter timed out\n");
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(1300),
        "answered after {elapsed:?}, timeout 300 ms"
    );
    assert_spans_marked_error(app.receiver(), "timeout", 504).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn returns_a_fixed_502_when_the_formatter_fails_and_the_span_names_its_status() {
    let failing = Behaviour {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        ..Behaviour::default()
    };
    let app = app(failing, &[]).await;

    let (status, content_type, body) = say_hello(&app).await;
    assert_eq!(status, 502);
    assert_eq!(content_type, "text/plain; charset=utf-8");
    assert_eq!(
        body, "formatter failed\n",
        "the upstream status stays inside"
    );
    assert_spans_marked_error(app.receiver(), "formatter_status", 502).await;
    let spans = app.receiver().trace(TRACE_ID);
    let client = spans.iter().find(|s| s.kind == SpanKind::Client).unwrap();
    assert_eq!(client.int_attr("http.response.status_code"), Some(500));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_cut_by_the_request_timeout_is_a_503_in_its_spans_its_log_and_its_headers() {
    let hanging = Behaviour::answering_after(Duration::from_secs(10));
    let app = app(
        hanging,
        &[
            ("REQUEST_TIMEOUT_MS", "200"),
            ("FORMATTER_TIMEOUT_MS", "5000"),
        ],
    )
    .await;
    let response = app.say_hello(&[("traceparent", TRACEPARENT)]).await;
    assert_eq!(response.status(), 503);
    assert_eq!(traceresponse_trace_id(response.headers()), TRACE_ID);
    assert!(response.headers().contains_key("server-timing"));
    assert_eq!(response.text().await.unwrap(), "request timed out\n");

    let spans = app.trace(TRACE_ID, 2).await;
    let span = |kind| spans.iter().find(|s| s.kind == kind).unwrap();
    let server = span(SpanKind::Server);
    assert_eq!(server.int_attr("http.response.status_code"), Some(503));
    assert_eq!(server.status, SpanStatus::Error);
    assert_eq!(server.attr("error.type"), Some("timeout"));
    let client = span(SpanKind::Client);
    assert_eq!(
        client.status,
        SpanStatus::Error,
        "the cut call is not a slow success"
    );
    assert_eq!(client.attr("error.type"), Some("cancelled"));
    assert_eq!(
        request_log_line(&app, TRACE_ID).await["fields"]["status"],
        503
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_get_431_with_their_span_log_line_and_trace_headers() {
    let app = app(
        Behaviour::default(),
        &[("MAX_REQUEST_HEADER_BYTES", "1024")],
    )
    .await;
    let big = "x".repeat(2048);
    let response = app
        .say_hello(&[("traceparent", TRACEPARENT), ("x-filler", &big)])
        .await;
    assert_eq!(response.status(), 431);
    assert_eq!(traceresponse_trace_id(response.headers()), TRACE_ID);

    let spans = app.trace(TRACE_ID, 1).await;
    assert_eq!(spans[0].int_attr("http.response.status_code"), Some(431));
    assert_eq!(
        spans[0].status,
        SpanStatus::Unset,
        "a 4xx is the caller's error, not the server's (semantic conventions)"
    );
    assert_eq!(
        request_log_line(&app, TRACE_ID).await["fields"]["status"],
        431
    );
    assert!(app.formatter_requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shed_request_is_answered_503_at_once_and_logged_with_a_count() {
    let hanging = Behaviour::answering_after(Duration::from_secs(10));
    let app = app(hanging, &[("MAX_CONCURRENT_REQUESTS", "1")]).await;
    let hello = app.hello.url();
    let in_flight =
        tokio::spawn(async move { reqwest::get(format!("{hello}/sayHello/first")).await });
    // The first request holds the only slot once it reached the formatter.
    eventually("the first request to reach the formatter", || {
        !app.formatter_requests().is_empty()
    })
    .await;
    let response = app.say_hello(&[]).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.text().await.unwrap(), "server busy, retry later\n");
    let shed = app
        .hello
        .log_line("shed line", |line| {
            serde_json::from_str::<Value>(line).is_ok_and(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("request shed"))
            })
        })
        .await;
    let shed: Value = serde_json::from_str(&shed).expect("a JSON line");
    assert_eq!(shed["fields"]["shed_total"], 1);
    assert_eq!(shed["fields"]["status"], 503);
    in_flight.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn works_normally_and_warns_once_when_no_collector_is_reachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let closed = format!("http://{closed}");
    let mut app = TestApp::builder()
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &closed)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        // One span an export, so the outage spans many failed exports.
        .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1")
        .start()
        .await;
    for _ in 0..5 {
        app.say_hello_ok(&[]).await;
    }
    app.hello
        .log_line("the export warning", |l| l.contains("span export failing"))
        .await;
    app.hello.terminate();
    assert!(
        app.hello
            .wait_for_exit(Duration::from_secs(10))
            .await
            .is_some()
    );
    let logs = app.hello.logs();
    let warnings = logs
        .iter()
        .filter(|l| l.contains("span export failing"))
        .count();
    let shutdown = logs
        .iter()
        .find(|l| l.contains("the collector was unreachable"))
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or_else(|| panic!("no shutdown line: {logs:#?}"));
    assert_eq!(shutdown["fields"]["lost_spans"], 10, "{shutdown}");
    assert_eq!(shutdown["fields"]["failed_exports"], 10, "{shutdown}");
    assert_eq!(
        warnings, 1,
        "one warning for the outage, not one for each of its failed exports: {logs:#?}"
    );
    assert!(
        !logs.iter().any(|l| l.contains("\"level\":\"ERROR\"")),
        "{logs:#?}"
    );
}
