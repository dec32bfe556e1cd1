//! Telemetry set-up shared by `hello-svc` and `formatter-svc`: the SDK's
//! tracer provider and exporter, the sampler, the `tracing` subscriber and
//! its log formats, and export health. Propagation is `mesh-propagation`'s.
//!
//! What other crates use:
//! - [`init`] installs it all from [`TelemetryArgs`], the standard `OTEL_*`
//!   settings as `clap` arguments ([`config`]), and gives the [`Telemetry`]
//!   to shut down; what cannot work is a [`TelemetryError`] at start-up.
//! - [`span_parent`]: parenting a span on the incoming context, saying so
//!   when that fails.
//! - [`json_text`]: JSON strings escaped exactly, and [`JsonObject`], a
//!   field a JSON line writes as an object.
//!
//! Inside, one module a job: `sampling` (the configured sampler, honouring
//! B3's extra states); `telemetry` (tracer provider and `tracing`
//! subscriber); `otlp_http` (the OTLP/HTTP exporter, protobuf written
//! straight from the spans); `otlp_grpc` (the OTLP/gRPC exporter's
//! connections); `retry` (when either exporter tries again); `collector_tls` (TLS to the collector, checked
//! at start-up); `collector_connection` (connections that record the cause
//! of each failure); `export_failure` (why an export failed, and whether to
//! retry); `export_health` (one log line per collector outage, and a fast
//! shutdown when the collector is down); `log_format` (our JSON and text log
//! lines, carrying the trace and span ids).

mod collector_connection;
mod collector_tls;
pub mod config;
mod export_failure;
mod export_health;
pub mod json_text;
mod log_format;
mod otlp_grpc;
mod otlp_http;
mod retry;
mod sampling;
pub mod span_parent;
mod telemetry;
#[cfg(test)]
mod test_support;

pub use collector_tls::TlsError;
pub use config::TelemetryArgs;
pub use json_text::{JsonEntries, JsonObject};
pub use otlp_http::OtlpHttpError;
pub use telemetry::{Telemetry, TelemetryError, init, spans_enabled};
