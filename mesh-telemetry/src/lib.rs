//! Telemetry setup and trace-context propagation shared by `hello-svc` and
//! `formatter-svc`.
//!
//! - [`config`]: the standard `OTEL_*` settings as `clap` arguments.
//! - [`propagation`]: the composite propagator (W3C Trace Context, W3C Baggage, B3).
//! - [`telemetry`]: tracer provider and `tracing` subscriber.
//! - [`http_server`]: SERVER spans for axum routers.
//! - [`lifecycle`]: the graceful-shutdown signal.

pub mod config;
pub mod export_health;
pub mod http_server;
pub mod lifecycle;
pub mod log_format;
pub mod propagation;
pub mod telemetry;

pub use config::{RequestLimits, TelemetryArgs};
pub use telemetry::{Telemetry, TelemetryError, init};
