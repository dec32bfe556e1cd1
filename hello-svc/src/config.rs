//! hello-svc's configuration: flags with environment fallbacks.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use mesh_server::{ConnectionLimits, RequestLimits};
use mesh_telemetry::TelemetryArgs;
use url::Url;

/// Says hello to a name through formatter-svc (`GET /sayHello/{name}`).
#[derive(Debug, Clone, Parser)]
#[command(name = "hello-svc", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,

    /// Base URL of formatter-svc; `/formatGreeting` is appended. Plain
    /// `http://` only: inside the mesh the sidecars encrypt with mutual TLS.
    #[arg(long, env = "FORMATTER_URL", default_value = "http://localhost:8081", value_parser = parse_http_url)]
    pub formatter_url: Url,

    /// How long a formatter call may take, in milliseconds, before hello-svc
    /// answers 504.
    #[arg(long, env = "FORMATTER_TIMEOUT_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub formatter_timeout_ms: u64,

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

impl Config {
    /// The formatter timeout as a [`Duration`].
    pub(crate) fn formatter_timeout(&self) -> Duration {
        Duration::from_millis(self.formatter_timeout_ms)
    }
}

fn parse_http_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|error| format!("`{value}` is not a URL: {error}"))?;
    // The URL goes into every CLIENT span's `url.full`, which semantic
    // conventions say must not carry credentials; the formatter needs none.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "credentials in the URL are not supported (they would be recorded in \
                    every span's url.full)"
                .to_owned(),
        );
    }
    match (url.scheme(), url.host_str()) {
        ("http", Some(_)) => Ok(url),
        ("https", Some(_)) => Err(
            "https:// is not supported: hello-svc calls the formatter over plain HTTP, and \
             the mesh's sidecars encrypt it with mutual TLS"
                .to_owned(),
        ),
        _ => Err(format!("`{value}` is not an http:// URL with a host")),
    }
}
