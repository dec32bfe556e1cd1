//! SIGTERM, as Kubernetes sends it, lets in-flight requests finish and
//! flushes their spans before the process exits.

use std::time::Duration;

use e2e::{
    fake_formatter::{Behaviour, FakeFormatter},
    otlp_receiver::{OtlpReceiver, Transport},
    service_process::ServiceProcess,
};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

const TRACE_ID: &str = "7a3c0ff3e0c14b5d9d2b1c0e8f6a4d21";

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_slow_request_completes_it_and_exports_its_spans() {
    let receiver = OtlpReceiver::start(Transport::Grpc).await.unwrap();
    let formatter = FakeFormatter::start(Behaviour {
        delay: Duration::from_millis(1000),
        ..Behaviour::default()
    })
    .await;
    let mut hello = ServiceProcess::spawn(
        "hello-svc",
        &[
            ("FORMATTER_URL", &formatter.url()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            // No scheduled export during the test: only the shutdown flush
            // can deliver the spans.
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ],
    );

    let url = format!("{}/sayHello/Brian", hello.url());
    let in_flight = tokio::spawn(async move {
        let response = reqwest::Client::new()
            .get(url)
            .header("traceparent", format!("00-{TRACE_ID}-a2fb4a1d1a96d312-01"))
            .send()
            .await
            .expect("the in-flight request is answered");
        (response.status().as_u16(), response.text().await.unwrap())
    });
    // Let the request reach the (slow) formatter, then stop hello.
    request_reaches(&formatter).await;
    hello.terminate();

    assert_eq!(
        in_flight.await.unwrap(),
        (200, "fake greeting\n".to_owned())
    );
    let exit = tokio::task::spawn_blocking(move || hello.wait_for_exit(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(
        exit.is_some_and(|status| status.success()),
        "clean exit, got {exit:?}"
    );

    let spans = receiver.trace(TRACE_ID);
    let kinds: Vec<_> = spans.iter().map(|s| s.kind).collect();
    assert!(
        kinds.contains(&SpanKind::Server) && kinds.contains(&SpanKind::Client),
        "both spans flushed before exit: {spans:#?}"
    );
}

/// Waits until the formatter has received the request.
async fn request_reaches(formatter: &FakeFormatter) {
    for _ in 0..200 {
        if !formatter.requests().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the request never reached the formatter");
}
