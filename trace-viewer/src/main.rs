//! `trace-viewer`: what `make run` starts when no OTLP receiver listens, so
//! a request's trace shows in the terminal. A development view, not a
//! trace store: see the crate docs.

use std::{io::IsTerminal, net::SocketAddr, process::ExitCode, time::Duration};

use clap::Parser;
use trace_viewer::{Viewer, router};

/// Receives OTLP/HTTP protobuf spans and prints each finished trace as a tree.
#[derive(Debug, Parser)]
#[command(name = "trace-viewer", version, about)]
struct Args {
    /// Address to receive OTLP/HTTP on (`POST /v1/traces`).
    #[arg(long, env = "TRACE_VIEWER_ADDR", default_value = "127.0.0.1:4318")]
    listen: SocketAddr,
    /// A trace is printed once none of its spans arrived for this long.
    #[arg(long, default_value_t = 300)]
    quiet_ms: u64,
    /// Traces held at once; past it the oldest is printed early.
    #[arg(long, default_value_t = 1000)]
    max_traces: usize,
    /// Largest export body accepted, in bytes (413 past it).
    #[arg(long, default_value_t = 8 << 20)]
    max_body_bytes: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let viewer = Viewer::new(
        Duration::from_millis(args.quiet_ms),
        args.max_traces,
        std::io::stdout().is_terminal(),
    );
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("trace-viewer: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().map_or(args.listen, |a| a);
    println!("trace-viewer: receiving OTLP/HTTP on http://{address}/v1/traces");

    let printer = {
        let viewer = viewer.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                for tree in viewer.finished(false) {
                    print!("{tree}");
                }
            }
        })
    };
    // On Ctrl-C or SIGTERM the services flush their last spans: keep
    // receiving for a moment, then print whatever is left.
    let shutdown = async {
        stop_requested().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    };
    let served = axum::serve(listener, router(viewer.clone(), args.max_body_bytes))
        .with_graceful_shutdown(shutdown)
        .await;
    printer.abort();
    for tree in viewer.finished(true) {
        print!("{tree}");
    }
    let (shown, dropped) = viewer.counts();
    println!(
        "trace-viewer: {shown} traces shown, {dropped} spans dropped (over the per-trace limit)"
    );
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("trace-viewer: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM (what `kill` and process
/// managers send), so either way what is left gets printed.
async fn stop_requested() {
    #[cfg(unix)]
    if let Ok(mut terminate) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        return;
    }
    if let Err(error) = tokio::signal::ctrl_c().await {
        // Ending now would stop a viewer nobody asked to stop; without a
        // handler, it runs until killed.
        eprintln!("trace-viewer: cannot listen for Ctrl-C ({error}); stop it with kill");
        std::future::pending::<()>().await;
    }
}
