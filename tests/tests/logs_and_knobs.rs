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

#[tokio::test(flavor = "multi_thread")]
async fn under_concurrent_requests_each_gets_its_log_lines_whole_and_in_order() {
    const REQUESTS: usize = 64;
    let formatter =
        ServiceProcess::spawn("formatter-svc", &[("OTEL_TRACES_EXPORTER", "none")]).await;
    let client = reqwest::Client::new();
    let requests: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let request = client
                .get(format!("{}/formatGreeting?name=n{i}", formatter.url()))
                .header(
                    "traceparent",
                    format!("00-{:032x}-{:016x}-01", i + 1, i + 1),
                );
            tokio::spawn(async move { request.send().await.map(|r| r.status()) })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap().unwrap(), 200);
    }
    test_harness::eventually("two lines a request", || {
        formatter
            .logs()
            .iter()
            .filter(|l| l.contains("\"trace_id\""))
            .count()
            >= 2 * REQUESTS
    })
    .await;

    // Every line is one whole JSON object; each request's two lines come in
    // the order they happen: the headers, then the access line.
    let mut by_trace: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for line in formatter.logs() {
        let line: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not one JSON line ({e}): {line}"));
        if let Some(trace) = line["trace_id"].as_str() {
            let message = line["fields"]["message"].as_str().unwrap_or_default();
            by_trace
                .entry(trace.to_owned())
                .or_default()
                .push(message.to_owned());
        }
    }
    assert_eq!(by_trace.len(), REQUESTS);
    for (trace, messages) in by_trace {
        assert_eq!(
            messages,
            ["incoming request headers", "request"],
            "trace {trace}"
        );
    }
}
