//! Configuration that cannot work is refused at start-up, by the real
//! binaries, with one line that says what is wrong and what to do.

use test_harness::service_process::run_to_exit;

/// Runs `binary` with `env`, and returns its one stderr line after checking
/// that it exited with the usage-error code and printed nothing else.
async fn refusal(binary: &str, env: &[(&str, &str)]) -> String {
    let output = run_to_exit(binary, &[], env).await;
    assert_eq!(output.status.code(), Some(2), "{binary} {env:?}");
    assert!(output.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8(output.stderr).expect("UTF-8");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with(&format!("{binary}: ")), "{stderr}");
    stderr
}

#[tokio::test]
async fn the_jaeger_propagator_is_refused_by_both_services_with_the_reason_and_the_replacement() {
    for binary in ["hello-svc", "formatter-svc"] {
        let line = refusal(
            binary,
            &[("OTEL_PROPAGATORS", "tracecontext,baggage,jaeger")],
        )
        .await;
        assert!(
            line.contains("`uber-trace-id` format is not supported"),
            "{line}"
        );
        assert!(line.contains("use `tracecontext`"), "{line}");
    }
}

#[tokio::test]
async fn an_unknown_propagator_is_refused_with_the_known_ones() {
    let line = refusal("hello-svc", &[("OTEL_PROPAGATORS", "xray")]).await;
    assert!(
        line.contains("known: tracecontext, baggage, b3, b3multi, none"),
        "{line}"
    );
}

#[tokio::test]
async fn help_still_prints_on_stdout_and_exits_zero() {
    let output = run_to_exit("formatter-svc", &["--help"], &[]).await;
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("OTEL_PROPAGATORS"));
}

#[tokio::test]
async fn tls_files_that_cannot_work_are_refused_by_both_services_naming_the_variable() {
    let pki = test_harness::throwaway_pki::ThrowawayPki::new("refusals");
    let junk = pki.dir().join("junk.pem");
    std::fs::write(&junk, "not PEM at all").expect("writable");
    let junk = junk.display().to_string();
    let (certificate, other_key) = (
        pki.client_certificate_file(),
        pki.dir().join("server-key.pem").display().to_string(),
    );
    let cases: [(&[(&str, &str)], String); 4] = [
        (
            &[("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem")],
            "OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read `/nonexistent/ca.pem`: \
             No such file or directory (os error 2)"
                .to_owned(),
        ),
        (
            &[("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", &junk)],
            format!(
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: `{junk}` holds no valid PEM certificate"
            ),
        ),
        (
            &[("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &certificate)],
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is set but OTEL_EXPORTER_OTLP_CLIENT_KEY \
             is not: mutual TLS needs both"
                .to_owned(),
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &certificate),
                ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &other_key),
            ],
            format!(
                "OTEL_EXPORTER_OTLP_CLIENT_KEY: the key in `{other_key}` cannot be used with \
                 the certificate in `{certificate}`: it is another certificate's key"
            ),
        ),
    ];
    for binary in ["hello-svc", "formatter-svc"] {
        for protocol in ["http/protobuf", "grpc"] {
            for (env, expected) in &cases {
                let mut env = env.to_vec();
                env.extend([
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
                    (
                        "OTEL_EXPORTER_OTLP_ENDPOINT",
                        "https://collector.invalid:4318",
                    ),
                ]);
                let line = refusal(binary, &env).await;
                assert_eq!(
                    line.trim_end(),
                    format!("{binary}: {expected}"),
                    "{protocol}"
                );
            }
        }
    }
}
