//! formatter-svc's entry point: its configuration, then the shared lifecycle.

use std::process::ExitCode;

use formatter_svc::{config::Config, startup};
use mesh_server::lifecycle::{parse_config, run};

#[tokio::main]
async fn main() -> ExitCode {
    let config: Config = parse_config();
    let version = config.formatter_version.as_str();
    run(
        "formatter-svc",
        version,
        &config.telemetry,
        startup::build(&config),
    )
    .await
}
