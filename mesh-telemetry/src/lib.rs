//! Telemetry setup and trace-context propagation shared by `hello-svc` and
//! `formatter-svc`.
//!
//! - [`config`]: the standard `OTEL_*` settings as `clap` arguments.
//! - `conformance` (feature `conformance`): the propagation conformance cases.
//! - [`propagation`]: the composite propagator (W3C Trace Context, W3C Baggage, B3).
//! - [`sampling`]: the configured sampler, honouring B3's extra states.
//! - [`telemetry`]: tracer provider and `tracing` subscriber.
//! - [`export_health`]: one log line per collector outage, and a fast
//!   shutdown when the collector is down.
//! - [`log_format`]: log lines that carry the trace and span ids.

pub mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod export_health;
pub mod log_format;
pub mod propagation;
pub mod sampling;
pub mod telemetry;

pub use config::TelemetryArgs;
pub use telemetry::{Telemetry, TelemetryError, init};
