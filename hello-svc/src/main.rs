//! hello-svc's entry point: its configuration, then the shared lifecycle.

use std::process::ExitCode;

use hello_svc::{config::Config, startup};
use mesh_server::lifecycle::{parse_config, run};

#[tokio::main]
async fn main() -> ExitCode {
    let config: Config = parse_config();
    let version = env!("CARGO_PKG_VERSION");
    run(
        "hello-svc",
        version,
        &config.telemetry,
        startup::build(&config),
    )
    .await
}
