//! hello-svc's configuration: flags with environment fallbacks.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use mesh_telemetry::{RequestLimits, TelemetryArgs};
use reqwest::Url;

/// Says hello to a name through formatter-svc (`GET /sayHello/{name}`).
#[derive(Debug, Clone, Parser)]
#[command(name = "hello-svc", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,

    /// Base URL of formatter-svc; `/formatGreeting` is appended.
    #[arg(long, env = "FORMATTER_URL", default_value = "http://localhost:8081", value_parser = parse_http_url)]
    pub formatter_url: Url,

    /// How long a formatter call may take, in milliseconds, before hello-svc
    /// answers 504.
    #[arg(long, env = "FORMATTER_TIMEOUT_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub formatter_timeout_ms: u64,

    #[command(flatten)]
    pub limits: RequestLimits,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

impl Config {
    /// The formatter timeout as a [`Duration`].
    pub fn formatter_timeout(&self) -> Duration {
        Duration::from_millis(self.formatter_timeout_ms)
    }
}

fn parse_http_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|error| format!("`{value}` is not a URL: {error}"))?;
    match (url.scheme(), url.host_str()) {
        ("http" | "https", Some(_)) => Ok(url),
        _ => Err(format!(
            "`{value}` is not an http:// or https:// URL with a host"
        )),
    }
}
