//! One service of the bare pair (see the library's docs):
//!
//! ```text
//! bare-pair formatter --listen-addr 127.0.0.1:8081
//! bare-pair hello --listen-addr 127.0.0.1:8080 --formatter-url http://127.0.0.1:8081
//! ```

use std::{net::SocketAddr, time::Duration};

use clap::{Parser, ValueEnum};

/// Which service of the pair this process plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Role {
    /// `GET /sayHello/{name}`, calling the formatter.
    Hello,
    /// `GET /formatGreeting?name=`, answering the v1 greeting.
    Formatter,
}

/// One service of the bare pair.
#[derive(Debug, Parser)]
#[command(name = "bare-pair", about)]
struct Args {
    /// The service to play.
    #[arg(value_enum)]
    role: Role,
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    listen_addr: SocketAddr,
    /// Base URL of the formatter (`hello` only); `/formatGreeting` is appended.
    #[arg(long, env = "FORMATTER_URL", default_value = "http://127.0.0.1:8081")]
    formatter_url: String,
    /// How long a formatter call may take, in milliseconds (hello-svc's default).
    #[arg(long, env = "FORMATTER_TIMEOUT_MS", default_value_t = 2000)]
    formatter_timeout_ms: u64,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let router = match args.role {
        Role::Hello => bare_pair::hello(
            &args.formatter_url,
            Duration::from_millis(args.formatter_timeout_ms),
        )?,
        Role::Formatter => bare_pair::formatter(),
    };
    let listener = tokio::net::TcpListener::bind(args.listen_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen_addr))?;
    axum::serve(listener, router)
        .await
        .map_err(|e| format!("serving failed: {e}"))
}
