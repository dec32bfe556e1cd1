//! Spans reach a collector over TLS, on both OTLP transports, through the
//! real binaries: a collector whose certificate a throwaway CA signed, and
//! one that also requires a client certificate. When they cannot, requests
//! are still answered and the log line names the cause.

use test_harness::{
    Formatter, TestApp,
    otlp_receiver::{OtlpReceiver, Transport},
    throwaway_pki::ThrowawayPki,
};

const TRANSPORTS: [Transport; 2] = [Transport::HttpProtobuf, Transport::Grpc];

/// hello-svc and the real formatter-svc, exporting over `transport` to a
/// TLS collector serving with `collector`, with `env` set in both.
async fn app(
    transport: Transport,
    collector: rustls::ServerConfig,
    env: &[(&str, &str)],
) -> TestApp {
    env.iter()
        .fold(
            TestApp::builder()
                .exporting_over_tls(transport, collector)
                .formatter(Formatter::Real),
            |builder, (name, value)| builder.env(name, value),
        )
        .start()
        .await
}

/// Waits for hello-svc's one outage line, and returns its `error`.
async fn export_failure(app: &TestApp) -> String {
    let line = app
        .hello
        .log_line("the export failure", |line| {
            line.contains("span export failing")
        })
        .await;
    let line: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    line["fields"]["error"]
        .as_str()
        .expect("the line has an error field")
        .to_owned()
}

#[tokio::test]
async fn with_the_collectors_ca_trusted_every_span_arrives_over_both_transports() {
    for transport in TRANSPORTS {
        let pki = ThrowawayPki::new("collector CA");
        let ca = pki.ca_file();
        let app = app(
            transport,
            pki.server_config(false),
            &[("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca)],
        )
        .await;
        let trace_id = app.say_hello_ok(&[]).await;
        let spans = app.trace(&trace_id, 3).await;
        assert_eq!(
            spans.len(),
            3,
            "{transport:?}: hello's two spans and the formatter's: {spans:#?}"
        );
        assert!(app.receiver().endpoint().starts_with("https://"));
        assert_eq!(app.receiver().failed_handshakes(), 0, "{transport:?}");
    }
}

#[tokio::test]
async fn an_untrusted_collector_is_named_in_the_log_and_requests_are_still_answered() {
    let other = ThrowawayPki::new("some other CA");
    let other_ca = other.ca_file();
    // Trusting another CA's file, and trusting the system's CAs.
    let trusts: [&[(&str, &str)]; 2] = [&[("OTEL_EXPORTER_OTLP_CERTIFICATE", &other_ca)], &[]];
    for (transport, trust) in TRANSPORTS
        .into_iter()
        .flat_map(|t| trusts.map(|trust| (t, trust)))
    {
        let collector = ThrowawayPki::new("collector CA");
        let app = app(transport, collector.server_config(false), trust).await;
        app.say_hello_ok(&[]).await;
        assert_eq!(
            export_failure(&app).await,
            "the collector's certificate is not trusted (unknown issuer)",
            "{transport:?} {trust:?}"
        );
        app.say_hello_ok(&[]).await;
        assert!(app.receiver().spans().is_empty(), "{transport:?}");
        assert!(app.receiver().failed_handshakes() > 0, "{transport:?}");
    }
}

#[tokio::test]
async fn a_collector_requiring_a_client_certificate_gets_the_spans_when_the_pair_is_set() {
    for transport in TRANSPORTS {
        let pki = ThrowawayPki::new("collector CA");
        let (ca, certificate, key) = (
            pki.ca_file(),
            pki.client_certificate_file(),
            pki.client_key_file(),
        );
        let app = app(
            transport,
            pki.server_config(true),
            &[
                ("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca),
                ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &certificate),
                ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", &key),
            ],
        )
        .await;
        let trace_id = app.say_hello_ok(&[]).await;
        assert_eq!(app.trace(&trace_id, 3).await.len(), 3, "{transport:?}");
        assert_eq!(app.receiver().failed_handshakes(), 0, "{transport:?}");
    }
}

#[tokio::test]
async fn without_a_client_certificate_the_log_says_the_collector_refused_the_handshake() {
    for transport in TRANSPORTS {
        let pki = ThrowawayPki::new("collector CA");
        let ca = pki.ca_file();
        let app = app(
            transport,
            pki.server_config(true),
            &[("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca)],
        )
        .await;
        app.say_hello_ok(&[]).await;
        assert_eq!(
            export_failure(&app).await,
            "the collector refused the TLS handshake: it requires a client certificate",
            "{transport:?}"
        );
        assert!(app.receiver().spans().is_empty(), "{transport:?}");
    }
}

#[tokio::test]
async fn a_grpc_endpoint_without_a_scheme_is_tls_unless_insecure_says_otherwise() {
    let pki = ThrowawayPki::new("collector CA");
    let ca = pki.ca_file();
    let tls = OtlpReceiver::start_tls(Transport::Grpc, pki.server_config(false))
        .await
        .expect("the receiver binds");
    let plain = OtlpReceiver::start(Transport::Grpc)
        .await
        .expect("the receiver binds");
    let tls_address = tls.endpoint().replace("https://", "");
    let plain_address = plain.endpoint().replace("http://", "");
    let cases = [
        (
            &tls,
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", tls_address.as_str()),
                ("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca),
            ],
        ),
        (
            &plain,
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", plain_address.as_str()),
                ("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true"),
            ],
        ),
    ];
    for (receiver, env) in cases {
        let app = env
            .iter()
            .fold(
                TestApp::builder()
                    .env("OTEL_TRACES_EXPORTER", "otlp")
                    .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                |builder, (name, value)| builder.env(name, value),
            )
            .start()
            .await;
        let trace_id = app.say_hello_ok(&[]).await;
        let spans = receiver.wait_for_trace(&trace_id, 2).await;
        assert_eq!(
            spans.len(),
            2,
            "hello's SERVER and CLIENT spans, {env:?}: {spans:#?}"
        );
    }
}
