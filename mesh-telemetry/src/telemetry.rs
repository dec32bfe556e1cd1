//! Building and installing the tracer provider and the `tracing` subscriber.
//!
//! [`init`] installs; [`tracer_provider`] and [`subscriber`] only build, so
//! each piece reads on its own (as in zero2prod), and the no-SDK path can
//! build the same subscriber without the OpenTelemetry layer.

use opentelemetry::{
    InstrumentationScope, KeyValue,
    trace::{TracerProvider as _, noop::NoopTracer},
};
use opentelemetry_otlp::{
    Compression, ExporterBuildError, RetryPolicy, WithExportConfig, WithTonicConfig,
    tonic_types::metadata::MetadataMap,
};
use opentelemetry_sdk::{
    Resource,
    trace::{BatchSpanProcessor, SdkTracerProvider},
};
use std::io::IsTerminal;
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tracing::{Level, Subscriber, level_filters::LevelFilter};
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::{FilterExt, Targets, filter_fn},
    layer::{Filter, SubscriberExt},
    registry::LookupSpan,
    util::{SubscriberInitExt, TryInitError},
};

use crate::{
    collector_connection::LastFailure,
    collector_tls::{self, TlsError, TlsFiles},
    config::{LogFormat, OtlpCompression, OtlpProtocol, TelemetryArgs, TracesExporter},
    export_health::{ExportHealth, HealthReportingExporter},
    log_format::LogLines,
    otlp_grpc::{self, GrpcExporter},
    otlp_http::{OtlpHttpError, OtlpHttpExporter, OtlpHttpSettings},
    sampling::MeshSampler,
};

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `opentelemetry-otlp` could not build the OTLP/gRPC exporter around
    /// our channel (the endpoint itself is checked first: `GrpcEndpoint`).
    #[error("cannot build the OTLP span exporter: {0}")]
    Exporter(#[from] ExporterBuildError),
    /// The OTLP/HTTP exporter could not start.
    #[error(transparent)]
    HttpExporter(#[from] OtlpHttpError),
    /// The TLS settings cannot work (a file missing, a key that is not the
    /// certificate's, ...).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The OTLP/gRPC endpoint is not a URL.
    #[error("{0}")]
    GrpcEndpoint(String),
    /// The process-wide propagators were fixed before `init` ran, so
    /// `OTEL_PROPAGATORS` cannot apply (a second `init`, or context read
    /// before the first).
    #[error(
        "the propagators were fixed before telemetry started, so OTEL_PROPAGATORS cannot apply"
    )]
    PropagatorsFixed,
    /// Another global `tracing` subscriber was installed first.
    #[error("cannot install the tracing subscriber: {0}")]
    Subscriber(#[from] TryInitError),
}

impl TelemetryError {
    /// Whether the configuration is at fault (not the process): a service
    /// refuses it with the usage-error exit code, as it does a bad flag.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            Self::Tls(_) | Self::GrpcEndpoint(_) | Self::HttpExporter(OtlpHttpError::Endpoint(_))
        )
    }
}

/// Handle on the running tracer provider. Shut it down before the process
/// exits, or the spans still queued in the batch processor are lost.
#[derive(Debug)]
#[must_use = "dropping the handle does not flush spans; call `shutdown`"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    export_health: Option<Arc<ExportHealth>>,
}

impl Telemetry {
    /// Flushes every finished span to the exporter and stops it.
    ///
    /// The SDK's shutdown blocks, so it runs on tokio's blocking pool: on the
    /// runtime's own threads it could deadlock with the gRPC exporter, which
    /// needs the runtime to send the last batch.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        if let Some(health) = &self.export_health {
            health.begin_shutdown();
        }
        let outcome = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Some(health) = self.export_health.filter(|health| health.is_failing()) {
            tracing::warn!(
                lost_spans = health.lost_spans(),
                failed_exports = health.failed_exports(),
                "tracer provider shut down; the collector was unreachable"
            );
            return;
        }
        match outcome {
            Ok(Ok(())) => tracing::info!("tracer provider shut down"),
            Ok(Err(error)) => tracing::warn!(%error, "tracer provider shutdown incomplete"),
            Err(error) => tracing::warn!(%error, "tracer provider shutdown task failed"),
        }
    }
}

/// Set once [`init`] has run with `OTEL_SDK_DISABLED=true`.
static SPANS_OFF: AtomicBool = AtomicBool::new(false);

/// Whether this process makes spans: `false` once [`init`] has run with
/// the SDK disabled. The request stack then makes no SERVER span and the
/// client no CLIENT span, and each passes the caller's context on as it
/// came, as the specification's no-op API would, without the cost of a
/// span nobody records.
pub fn spans_enabled() -> bool {
    !SPANS_OFF.load(Ordering::Relaxed)
}

/// Installs the propagator, the tracer provider and the global subscriber.
///
/// `default_service_name` is used when `OTEL_SERVICE_NAME` is unset, and
/// `service_version` becomes the resource's `service.version`.
pub fn init(
    args: &TelemetryArgs,
    default_service_name: &str,
    service_version: &str,
) -> Result<Telemetry, TelemetryError> {
    // Once per process. `false` means the propagators were fixed before:
    // by an earlier `init`, or by an `extract`/`inject` that ran first and
    // took the defaults; either way `OTEL_PROPAGATORS` would not apply.
    if !mesh_propagation::install(&args.otel_propagators) {
        return Err(TelemetryError::PropagatorsFixed);
    }
    let log_format = args.log_format.unwrap_or_else(default_log_format);
    if args.otel_sdk_disabled {
        // No OpenTelemetry layer at all: the services make no spans
        // (`spans_enabled`), and pass the incoming context on themselves.
        // (`NoopTracer` only names the absent layer's type.)
        subscriber::<NoopTracer>(log_format, None).try_init()?;
        SPANS_OFF.store(true, Ordering::Relaxed);
        return Ok(Telemetry {
            provider: None,
            export_health: None,
        });
    }
    let service_name = args
        .otel_service_name
        .as_deref()
        .unwrap_or(default_service_name);
    let (provider, export_health) = tracer_provider(args, service_name, service_version)?;
    subscriber(
        log_format,
        Some(provider.tracer_with_scope(instrumentation_scope())),
    )
    .try_init()?;
    Ok(Telemetry {
        provider: Some(provider),
        export_health,
    })
}

/// The instrumentation scope of every span: the instrumenting library,
/// this crate, as the specification says (the service is the resource's
/// `service.name`). Its name and version are static, so the SDK's copy of
/// the scope into each span allocates nothing.
pub(crate) fn instrumentation_scope() -> InstrumentationScope {
    InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// The OTLP/gRPC exporter: `opentelemetry-otlp`'s over our own channel
/// ([`otlp_grpc::channel`]), with its own retries turned off, since
/// [`GrpcExporter`] retries from the typed cause of a failure. (Since 0.33
/// the SDK retries by default, 3 times from 100 ms, and would retry a
/// certificate that is not trusted like any `Unavailable`.)
pub(crate) fn grpc_exporter(settings: OtlpHttpSettings) -> Result<GrpcExporter, TelemetryError> {
    let failures = Arc::new(LastFailure::default());
    let channel = otlp_grpc::channel(
        &settings.endpoint,
        settings.timeout,
        settings.tls,
        failures.clone(),
    )
    .map_err(TelemetryError::GrpcEndpoint)?;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_channel(channel)
        .with_timeout(settings.timeout)
        .with_metadata(MetadataMap::from_headers(settings.headers))
        .with_retry_policy(RetryPolicy::recommended().with_max_retries(0));
    if settings.gzip {
        exporter = exporter.with_compression(Compression::Gzip);
    }
    Ok(GrpcExporter::new(
        exporter.build()?,
        failures,
        settings.timeout,
    ))
}

/// Builds the tracer provider: resource, sampler and exporter from `args`.
/// With OTLP export, also the export health the shutdown path consults.
pub(crate) fn tracer_provider(
    args: &TelemetryArgs,
    service_name: &str,
    service_version: &str,
) -> Result<(SdkTracerProvider, Option<Arc<ExportHealth>>), TelemetryError> {
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attribute(KeyValue::new("service.version", service_version.to_owned()))
        .build();
    let builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(MeshSampler::new(
            args.otel_traces_sampler,
            args.otel_traces_sampler_arg,
        ));
    let (builder, health) = match args.otel_traces_exporter {
        TracesExporter::Otlp => {
            let settings = otlp_settings(args)?;
            let endpoint = settings.endpoint.clone();
            let processor = match args.otel_exporter_otlp_protocol {
                OtlpProtocol::Grpc => health_reporting(grpc_exporter(settings)?, endpoint),
                OtlpProtocol::HttpProtobuf => {
                    health_reporting(OtlpHttpExporter::new(settings)?, endpoint)
                }
            };
            (builder.with_span_processor(processor.0), Some(processor.1))
        }
        TracesExporter::Console => (
            builder.with_batch_exporter(opentelemetry_stdout::SpanExporter::default()),
            None,
        ),
        TracesExporter::None => (builder, None),
    };
    Ok((builder.build(), health))
}

/// `exporter` behind the batch processor, reporting outages once, and the
/// health the shutdown path consults.
fn health_reporting<E: opentelemetry_sdk::trace::SpanExporter + 'static>(
    exporter: E,
    endpoint: String,
) -> (BatchSpanProcessor, Arc<ExportHealth>) {
    let exporter = HealthReportingExporter::new(exporter, endpoint);
    let health = exporter.health();
    (BatchSpanProcessor::builder(exporter).build(), health)
}

/// Where and how spans are exported, resolved as the OTLP exporter
/// specification says: each traces-specific setting wins over the general
/// one, and the default timeout is 10 s. The TLS files are read and checked
/// here, at start-up.
pub(crate) fn otlp_settings(args: &TelemetryArgs) -> Result<OtlpHttpSettings, TlsError> {
    let headers = args
        .otel_exporter_otlp_traces_headers
        .as_ref()
        .or(args.otel_exporter_otlp_headers.as_ref())
        .map(|headers| headers.0.clone())
        .unwrap_or_default();
    let timeout_ms = args
        .otel_exporter_otlp_traces_timeout
        .or(args.otel_exporter_otlp_timeout)
        .unwrap_or(10_000);
    let compression = args
        .otel_exporter_otlp_traces_compression
        .or(args.otel_exporter_otlp_compression);
    let endpoint = otlp_traces_endpoint(args);
    let https = endpoint.starts_with("https://");
    Ok(OtlpHttpSettings {
        tls: collector_tls::client_config(&TlsFiles::from_args(args), https)?,
        endpoint,
        headers,
        timeout: Duration::from_millis(timeout_ms),
        gzip: compression == Some(OtlpCompression::Gzip),
    })
}

/// The URL spans are sent to, resolved as the OTLP exporter specification
/// says: the traces-specific URL as is, else the base URL plus `/v1/traces`
/// for HTTP, else the protocol's default. A gRPC endpoint without a scheme
/// gets one from [`grpc_scheme`].
pub(crate) fn otlp_traces_endpoint(args: &TelemetryArgs) -> String {
    let grpc = args.otel_exporter_otlp_protocol == OtlpProtocol::Grpc;
    if let Some(url) = &args.otel_exporter_otlp_traces_endpoint {
        return if grpc {
            grpc_scheme(url, args)
        } else {
            url.clone()
        };
    }
    let base = args.otel_exporter_otlp_endpoint.as_deref();
    match args.otel_exporter_otlp_protocol {
        OtlpProtocol::Grpc => grpc_scheme(base.unwrap_or("http://localhost:4317"), args),
        OtlpProtocol::HttpProtobuf => format!(
            "{}/v1/traces",
            base.unwrap_or("http://localhost:4318")
                .trim_end_matches('/')
        ),
    }
}

/// A gRPC endpoint as a URL. `OTEL_EXPORTER_OTLP_INSECURE` (or its
/// `TRACES_` override) applies only to an endpoint without a scheme, as
/// the OTLP exporter specification says ("only applies to OTLP/gRPC when an
/// endpoint is provided without the http or https scheme"): `true` makes it
/// `http://`, otherwise (the default) `https://`. A scheme, when given, is
/// kept; OTLP/HTTP always uses the endpoint's own scheme.
fn grpc_scheme(endpoint: &str, args: &TelemetryArgs) -> String {
    let has_scheme = endpoint
        .split_once("://")
        .is_some_and(|(scheme, _)| !scheme.contains(['/', '?', '#']));
    if has_scheme {
        return endpoint.to_owned();
    }
    let insecure = args
        .otel_exporter_otlp_traces_insecure
        .or(args.otel_exporter_otlp_insecure)
        .unwrap_or(false);
    let scheme = if insecure { "http" } else { "https" };
    format!("{scheme}://{endpoint}")
}

fn default_log_format() -> LogFormat {
    if std::io::stdout().is_terminal() {
        LogFormat::Text
    } else {
        LogFormat::Json
    }
}

/// Crates whose own spans must never be exported: they run inside the
/// exporter, and tracing them would feed the exporter its own traffic.
const EXPORTER_INTERNALS: [&str; 8] = [
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
];

/// The SDK's per-batch export events: the batch processor's export error
/// and the OTLP exporter's retry outcomes (`Export.Failed.Exhausted`,
/// `Export.InProgress.Retrying`, ...). [`HealthReportingExporter`] replaces
/// them with one line per outage.
fn is_per_batch_export_event(name: &str) -> bool {
    name == "BatchSpanProcessor.ExportError"
        || name.starts_with("Export.Failed.")
        || name.starts_with("Export.InProgress.")
}

/// What is logged: `RUST_LOG` (default `info`), less the SDK's per-batch
/// export events (see [`is_per_batch_export_event`]).
///
/// `RUST_LOG` as plain `target=level` directives, the usual case, is matched
/// by [`Targets`]: once per callsite, and nothing per span. Only directives
/// that name spans or fields (`[span{field=value}]`) need [`EnvFilter`],
/// which then tracks every span's entry and exit under a lock.
fn log_filter<S>() -> impl Filter<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let rust_log = std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_default();
    let levels: Box<dyn Filter<S> + Send + Sync> = match static_targets(&rust_log) {
        Some(targets) => Box::new(targets),
        None => Box::new(
            EnvFilter::builder()
                .with_default_directive(LevelFilter::INFO.into())
                .from_env_lossy(),
        ),
    };
    levels.and(filter_fn(|meta| !is_per_batch_export_event(meta.name())))
}

/// `RUST_LOG` as [`Targets`] when it holds only `target=level` directives
/// (an empty one means `info`); `None` when it needs [`EnvFilter`].
fn static_targets(rust_log: &str) -> Option<Targets> {
    let rust_log = rust_log.trim();
    if rust_log.is_empty() {
        return Some(Targets::new().with_default(LevelFilter::INFO));
    }
    if rust_log.contains(['[', '{', '"']) {
        return None;
    }
    rust_log.parse().ok()
}

/// Builds the subscriber: log lines filtered by `RUST_LOG` (default `info`),
/// and spans sent to `tracer`, if there is one.
///
/// The two have separate filters on purpose. A global `RUST_LOG=warn` would
/// otherwise disable the info-level request spans, and a disabled span
/// propagates no context, silently cutting every trace at this service.
pub(crate) fn subscriber<T>(
    log_format: LogFormat,
    tracer: Option<T>,
) -> impl Subscriber + Send + Sync
where
    T: opentelemetry::trace::Tracer + Send + Sync + 'static,
    T::Span: Send + Sync,
{
    let logs = LogLines::new(log_format, std::io::stdout).with_filter(log_filter());

    let span_targets = EXPORTER_INTERNALS.iter().fold(
        Targets::new().with_default(LevelFilter::INFO),
        |targets, name| targets.with_target(*name, LevelFilter::OFF),
    );
    // Log events stay in the log; only warnings and errors are also attached
    // to the span, where they help most in Jaeger.
    let spans_and_warnings = filter_fn(|meta| meta.is_span() || *meta.level() <= Level::WARN);
    // The layer's defaults add eight attributes to every span: code location,
    // thread id and name, target, and busy/idle timings. For async HTTP spans
    // they say nothing (a request hops threads; its "location" is the
    // middleware) and cost allocations and clock reads per span.
    // Context activation would attach the span's OpenTelemetry context on
    // every poll of every instrumented future (a lock, a context clone and
    // two thread-local stack pushes, undone on exit). Our code asks the
    // `tracing` span for its context instead (`Span::current().context()`),
    // so nothing needs the attached one. See BENCHMARKS.md.
    let otel = tracer.map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_context_activation(false)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(span_targets.and(spans_and_warnings))
    });

    tracing_subscriber::registry().with(logs).with(otel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    fn endpoint(args: &[&str]) -> String {
        otlp_traces_endpoint(&parse(args).unwrap())
    }

    #[test]
    fn plain_rust_log_directives_are_matched_by_targets() {
        let empty = static_targets("").unwrap();
        assert!(empty.would_enable("any", &Level::INFO));
        assert!(!empty.would_enable("any", &Level::DEBUG));
        let warn = static_targets(" warn,x=debug ").unwrap();
        assert!(warn.would_enable("x", &Level::DEBUG));
        assert!(warn.would_enable("x::inner", &Level::DEBUG));
        assert!(!warn.would_enable("y", &Level::INFO));
        assert!(warn.would_enable("y", &Level::WARN));
        assert!(static_targets("warn,[http_request{otel.kind=server}]=debug").is_none());
        assert!(
            static_targets("x=loud").is_none(),
            "an invalid level goes to EnvFilter"
        );
    }

    #[test]
    fn http_endpoint_gets_the_traces_path_appended_once() {
        assert_eq!(
            endpoint(&["--otel-exporter-otlp-endpoint", "http://jaeger:4318/"]),
            "http://jaeger:4318/v1/traces"
        );
        assert_eq!(endpoint(&[]), "http://localhost:4318/v1/traces");
    }

    #[test]
    fn grpc_endpoint_is_used_as_given() {
        assert_eq!(
            endpoint(&[
                "--otel-exporter-otlp-protocol",
                "grpc",
                "--otel-exporter-otlp-endpoint",
                "http://jaeger:4317"
            ]),
            "http://jaeger:4317"
        );
        assert_eq!(
            endpoint(&["--otel-exporter-otlp-protocol", "grpc"]),
            "http://localhost:4317"
        );
    }

    #[test]
    fn traces_endpoint_wins_and_is_not_rewritten() {
        assert_eq!(
            endpoint(&[
                "--otel-exporter-otlp-endpoint",
                "http://ignored:4318",
                "--otel-exporter-otlp-traces-endpoint",
                "http://collector/custom"
            ]),
            "http://collector/custom"
        );
    }

    #[test]
    fn insecure_chooses_the_scheme_of_a_grpc_endpoint_without_one_only() {
        let grpc = |extra: &[&str]| {
            let mut args = vec!["--otel-exporter-otlp-protocol", "grpc"];
            args.extend_from_slice(extra);
            endpoint(&args)
        };
        let bare = ["--otel-exporter-otlp-endpoint", "collector:4317"];
        assert_eq!(grpc(&bare), "https://collector:4317");
        let insecure = [&bare[..], &["--otel-exporter-otlp-insecure", "true"]].concat();
        assert_eq!(grpc(&insecure), "http://collector:4317");
        // The traces-specific setting wins over the general one.
        let overridden = [
            &insecure[..],
            &["--otel-exporter-otlp-traces-insecure", "false"],
        ]
        .concat();
        assert_eq!(grpc(&overridden), "https://collector:4317");
        // A scheme says itself, whatever INSECURE says.
        assert_eq!(
            grpc(&[
                "--otel-exporter-otlp-endpoint",
                "https://collector:4317",
                "--otel-exporter-otlp-insecure",
                "true"
            ]),
            "https://collector:4317"
        );
        // OTLP/HTTP ignores it.
        assert_eq!(
            endpoint(&[
                "--otel-exporter-otlp-endpoint",
                "https://collector:4318",
                "--otel-exporter-otlp-insecure",
                "true"
            ]),
            "https://collector:4318/v1/traces"
        );
    }

    #[test]
    fn traces_tls_files_win_over_the_general_ones() {
        let args = parse(&[
            "--otel-exporter-otlp-certificate",
            "/general/ca.pem",
            "--otel-exporter-otlp-traces-certificate",
            "/traces/ca.pem",
            "--otel-exporter-otlp-client-key",
            "/general/key.pem",
        ])
        .unwrap();
        let files = TlsFiles::from_args(&args);
        let ca = files.ca.unwrap();
        assert_eq!(
            (ca.var, ca.path.to_str()),
            (
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                Some("/traces/ca.pem")
            )
        );
        let key = files.client_key.unwrap();
        assert_eq!(
            (key.var, key.path.to_str()),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", Some("/general/key.pem"))
        );
        assert_eq!(files.client_certificate, None);
    }
}
