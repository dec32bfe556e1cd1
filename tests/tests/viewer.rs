//! `trace-viewer`, the tree `make run` prints when no collector listens:
//! the real services export to the real viewer binary, and its output is
//! read as a person would read it.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use prost::Message;
use test_harness::{Formatter, TestApp, service_process::binary_path};

/// The viewer on a free port, its stdout lines arriving on a channel.
struct ViewerProcess {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
}

impl ViewerProcess {
    /// Started with `args`, and a 200 ms quiet time unless they set one.
    fn start(args: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let mut child = Command::new(binary_path("trace-viewer"))
            .env_clear()
            .args(["--listen", &address])
            .args(args)
            .args(if args.contains(&"--quiet-ms") {
                &[][..]
            } else {
                &["--quiet-ms", "200"][..]
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the viewer starts");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let viewer = Self {
            child,
            url: format!("http://{address}"),
            lines,
        };
        viewer.wait_for(|line| line.contains("receiving OTLP/HTTP"));
        viewer
    }

    /// Lines up to and including the first that `done` accepts, and what
    /// follows it within 300 ms; panics after 10 s.
    fn wait_for(&self, done: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the viewer never printed it; it printed {seen:#?}"));
            let found = done(&line);
            seen.push(line);
            if found {
                while let Ok(more) = self.lines.recv_timeout(Duration::from_millis(300)) {
                    seen.push(more);
                }
                return seen;
            }
        }
    }
}

impl Drop for ViewerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_through_the_real_services_prints_as_a_nested_tree_with_its_baggage() {
    let viewer = ViewerProcess::start(&[]);
    let app = TestApp::builder()
        .formatter(Formatter::Real)
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &viewer.url)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .start()
        .await;
    let netscape = "Mozilla/4.0 (compatible; Netscape)";
    let trace = app.say_hello_ok(&[("user-agent", netscape)]).await;

    let printed = viewer.wait_for(|line| line.starts_with(&format!("trace {trace}")));
    let at = printed
        .iter()
        .position(|l| l.starts_with(&format!("trace {trace}")))
        .unwrap();
    let tree = &printed[at..at + 4];
    assert!(tree[0].contains("GET /sayHello/{name} → 200"), "{tree:#?}");
    assert!(tree[1].starts_with("└─ hello-svc"), "{tree:#?}");
    assert!(
        tree[1].contains("SERVER") && tree[1].contains(netscape),
        "{tree:#?}"
    );
    assert!(tree[2].starts_with("   └─ hello-svc"), "{tree:#?}");
    assert!(
        tree[2].contains("CLIENT") && tree[2].contains("url.full="),
        "{tree:#?}"
    );
    assert!(tree[3].starts_with("      └─ formatter-svc"), "{tree:#?}");
    assert!(
        tree[3].contains(&format!("baggage user-agent={netscape}")),
        "the baggage shows on the formatter's span: {tree:#?}"
    );
}

fn span(trace: u8, id: u8, parent: Option<u8>) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: format!("span {id}"),
        ..Span::default()
    }
}

fn export(spans: Vec<Span>) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_oversized_bodies_are_refused_and_an_orphan_shows_as_a_root() {
    let viewer = ViewerProcess::start(&["--max-body-bytes", "4096"]);
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        client
            .post(format!("{}/v1/traces", viewer.url))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
    };

    let malformed = post(b"\xff\xff not protobuf".to_vec()).await.unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(malformed.text().await.unwrap(), "undecodable OTLP body\n");

    let oversized = post(vec![0; 8192]).await.unwrap();
    assert_eq!(oversized.status(), 413);

    // A child whose parent never arrives, and an ordinary pair.
    let ok = post(export(vec![
        span(7, 2, Some(9)),
        span(8, 1, None),
        span(8, 3, Some(1)),
    ]))
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    let printed = viewer.wait_for(|line| line.contains("never arrived"));
    let orphan = printed
        .iter()
        .position(|l| l.starts_with(&format!("trace {}", "07".repeat(16))))
        .expect("the orphan's trace is printed");
    assert!(printed[orphan + 1].starts_with("└─ ") && printed[orphan + 1].contains("span 2"));
    assert!(printed[orphan + 2].contains(&format!("its parent {} never arrived", "09".repeat(8))));
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_traces_print_marked_and_sigterm_prints_what_is_left_with_the_counts() {
    // Traces stay pending for a minute: only the SIGTERM path prints them.
    let mut viewer = ViewerProcess::start(&["--quiet-ms", "60000"]);
    let mut twin = span(5, 1, Some(1));
    twin.name = "twin".to_owned();
    let ok = reqwest::Client::new()
        .post(format!("{}/v1/traces", viewer.url))
        .header("content-type", "application/x-protobuf")
        // The span that once overflowed the viewer's stack: a root's twin
        // naming itself as parent; and two spans that are each other's parent.
        .body(export(vec![
            span(5, 1, None),
            twin,
            span(6, 0xa, Some(0xb)),
            span(6, 0xb, Some(0xa)),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    let terminated = Command::new("kill")
        .args(["-TERM", &viewer.child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let printed = viewer.wait_for(|line| line.contains("traces shown"));
    let drawn = printed.iter().filter(|l| l.contains("└─ ")).count();
    assert_eq!(drawn, 4, "every span is drawn once: {printed:#?}");
    assert!(
        printed.iter().any(|l| l.contains(&format!(
            "an earlier span has the same id {}",
            "01".repeat(8)
        ))),
        "{printed:#?}"
    );
    assert!(
        printed
            .iter()
            .any(|l| l.contains("its parents form a cycle through")),
        "{printed:#?}"
    );
    assert_eq!(
        printed.last().unwrap(),
        "trace-viewer: 2 traces shown, 0 spans dropped (over the per-trace limit)"
    );
    let status = viewer.child.wait().unwrap();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
}
