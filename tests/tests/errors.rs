//! Failures of the formatter reach the caller as short text/plain errors
//! with the right status, and the spans say so.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use e2e::{
    fake_formatter::{Behaviour, FakeFormatter},
    otlp_receiver::{OtlpReceiver, Transport},
    service_process::{ServiceProcess, spawn_hello},
};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode as SpanStatus};

const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";

fn spawn_hello_with_timeout(
    formatter_url: &str,
    receiver: &OtlpReceiver,
    timeout_ms: &str,
) -> ServiceProcess {
    spawn_hello(
        formatter_url,
        Some(receiver),
        &[("FORMATTER_TIMEOUT_MS", timeout_ms)],
    )
}

/// Sends `/sayHello/Brian` in trace [`TRACE_ID`]; returns status, content
/// type and body.
async fn say_hello(hello: &ServiceProcess) -> (u16, String, String) {
    let response = reqwest::Client::new()
        .get(format!("{}/sayHello/Brian", hello.url()))
        .header("traceparent", format!("00-{TRACE_ID}-a2fb4a1d1a96d312-01"))
        .send()
        .await
        .unwrap();
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

#[tokio::test(flavor = "multi_thread")]
async fn returns_502_when_formatter_is_down() {
    let receiver = OtlpReceiver::start(Transport::Grpc).await.unwrap();
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let hello = spawn_hello_with_timeout(&format!("http://{closed}"), &receiver, "2000");

    let (status, content_type, body) = say_hello(&hello).await;
    assert_eq!(status, 502);
    assert_eq!(content_type, "text/plain; charset=utf-8");
    assert_eq!(
        body, "formatter unavailable\n",
        "no internal error chain leaks"
    );
    assert_spans_marked_error(&receiver, "formatter_unreachable", 502).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn returns_504_within_the_timeout_when_formatter_is_slow() {
    let receiver = OtlpReceiver::start(Transport::Grpc).await.unwrap();
    let formatter = FakeFormatter::start(Behaviour {
        delay: Duration::from_secs(10),
        ..Behaviour::default()
    })
    .await;
    let hello = spawn_hello_with_timeout(&formatter.url(), &receiver, "300");

    let started = Instant::now();
    let (status, _, body) = say_hello(&hello).await;
    let elapsed = started.elapsed();
    assert_eq!(status, 504);
    assert_eq!(body, "formatter timed out\n");
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(1300),
        "answered after {elapsed:?}, timeout 300 ms"
    );
    assert_spans_marked_error(&receiver, "timeout", 504).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn returns_502_naming_the_status_when_formatter_fails() {
    let receiver = OtlpReceiver::start(Transport::Grpc).await.unwrap();
    let formatter = FakeFormatter::start(Behaviour {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        ..Behaviour::default()
    })
    .await;
    let hello = spawn_hello_with_timeout(&formatter.url(), &receiver, "2000");

    let (status, content_type, body) = say_hello(&hello).await;
    assert_eq!(status, 502);
    assert_eq!(content_type, "text/plain; charset=utf-8");
    assert_eq!(body, "formatter answered 500 Internal Server Error\n");
    assert_spans_marked_error(&receiver, "formatter_status", 502).await;
    let spans = receiver.trace(TRACE_ID);
    let client = spans.iter().find(|s| s.kind == SpanKind::Client).unwrap();
    assert_eq!(client.int_attr("http.response.status_code"), Some(500));
}

#[tokio::test(flavor = "multi_thread")]
async fn works_normally_and_warns_once_when_no_collector_is_reachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let formatter = FakeFormatter::start(Behaviour::default()).await;
    let hello = ServiceProcess::spawn(
        "hello-svc",
        &[
            ("FORMATTER_URL", &formatter.url()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{closed}")),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ],
    );
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let response = client
            .get(format!("{}/sayHello/Brian", hello.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        // Longer than the batch delay, so each request is its own export.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let logs = hello.logs();
    let warnings: Vec<_> = logs
        .iter()
        .filter(|l| l.contains("span export failing"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning per outage, not per batch: {logs:#?}"
    );
    assert!(
        !logs.iter().any(|l| l.contains("\"level\":\"ERROR\"")),
        "{logs:#?}"
    );
}
