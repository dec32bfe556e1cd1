//! formatter-svc's configuration: flags with environment fallbacks.

use std::net::SocketAddr;

use clap::Parser;
use mesh_server::{ConnectionLimits, RequestLimits};
use mesh_telemetry::TelemetryArgs;

use crate::greeting::FormatterVersion;

/// Formats the Hello application's greeting (`GET /formatGreeting?name=`).
#[derive(Debug, Clone, Parser)]
#[command(name = "formatter-svc", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,

    /// Which greeting this instance serves. Istio routes callers whose
    /// baggage names a Netscape browser to v2.
    #[arg(long, env = "FORMATTER_VERSION", value_enum, default_value_t = FormatterVersion::V1)]
    pub formatter_version: FormatterVersion,

    /// Limits on each request.
    #[command(flatten, next_help_heading = "Request limits")]
    pub limits: RequestLimits,

    /// Limits on each connection.
    #[command(flatten, next_help_heading = "Connection limits")]
    pub connections: ConnectionLimits,

    /// OpenTelemetry and logging settings.
    #[command(flatten, next_help_heading = "Telemetry")]
    pub telemetry: TelemetryArgs,
}
