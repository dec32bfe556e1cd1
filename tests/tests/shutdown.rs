//! SIGTERM, as Kubernetes sends it, lets every request already accepted
//! finish and flushes their spans before the process exits.

use std::time::{Duration, Instant};

use e2e::{
    fake_formatter::{Behaviour, FakeFormatter},
    otlp_receiver::{OtlpReceiver, Transport},
    service_process::spawn_hello,
};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_completes_every_accepted_request_and_exports_its_spans() {
    let receiver = OtlpReceiver::start(Transport::Grpc).await.unwrap();
    let formatter = FakeFormatter::start(Behaviour {
        delay: Duration::from_millis(500),
        ..Behaviour::default()
    })
    .await;
    // No scheduled export during the test: only the shutdown flush can
    // deliver the spans.
    let mut hello = spawn_hello(
        &formatter.url(),
        Some(&receiver),
        &[("OTEL_BSP_SCHEDULE_DELAY", "600000")],
    );

    let client = reqwest::Client::new();
    let in_flight: Vec<_> = (0..30)
        .map(|i| {
            let request = client
                .get(format!("{}/sayHello/Brian", hello.url()))
                .header("traceparent", format!("00-{i:032x}-00000000000000aa-01"));
            tokio::spawn(async move {
                let response = request.send().await?;
                Ok::<_, reqwest::Error>((response.status().as_u16(), response.text().await?))
            })
        })
        .collect();
    // Every request has been accepted and is in the formatter when the
    // signal arrives.
    let deadline = Instant::now() + Duration::from_secs(5);
    while formatter.requests().len() < 30 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(formatter.requests().len(), 30);
    hello.terminate();

    for request in in_flight {
        let (status, body) = request.await.unwrap().expect("answered, not dropped");
        assert_eq!((status, body.as_str()), (200, "fake greeting\n"));
    }
    let exit = tokio::task::spawn_blocking(move || hello.wait_for_exit(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(
        exit.is_some_and(|s| s.success()),
        "clean exit, got {exit:?}"
    );
    let servers: Vec<_> = receiver
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
