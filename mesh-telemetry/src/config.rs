//! Command-line and environment configuration shared by both services.
//!
//! Every OpenTelemetry setting uses the variable name from the OpenTelemetry
//! specification, so the services behave like any other OTel-instrumented
//! workload: operators set `OTEL_*` in a Deployment and nothing else.

use std::path::PathBuf;

use clap::{Args, ValueEnum, builder::BoolishValueParser};

use mesh_propagation::PropagatorKind;

/// Telemetry settings, flattened into each service's own `clap` parser.
#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// Service name reported on every span (the resource's `service.name`).
    /// Defaults to the binary's name.
    #[arg(long, env = "OTEL_SERVICE_NAME")]
    pub otel_service_name: Option<String>,

    /// Turn the tracing SDK off: nothing is recorded or exported, but incoming
    /// trace context is still passed on, so the mesh's trace stays whole.
    #[arg(long, env = "OTEL_SDK_DISABLED", default_value = "false", value_parser = BoolishValueParser::new())]
    pub otel_sdk_disabled: bool,

    /// Where finished spans go.
    #[arg(long, env = "OTEL_TRACES_EXPORTER", value_enum, default_value_t = TracesExporter::Otlp)]
    pub otel_traces_exporter: TracesExporter,

    /// Base URL of the OTLP receiver (Jaeger accepts OTLP natively). For
    /// `http/protobuf`, `/v1/traces` is appended, as the specification says.
    /// Defaults to http://localhost:4318 (http/protobuf) or
    /// http://localhost:4317 (grpc).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_exporter_otlp_endpoint: Option<String>,

    /// Full URL for traces only, used exactly as given. Wins over
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")]
    pub otel_exporter_otlp_traces_endpoint: Option<String>,

    /// OTLP transport.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL", value_enum, default_value_t = OtlpProtocol::HttpProtobuf)]
    pub otel_exporter_otlp_protocol: OtlpProtocol,

    /// Headers sent with every export, as `key=value` pairs separated by
    /// commas, values percent-encoded (for example an
    /// `authorization=Bearer%20…` a collector needs).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_HEADERS", value_parser = parse_headers)]
    pub otel_exporter_otlp_headers: Option<OtlpHeaders>,

    /// Headers for trace exports only; wins over `OTEL_EXPORTER_OTLP_HEADERS`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_HEADERS", value_parser = parse_headers)]
    pub otel_exporter_otlp_traces_headers: Option<OtlpHeaders>,

    /// How long one export may take, retries included, in milliseconds.
    /// Defaults to 10000.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TIMEOUT", value_parser = clap::value_parser!(u64).range(1..))]
    pub otel_exporter_otlp_timeout: Option<u64>,

    /// The timeout for trace exports only; wins over
    /// `OTEL_EXPORTER_OTLP_TIMEOUT`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", value_parser = clap::value_parser!(u64).range(1..))]
    pub otel_exporter_otlp_traces_timeout: Option<u64>,

    /// Compression of export bodies. Defaults to none.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_COMPRESSION", value_enum)]
    pub otel_exporter_otlp_compression: Option<OtlpCompression>,

    /// Compression for trace exports only; wins over
    /// `OTEL_EXPORTER_OTLP_COMPRESSION`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", value_enum)]
    pub otel_exporter_otlp_traces_compression: Option<OtlpCompression>,

    /// PEM file of the CA certificates trusted to sign the collector's
    /// certificate, for an `https` endpoint. When set, only these are
    /// trusted; unset, the system's CA certificates are.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_CERTIFICATE")]
    pub otel_exporter_otlp_certificate: Option<PathBuf>,

    /// The CA file for trace exports only; wins over
    /// `OTEL_EXPORTER_OTLP_CERTIFICATE`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE")]
    pub otel_exporter_otlp_traces_certificate: Option<PathBuf>,

    /// PEM file of the client certificate (chain) presented to a collector
    /// that requires mutual TLS. Needs `OTEL_EXPORTER_OTLP_CLIENT_KEY`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")]
    pub otel_exporter_otlp_client_certificate: Option<PathBuf>,

    /// The client certificate for trace exports only; wins over
    /// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE")]
    pub otel_exporter_otlp_traces_client_certificate: Option<PathBuf>,

    /// PEM file of the private key of the client certificate.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_CLIENT_KEY")]
    pub otel_exporter_otlp_client_key: Option<PathBuf>,

    /// The client key for trace exports only; wins over
    /// `OTEL_EXPORTER_OTLP_CLIENT_KEY`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY")]
    pub otel_exporter_otlp_traces_client_key: Option<PathBuf>,

    /// For `grpc` only, and only for an endpoint without a scheme
    /// (`collector:4317`): `true` connects in plain text, `false` (the
    /// default) with TLS. An `http://` or `https://` endpoint says itself.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_INSECURE", value_parser = BoolishValueParser::new())]
    pub otel_exporter_otlp_insecure: Option<bool>,

    /// `OTEL_EXPORTER_OTLP_INSECURE` for trace exports only.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_INSECURE", value_parser = BoolishValueParser::new())]
    pub otel_exporter_otlp_traces_insecure: Option<bool>,

    /// Which traces are recorded. The parent-based samplers follow the
    /// caller's (for example Istio's) sampling decision.
    #[arg(long, env = "OTEL_TRACES_SAMPLER", value_enum, default_value_t = SamplerKind::ParentbasedAlwaysOn)]
    pub otel_traces_sampler: SamplerKind,

    /// Ratio for the `traceidratio` samplers, from 0 to 1.
    #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG", default_value_t = 1.0, value_parser = parse_ratio)]
    pub otel_traces_sampler_arg: f64,

    /// Context formats read from requests and written to outgoing calls,
    /// comma-separated: `tracecontext`, `baggage`, `b3`, `b3multi`, `none`.
    /// When several carry a valid trace context, the one listed LAST wins.
    /// `jaeger` is refused: see docs/propagation.md ("Why no `jaeger` propagator").
    #[arg(
        long,
        env = "OTEL_PROPAGATORS",
        value_delimiter = ',',
        value_parser = parse_propagator,
        default_value = "b3multi,tracecontext,baggage"
    )]
    pub otel_propagators: Vec<PropagatorKind>,

    /// Log line format. Defaults to `json` when stdout is not a terminal, and
    /// to `text` when it is. `RUST_LOG` filters what is logged.
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// Values of `OTEL_TRACES_EXPORTER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TracesExporter {
    /// OTLP, over the protocol in `OTEL_EXPORTER_OTLP_PROTOCOL`.
    Otlp,
    /// Pretty-printed spans on stdout, for debugging without a collector.
    Console,
    /// Spans are created (so ids propagate) but not exported.
    None,
}

/// Values of `OTEL_EXPORTER_OTLP_PROTOCOL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP/gRPC, Jaeger's port 4317.
    Grpc,
    /// OTLP/HTTP with protobuf bodies, Jaeger's port 4318.
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// Values of `OTEL_EXPORTER_OTLP_COMPRESSION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OtlpCompression {
    /// Bodies compressed with gzip.
    Gzip,
    /// Bodies sent as they are.
    None,
}

/// Parsed `OTEL_EXPORTER_OTLP_HEADERS`. Its `Debug` names the headers but
/// not their values, which are often credentials.
#[derive(Clone, Default)]
pub struct OtlpHeaders(pub(crate) http::HeaderMap);

impl std::fmt::Debug for OtlpHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// `key=value` pairs separated by commas, whitespace around each trimmed and
/// values percent-decoded (the OTLP exporter specification's format). A pair
/// that cannot become an HTTP header is refused, not skipped: a collector
/// that needs it would refuse every export.
fn parse_headers(value: &str) -> Result<OtlpHeaders, String> {
    let mut headers = http::HeaderMap::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(format!("`{pair}` is not key=value"));
        };
        let name = http::HeaderName::try_from(name.trim())
            .map_err(|_| format!("`{}` is not a header name", name.trim()))?;
        let value = percent_encoding::percent_decode_str(value.trim())
            .decode_utf8()
            .ok()
            .and_then(|value| http::HeaderValue::try_from(value.as_ref()).ok())
            .ok_or_else(|| format!("the value of `{name}` is not a valid header value"))?;
        headers.append(name, value);
    }
    Ok(OtlpHeaders(headers))
}

/// Values of `OTEL_TRACES_SAMPLER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SamplerKind {
    /// Record every trace.
    #[value(name = "always_on")]
    AlwaysOn,
    /// Record nothing.
    #[value(name = "always_off")]
    AlwaysOff,
    /// Record the share of traces given by `OTEL_TRACES_SAMPLER_ARG`.
    #[value(name = "traceidratio")]
    TraceIdRatio,
    /// Follow the caller's decision; record new traces.
    #[value(name = "parentbased_always_on")]
    ParentbasedAlwaysOn,
    /// Follow the caller's decision; drop new traces.
    #[value(name = "parentbased_always_off")]
    ParentbasedAlwaysOff,
    /// Follow the caller's decision; sample new traces by ratio.
    #[value(name = "parentbased_traceidratio")]
    ParentbasedTraceIdRatio,
}

/// Values of `LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object a line, for log collectors.
    Json,
    /// Human-readable lines.
    Text,
}

/// One `OTEL_PROPAGATORS` value. `jaeger` is a value the specification
/// knows, so it gets its own reason rather than clap's "invalid value".
fn parse_propagator(value: &str) -> Result<PropagatorKind, String> {
    if value.trim().eq_ignore_ascii_case("jaeger") {
        return Err(JAEGER_REFUSED.to_owned());
    }
    PropagatorKind::from_name(value.trim()).ok_or_else(|| {
        let known: Vec<_> = PropagatorKind::NAMES
            .iter()
            .map(|(_, name)| *name)
            .collect();
        format!("unknown propagator; known: {}", known.join(", "))
    })
}

/// Why `OTEL_PROPAGATORS=jaeger` is refused at start-up, and what to use.
pub(crate) const JAEGER_REFUSED: &str = "the Jaeger `uber-trace-id` format is not supported \
    (its OpenTelemetry propagator was deleted upstream); Jaeger and Istio read W3C \
    `traceparent`, so use `tracecontext`";

/// Parses `args` into `C` as its command line, ignoring the environment:
/// for tests, which must not see the developer's own `OTEL_*` or limit
/// variables. Only with the `test-support` feature.
#[cfg(any(test, feature = "test-support"))]
pub fn parse_ignoring_env<C: clap::Parser>(args: &[&str]) -> Result<C, clap::Error> {
    let command = C::command().mut_args(|arg| arg.env(None));
    let matches = command.try_get_matches_from(args)?;
    C::from_arg_matches(&matches)
}

fn parse_ratio(value: &str) -> Result<f64, String> {
    let ratio: f64 = value
        .parse()
        .map_err(|_| format!("`{value}` is not a number"))?;
    if (0.0..=1.0).contains(&ratio) {
        Ok(ratio)
    } else {
        Err(format!("{ratio} is not between 0 and 1"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `args` parsed as a service's command line would parse them, with
    /// none of the developer's own `OTEL_*` variables.
    pub(crate) fn parse(args: &[&str]) -> Result<TelemetryArgs, clap::Error> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            telemetry: TelemetryArgs,
        }
        let argv: Vec<&str> = std::iter::once("svc").chain(args.iter().copied()).collect();
        parse_ignoring_env::<Cli>(&argv).map(|cli| cli.telemetry)
    }

    #[test]
    fn defaults_follow_the_specification_and_istio() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.otel_propagators, mesh_propagation::DEFAULT_PROPAGATORS);
        assert_eq!(args.otel_traces_sampler, SamplerKind::ParentbasedAlwaysOn);
        assert_eq!(args.otel_exporter_otlp_protocol, OtlpProtocol::HttpProtobuf);
        assert!(!args.otel_sdk_disabled);
    }

    #[test]
    fn propagators_are_a_comma_separated_list() {
        let args = parse(&["--otel-propagators", "b3,tracecontext"]).unwrap();
        assert_eq!(
            args.otel_propagators,
            [PropagatorKind::B3, PropagatorKind::Tracecontext]
        );
    }

    #[test]
    fn jaeger_is_refused_with_the_reason_and_the_replacement() {
        let err = parse(&["--otel-propagators", "tracecontext,jaeger"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        let message = err.to_string();
        assert!(message.contains(JAEGER_REFUSED), "{message}");
        assert!(message.contains("use `tracecontext`"), "{message}");
    }

    #[test]
    fn an_unknown_propagator_lists_the_known_ones() {
        let err = parse(&["--otel-propagators", "xray"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("known: tracecontext, baggage, b3, b3multi, none"),
            "{err}"
        );
    }

    #[test]
    fn otlp_headers_are_trimmed_percent_decoded_and_named_without_values() {
        let args = parse(&[
            "--otel-exporter-otlp-headers",
            " api-key = s3cr%3Dt ,Authorization=Bearer%20abc,",
        ])
        .unwrap();
        let headers = args.otel_exporter_otlp_headers.unwrap();
        assert_eq!(headers.0["api-key"], "s3cr=t");
        assert_eq!(headers.0["authorization"], "Bearer abc");
        assert_eq!(format!("{headers:?}"), r#"["api-key", "authorization"]"#);
    }

    #[test]
    fn otlp_headers_that_cannot_be_sent_are_refused() {
        for (value, reason) in [
            ("api-key", "`api-key` is not key=value"),
            ("bad key=1", "`bad key` is not a header name"),
            ("k=%0A", "the value of `k` is not a valid header value"),
            ("k=%FF", "the value of `k` is not a valid header value"),
        ] {
            let err = parse(&["--otel-exporter-otlp-headers", value]).unwrap_err();
            assert!(err.to_string().contains(reason), "{value}: {err}");
        }
    }

    #[test]
    fn a_zero_timeout_and_an_unknown_compression_are_refused() {
        assert!(parse(&["--otel-exporter-otlp-timeout", "0"]).is_err());
        let err = parse(&["--otel-exporter-otlp-compression", "zstd"]).unwrap_err();
        assert!(err.to_string().contains("gzip"), "{err}");
    }

    #[test]
    fn rejects_unknown_values_with_the_choices() {
        let err = parse(&["--otel-traces-sampler", "sometimes"]).unwrap_err();
        assert!(err.to_string().contains("parentbased_always_on"), "{err}");
        let err = parse(&["--otel-traces-sampler-arg", "1.5"]).unwrap_err();
        assert!(err.to_string().contains("not between 0 and 1"), "{err}");
    }
}
