//! SIGTERM, as Kubernetes sends it, lets every request already accepted
//! finish and flushes their spans before the process exits.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use test_harness::{
    Formatter, TestApp, eventually, fake_formatter::Behaviour, otlp_receiver::Transport,
};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_completes_every_accepted_request_and_exports_its_spans() {
    // No scheduled export during the test: only the shutdown flush can
    // deliver the spans.
    let mut app = TestApp::builder()
        .exporting_over(Transport::Grpc)
        .formatter(Formatter::Fake(Behaviour::answering_after(
            Duration::from_millis(500),
        )))
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .start()
        .await;

    let client = reqwest::Client::new();
    let in_flight: Vec<_> = (0..30)
        .map(|i| {
            let request = client
                .get(format!("{}/sayHello/Brian", app.hello.url()))
                .header("traceparent", format!("00-{i:032x}-00000000000000aa-01"));
            tokio::spawn(async move {
                let response = request.send().await?;
                Ok::<_, reqwest::Error>((response.status().as_u16(), response.text().await?))
            })
        })
        .collect();
    // Every request has been accepted and is in the formatter when the
    // signal arrives.
    eventually("all 30 requests to reach the formatter", || {
        app.formatter_requests().len() >= 30
    })
    .await;
    assert_eq!(app.formatter_requests().len(), 30);
    app.hello.terminate();

    for request in in_flight {
        let (status, body) = request.await.unwrap().expect("answered, not dropped");
        assert_eq!((status, body.as_str()), (200, "fake greeting\n"));
    }
    let exit = app.hello.wait_for_exit(Duration::from_secs(10)).await;
    assert!(
        exit.is_some_and(|s| s.success()),
        "clean exit, got {exit:?}"
    );
    let servers: Vec<_> = app
        .receiver()
        .spans()
        .into_iter()
        .filter(|s| s.kind == SpanKind::Server)
        .collect();
    assert_eq!(
        servers.len(),
        30,
        "every accepted request's span was flushed"
    );
}
