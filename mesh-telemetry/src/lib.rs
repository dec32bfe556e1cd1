//! Telemetry set-up shared by `hello-svc` and `formatter-svc`: the SDK's
//! tracer provider and exporter, the sampler, the `tracing` subscriber and
//! its log formats, and export health. Propagation is `mesh-propagation`'s.
//!
//! - [`config`]: the standard `OTEL_*` settings as `clap` arguments.
//! - [`sampling`]: the configured sampler, honouring B3's extra states.
//! - [`telemetry`]: tracer provider and `tracing` subscriber.
//! - [`otlp_http`]: the OTLP/HTTP exporter, protobuf written straight from
//!   the spans.
//! - [`otlp_grpc`]: the OTLP/gRPC exporter's connections (TCP, TLS) and
//!   retries.
//! - [`collector_tls`]: TLS to the collector (trusted CAs, the client
//!   certificate), checked at start-up.
//! - [`collector_connection`]: connections to the collector, recording
//!   the cause of each failure.
//! - [`export_failure`]: why an export failed, from the error's source
//!   chain, and whether to retry.
//! - [`export_health`]: one log line per collector outage, and a fast
//!   shutdown when the collector is down.
//! - [`log_format`]: log lines that carry the trace and span ids.
//! - [`span_parent`]: parenting a span on the incoming context, saying so
//!   when that fails.
//! - [`json_text`]: JSON strings escaped exactly, and [`JsonObject`], a
//!   field a JSON line writes as an object.

mod collector_connection;
mod collector_tls;
pub mod config;
mod export_failure;
mod export_health;
pub mod json_text;
mod log_format;
mod otlp_grpc;
mod otlp_http;
mod sampling;
pub mod span_parent;
mod telemetry;
#[cfg(test)]
mod test_support;

pub use collector_tls::TlsError;
pub use config::TelemetryArgs;
pub use json_text::{JsonEntries, JsonObject};
pub use telemetry::{Telemetry, TelemetryError, init};
