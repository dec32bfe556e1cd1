//! What the services write to their logs, and documented knobs that must
//! work end to end.

use test_harness::{Formatter, TestApp, otlp_receiver::Transport, service_process::ServiceProcess};

#[tokio::test(flavor = "multi_thread")]
async fn the_formatter_logs_request_headers_but_never_a_credential() {
    let formatter =
        ServiceProcess::spawn("formatter-svc", &[("OTEL_TRACES_EXPORTER", "none")]).await;
    let response = reqwest::Client::new()
        .get(format!("{}/formatGreeting?name=Brian", formatter.url()))
        .header("authorization", "Bearer s3cr3t-bearer")
        .header("cookie", "session=s3cr3t-cookie")
        .header("x-api-key", "s3cr3t-key")
        .header("baggage", "user-agent=curl")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let line = formatter
        .log_line("header line", |l| l.contains("incoming request headers"))
        .await;
    // An object a log pipeline can query, not JSON inside a string.
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    let headers = &line["fields"]["headers"];
    assert_eq!(headers["baggage"], "user-agent=curl", "{line}");
    assert_eq!(headers["authorization"], "[redacted]", "{line}");
    assert_eq!(headers["x-api-key"], "[redacted]", "{line}");
    let logs = formatter.logs();
    assert!(
        !logs.iter().any(|l| l.contains("s3cr3t")),
        "a credential reached the log: {logs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_compressed_export_works_over_both_protocols() {
    for transport in [Transport::Grpc, Transport::HttpProtobuf] {
        let app = TestApp::builder()
            .exporting_over(transport)
            .formatter(Formatter::Real)
            .env("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
            .start()
            .await;
        let trace = app.say_hello_ok(&[]).await;
        assert_eq!(app.trace(&trace, 3).await.len(), 3, "{transport:?}");
        assert!(
            app.receiver().gzipped_requests() > 0,
            "{transport:?}: the export bodies arrived gzip-compressed"
        );
    }
}
