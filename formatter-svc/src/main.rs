use std::{io, process::ExitCode};

use formatter_svc::{config::Config, startup::Application};
use mesh_telemetry::lifecycle::{parse_config, run, shutdown_signal};

#[tokio::main]
async fn main() -> ExitCode {
    let config: Config = parse_config();
    run(
        "formatter-svc",
        config.formatter_version.as_str(),
        &config.telemetry,
        || async {
            let app = Application::build(&config).await.map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("cannot listen on {}: {error}", config.listen_addr),
                )
            })?;
            tracing::info!(address = %app.local_addr()?, "listening");
            app.run_until_stopped(shutdown_signal()).await
        },
    )
    .await
}
