use std::process::ExitCode;

use clap::Parser;
use hello_svc::{config::Config, startup::Application};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let version = env!("CARGO_PKG_VERSION");
    let telemetry = match mesh_telemetry::init(&config.telemetry, "hello-svc", version) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("hello-svc: {error}");
            return ExitCode::FAILURE;
        }
    };

    let outcome = match Application::build(&config).await {
        Ok(app) => {
            if let Ok(address) = app.local_addr() {
                tracing::info!(%address, "listening");
            }
            app.run_until_stopped(mesh_telemetry::lifecycle::shutdown_signal())
                .await
        }
        Err(error) => Err(error),
    };
    if let Err(error) = &outcome {
        tracing::error!(%error, listen_addr = %config.listen_addr, "server failed");
    }
    telemetry.shutdown().await;
    if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
