//! hello-svc with the OpenTelemetry Python and JS SDKs on either side: one
//! trace forms and the baggage arrives. The peers are the SDKs' own W3C
//! propagators (`tests/interop/`), installed by `scripts/interop-deps.sh`.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use test_harness::{TestApp, otlp_receiver::Transport};
use tests::interop_peer::installed_peers;

const NETSCAPE: &str = "Mozilla/4.0 (compatible; Netscape)";

#[tokio::test(flavor = "multi_thread")]
async fn a_python_or_node_caller_s_trace_and_baggage_continue_through_hello() {
    let peers = installed_peers("the interop caller test");
    let app = TestApp::builder()
        .exporting_over(Transport::HttpProtobuf)
        .start()
        .await;

    for peer in peers {
        let caller = peer.inject(&[("tenant", "blue"), ("note", "two words")]);
        let mut headers = vec![("user-agent", "curl/8.5.0")];
        headers.extend(caller.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        app.say_hello_ok(&headers).await;

        let spans = app.trace(&caller.trace_id, 2).await;
        let server = spans
            .iter()
            .find(|s| s.kind == SpanKind::Server)
            .unwrap_or_else(|| panic!("{}: no SERVER span in its trace", peer.name));
        assert_eq!(server.parent_span_id, caller.span_id, "{}", peer.name);

        let sent = app.last_formatter_request();
        let baggage = sent.header("baggage").unwrap_or_default();
        let mut members: Vec<&str> = baggage.split(',').collect();
        members.sort_unstable();
        // opentelemetry-python writes a space as `+` (a form encoding W3C
        // Baggage does not define); a spec-correct reader keeps the `+`.
        let note = match peer.name {
            "python" => "note=two+words",
            _ => "note=two%20words",
        };
        assert_eq!(
            members,
            [note, "tenant=blue", "user-agent=curl/8.5.0"],
            "{}",
            peer.name
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_or_node_callee_reads_hello_s_client_span_and_baggage() {
    let peers = installed_peers("the interop callee test");
    let app = TestApp::builder()
        .exporting_over(Transport::Grpc)
        .start()
        .await;
    let trace_id = app
        .say_hello_ok(&[("user-agent", NETSCAPE), ("baggage", "tenant=blue")])
        .await;
    let spans = app.trace(&trace_id, 2).await;
    let client = spans.iter().find(|s| s.kind == SpanKind::Client).unwrap();
    let sent = app.last_formatter_request();

    for peer in peers {
        let read = peer.extract(&sent.headers);
        assert_eq!(
            read.trace_id.as_deref(),
            Some(trace_id.as_str()),
            "{}",
            peer.name
        );
        assert_eq!(
            read.span_id.as_deref(),
            Some(client.span_id.as_str()),
            "{}",
            peer.name
        );
        assert!(read.sampled, "{}", peer.name);
        assert_eq!(read.baggage["user-agent"], NETSCAPE, "{}", peer.name);
        assert_eq!(read.baggage["tenant"], "blue", "{}", peer.name);
    }
}
