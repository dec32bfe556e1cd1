//! Telemetry set-up shared by `hello-svc` and `formatter-svc`: the SDK's
//! tracer provider and exporter, the sampler, the `tracing` subscriber and
//! its log formats, and export health. Propagation is `mesh-propagation`'s.
//!
//! - [`config`]: the standard `OTEL_*` settings as `clap` arguments.
//! - [`sampling`]: the configured sampler, honouring B3's extra states.
//! - [`telemetry`]: tracer provider and `tracing` subscriber.
//! - [`otlp_http`]: the OTLP/HTTP exporter, protobuf written straight from
//!   the spans.
//! - [`export_health`]: one log line per collector outage, and a fast
//!   shutdown when the collector is down.
//! - [`log_format`]: log lines that carry the trace and span ids.
//! - [`json_text`]: JSON strings escaped exactly, and [`JsonObject`], a
//!   field a JSON line writes as an object.

pub mod config;
mod export_health;
pub mod json_text;
mod log_format;
mod otlp_http;
mod sampling;
mod telemetry;

pub use config::TelemetryArgs;
pub use json_text::{JsonEntries, JsonObject};
pub use telemetry::{Telemetry, TelemetryError, init};
