//! The limits every request and connection is held to, as `clap`
//! arguments with environment fallbacks, flattened into each service's
//! parser.

use std::time::Duration;

use clap::Args;

/// Limits on each request.
#[derive(Debug, Clone, Args)]
pub struct RequestLimits {
    /// Requests handled at once. Past it a request is answered 503 at once
    /// rather than queued, so an overload cannot grow latency and memory
    /// without bound.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_requests: u32,

    /// How long a request may take, in milliseconds, before it is answered
    /// 503. Keep it above FORMATTER_TIMEOUT_MS.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,

    /// Largest total size of a request's header names and values, in bytes.
    /// Larger requests are answered 431.
    #[arg(long, env = "MAX_REQUEST_HEADER_BYTES", default_value_t = 16_384, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_request_header_bytes: u32,
}

impl RequestLimits {
    /// [`request_timeout_ms`](Self::request_timeout_ms) as a duration.
    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Limits on each connection, below the requests it carries: slow clients
/// are closed, not served forever.
#[derive(Debug, Clone, Args)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's headers, in
    /// milliseconds, from the moment the server waits for them; past it the
    /// connection is closed. At most 30000.
    #[arg(long, env = "HEADER_READ_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=30_000))]
    pub header_read_timeout_ms: u64,

    /// How long a keep-alive connection may sit with no request in flight,
    /// in milliseconds, before it is closed.
    #[arg(long, env = "IDLE_TIMEOUT_MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_ms: u64,

    /// Connections open at once. Past it, new connections wait in the
    /// listen backlog until one closes.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
}

impl ConnectionLimits {
    /// [`header_read_timeout_ms`](Self::header_read_timeout_ms) as a duration.
    pub(crate) fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    /// [`idle_timeout_ms`](Self::idle_timeout_ms) as a duration.
    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_telemetry::config::parse_ignoring_env;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        connections: ConnectionLimits,
    }

    #[test]
    fn the_header_read_timeout_is_at_most_30_seconds() {
        let error =
            parse_ignoring_env::<Cli>(&["svc", "--header-read-timeout-ms", "30001"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
        let ok = parse_ignoring_env::<Cli>(&["svc", "--header-read-timeout-ms", "30000"]).unwrap();
        assert_eq!(
            ok.connections.header_read_timeout(),
            Duration::from_secs(30)
        );
    }
}
