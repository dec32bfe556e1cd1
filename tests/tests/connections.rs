//! Slow and idle clients are closed, not served forever, open connections
//! are bounded, and what hyper refuses before any route is still logged and
//! traced: the connection limits of the real binary.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::Value;
use test_harness::{TestApp, otlp_receiver::Transport, service_process::ServiceProcess};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: formatter\r\n\r\n";

async fn formatter(env: &[(&str, &str)]) -> ServiceProcess {
    let mut env = env.to_vec();
    env.push(("OTEL_TRACES_EXPORTER", "none"));
    ServiceProcess::spawn("formatter-svc", &env).await
}

async fn connect(service: &ServiceProcess) -> TcpStream {
    TcpStream::connect(service.url().trim_start_matches("http://"))
        .await
        .expect("connects")
}

/// Reads until the server closes the connection (or resets it), and says
/// how long that took; panics if it is still open after `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut buffer = [0; 1024];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the connection is still open after {within:?}"),
        }
    }
}

/// Reads one response's head and returns its status line.
async fn response_status(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0; 1024];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await.expect("reads");
        assert!(read > 0, "closed before a response");
        received.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&received)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_closed_after_the_header_read_timeout() {
    let service = formatter(&[("HEADER_READ_TIMEOUT_MS", "300")]).await;
    let mut slow = connect(&service).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: formatter\r\n")
        .await
        .unwrap();
    let took = closed_by_server(&mut slow, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let service = formatter(&[
        ("IDLE_TIMEOUT_MS", "300"),
        ("HEADER_READ_TIMEOUT_MS", "30000"),
    ])
    .await;
    let mut idle = connect(&service).await;
    idle.write_all(REQUEST).await.unwrap();
    assert_eq!(response_status(&mut idle).await, "HTTP/1.1 200 OK");
    let took = closed_by_server(&mut idle, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
}

#[tokio::test]
async fn open_connections_are_bounded_and_the_next_is_served_when_one_closes() {
    let service = formatter(&[("MAX_CONNECTIONS", "2"), ("IDLE_TIMEOUT_MS", "30000")]).await;
    let baseline = service.open_fds();
    let mut first = connect(&service).await;
    let mut second = connect(&service).await;
    let mut third = connect(&service).await;
    for stream in [&mut first, &mut second, &mut third] {
        stream.write_all(REQUEST).await.unwrap();
    }
    assert_eq!(response_status(&mut first).await, "HTTP/1.1 200 OK");
    assert_eq!(response_status(&mut second).await, "HTTP/1.1 200 OK");
    // Both permits are taken, so the accept loop waits: the third
    // connection sits in the kernel's backlog, not in the process.
    assert_eq!(service.open_fds(), baseline + 2, "two accepted sockets");

    drop(first);
    let answered = tokio::time::timeout(Duration::from_secs(5), response_status(&mut third)).await;
    assert_eq!(answered.as_deref(), Ok("HTTP/1.1 200 OK"));
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_hyper_refuses_itself_get_their_log_line_and_span() {
    let app = TestApp::builder()
        .exporting_over(Transport::HttpProtobuf)
        .start()
        .await;
    let many_headers: String = (0..150).map(|n| format!("x-h{n}: v\r\n")).collect();
    let long_uri = format!("/sayHello/{}", "a".repeat(70_000));
    let cases = [
        // Past hyper's 100 headers (and Envoy's default, 100, too).
        (
            format!("GET /sayHello/Brian HTTP/1.1\r\nhost: hello\r\n{many_headers}\r\n"),
            "HTTP/1.1 431 Request Header Fields Too Large",
            431,
            "message head is too large",
        ),
        (
            "GET /say Hello/Brian HTTP/1.1\r\nhost: hello\r\n\r\n".to_owned(),
            "HTTP/1.1 400 Bad Request",
            400,
            "invalid HTTP version parsed",
        ),
        (
            format!("GET {long_uri} HTTP/1.1\r\nhost: hello\r\n\r\n"),
            "HTTP/1.1 414 URI Too Long",
            414,
            "URI too long",
        ),
    ];
    for (request, status_line, status, reason) in cases {
        let mut stream = connect(&app.hello).await;
        stream.write_all(request.as_bytes()).await.unwrap();
        assert_eq!(response_status(&mut stream).await, status_line);

        let line = app
            .hello
            .log_line(&format!("{status} request line"), |line| {
                serde_json::from_str::<Value>(line).is_ok_and(|l| {
                    l["fields"]["message"] == "request" && l["fields"]["status"] == status
                })
            })
            .await;
        let line: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(line["fields"]["reason"], reason, "{line}");
        assert_eq!(line["fields"]["rejected_by"], "http parser", "{line}");
        let trace_id = line["trace_id"].as_str().expect("the line names its trace");

        let spans = app.receiver().wait_for_trace(trace_id, 1).await;
        let span = &spans[0];
        assert_eq!(span.name, "HTTP");
        assert_eq!(span.kind, SpanKind::Server);
        assert_eq!(span.parent_span_id, "", "no context could be read: a root");
        assert_eq!(span.attr("http.request.method"), Some("_OTHER"));
        assert_eq!(
            span.int_attr("http.response.status_code"),
            Some(i64::from(status))
        );
    }
}
