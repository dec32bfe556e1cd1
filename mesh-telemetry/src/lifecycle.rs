//! Process lifecycle: running a service from start to flushed shutdown, and
//! the signal that starts the graceful shutdown.

/// Completes on SIGTERM (what Kubernetes sends) or SIGINT (Ctrl-C).
///
/// If a handler cannot be installed, that signal is ignored (the other still
/// works) rather than shutting the server down at once.
pub async fn shutdown_signal() {
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

/// A service's whole life: install telemetry, run `serve` (which binds and
/// serves until [`shutdown_signal`]), then flush the spans. Failures before
/// telemetry exists go to stderr, later ones to the log; the exit code says
/// whether the service ran cleanly.
pub async fn run<F, Fut>(
    service_name: &str,
    service_version: &str,
    telemetry: &crate::TelemetryArgs,
    serve: F,
) -> std::process::ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = std::io::Result<()>>,
{
    let telemetry = match crate::init(telemetry, service_name, service_version) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("{service_name}: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = serve().await;
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
