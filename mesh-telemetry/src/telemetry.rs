//! Building and installing the tracer provider and the `tracing` subscriber.
//!
//! [`init`] installs; [`tracer_provider`] and [`subscriber`] only build, so
//! each piece reads on its own (as in zero2prod), and the no-SDK path can
//! build the same subscriber around a no-op tracer.

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
use std::{sync::Arc, time::Duration};
use tracing::{Level, Subscriber, level_filters::LevelFilter};
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::{FilterExt, Targets, filter_fn},
    layer::{Filter, SubscriberExt},
    registry::LookupSpan,
    util::{SubscriberInitExt, TryInitError},
};

use crate::{
    config::{LogFormat, OtlpCompression, OtlpProtocol, TelemetryArgs, TracesExporter},
    export_health::{ExportHealth, HealthReportingExporter},
    log_format::LogLines,
    otlp_http::{self, OtlpHttpError, OtlpHttpExporter, OtlpHttpSettings},
    sampling::MeshSampler,
};

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP/gRPC exporter rejected its configuration (for example a bad
    /// URL).
    #[error("cannot build the OTLP span exporter: {0}")]
    Exporter(#[from] ExporterBuildError),
    /// The OTLP/HTTP exporter could not start.
    #[error(transparent)]
    HttpExporter(#[from] OtlpHttpError),
    /// Another global `tracing` subscriber was installed first.
    #[error("cannot install the tracing subscriber: {0}")]
    Subscriber(#[from] TryInitError),
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

/// Installs the propagator, the tracer provider and the global subscriber.
///
/// `default_service_name` is used when `OTEL_SERVICE_NAME` is unset, and
/// `service_version` becomes the resource's `service.version`.
pub fn init(
    args: &TelemetryArgs,
    default_service_name: &str,
    service_version: &str,
) -> Result<Telemetry, TelemetryError> {
    // Once per process; a second `init` fails below on the subscriber.
    let _ = mesh_propagation::install(&args.otel_propagators);
    let log_format = args.log_format.unwrap_or_else(default_log_format);
    if args.otel_sdk_disabled {
        // The no-op tracer still carries the incoming span context, so the
        // outbound call continues the caller's trace without recording any.
        subscriber(log_format, NoopTracer::new()).try_init()?;
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
        provider.tracer_with_scope(instrumentation_scope()),
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

/// How the OTLP/gRPC exporter retries a failed batch: as the OTLP/HTTP one
/// does, from the same figures ([`otlp_http::RETRY_DELAYS`],
/// [`otlp_http::MAX_JITTER`]). Since 0.33 the SDK retries by default (3
/// times, from 100 ms to 1.6 s): with no collector, a shutdown then waits
/// about 0.9 s for a batch nobody will take. Two quick retries still ride
/// out a collector's brief outage, and keep that under 0.2 s.
fn otlp_retry_policy() -> RetryPolicy {
    let delays = otlp_http::RETRY_DELAYS;
    RetryPolicy::recommended()
        .with_max_retries(delays.len())
        .with_initial_delay(delays[0])
        .with_max_delay(delays[delays.len() - 1])
        .with_max_jitter(otlp_http::MAX_JITTER)
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
            let settings = otlp_settings(args);
            let endpoint = settings.endpoint.clone();
            let processor = match args.otel_exporter_otlp_protocol {
                OtlpProtocol::Grpc => {
                    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
                        .with_tonic()
                        .with_endpoint(&settings.endpoint)
                        .with_timeout(settings.timeout)
                        .with_metadata(MetadataMap::from_headers(settings.headers))
                        .with_retry_policy(otlp_retry_policy());
                    if settings.gzip {
                        exporter = exporter.with_compression(Compression::Gzip);
                    }
                    health_reporting(exporter.build()?, endpoint)
                }
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
/// one, and the default timeout is 10 s.
pub(crate) fn otlp_settings(args: &TelemetryArgs) -> OtlpHttpSettings {
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
    OtlpHttpSettings {
        endpoint: otlp_traces_endpoint(args),
        headers,
        timeout: Duration::from_millis(timeout_ms),
        gzip: compression == Some(OtlpCompression::Gzip),
    }
}

/// The URL spans are sent to, resolved as the OTLP exporter specification
/// says: the traces-specific URL as is, else the base URL plus `/v1/traces`
/// for HTTP, else the protocol's default.
pub(crate) fn otlp_traces_endpoint(args: &TelemetryArgs) -> String {
    if let Some(url) = &args.otel_exporter_otlp_traces_endpoint {
        return url.clone();
    }
    let base = args.otel_exporter_otlp_endpoint.as_deref();
    match args.otel_exporter_otlp_protocol {
        OtlpProtocol::Grpc => base.unwrap_or("http://localhost:4317").to_owned(),
        OtlpProtocol::HttpProtobuf => format!(
            "{}/v1/traces",
            base.unwrap_or("http://localhost:4318")
                .trim_end_matches('/')
        ),
    }
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
const EXPORTER_INTERNALS: [&str; 9] = [
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "reqwest",
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
/// and spans sent to `tracer`.
///
/// The two have separate filters on purpose. A global `RUST_LOG=warn` would
/// otherwise disable the info-level request spans, and a disabled span
/// propagates no context, silently cutting every trace at this service.
pub(crate) fn subscriber<T>(log_format: LogFormat, tracer: T) -> impl Subscriber + Send + Sync
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
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_context_activation(false)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_filter(span_targets.and(spans_and_warnings));

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
}
