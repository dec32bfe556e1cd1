//! Process lifecycle: reading the configuration, running a service from
//! start to flushed shutdown, and the signal that starts the graceful
//! shutdown.

/// Parses the command line and environment into `C`, or exits: `--help`
/// and `--version` print as usual, and a configuration that cannot work is
/// refused with one line on stderr (`NAME: what is wrong`) and exit code 2.
pub fn parse_config<C: clap::Parser>() -> C {
    C::try_parse().unwrap_or_else(|error| {
        use clap::error::ErrorKind;
        if matches!(
            error.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        ) {
            error.exit();
        }
        eprintln!("{}: {}", C::command().get_name(), one_line(&error));
        std::process::exit(2);
    })
}

/// clap's message without its `error: ` prefix and its usage footer.
fn one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

/// Completes on SIGTERM (what Kubernetes sends) or SIGINT (Ctrl-C).
///
/// If a handler cannot be installed, that signal is ignored (the other still
/// works) rather than shutting the server down at once.
pub(crate) async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// A service's whole life: install telemetry, build the server (`build`
/// binds it), serve until SIGINT or SIGTERM, then flush the spans.
/// Failures before telemetry exists go to stderr, later ones to the log; the
/// exit code says whether the service ran cleanly.
pub async fn run(
    service_name: &str,
    service_version: &str,
    telemetry: &mesh_telemetry::TelemetryArgs,
    build: impl Future<Output = std::io::Result<crate::Application>>,
) -> std::process::ExitCode {
    let telemetry = match mesh_telemetry::init(telemetry, service_name, service_version) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("{service_name}: {error}");
            // 2, as for a flag clap refuses: the configuration cannot work.
            return if error.is_configuration() {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::FAILURE
            };
        }
    };
    let outcome = match build.await {
        Ok(server) => {
            match server.local_addr() {
                Ok(address) => tracing::info!(%address, "listening"),
                Err(error) => tracing::warn!(%error, "bound address unknown"),
            }
            server.run_until_stopped(shutdown_signal()).await
        }
        Err(error) => Err(error),
    };
    if let Err(error) = &outcome {
        tracing::error!(%error, "server failed");
    }
    telemetry.shutdown().await;
    if outcome.is_ok() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
