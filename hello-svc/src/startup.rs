//! Binding the listener and serving until shutdown.

use std::{future::Future, io, net::SocketAddr};

use tokio::net::TcpListener;

use crate::{
    config::Config,
    formatter_client::FormatterClient,
    routes::{AppState, router},
};

/// A bound, not yet running, hello-svc.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Builds the formatter client and binds `config.listen_addr` (port 0
    /// picks a free port, for tests).
    pub async fn build(config: &Config) -> io::Result<Self> {
        let formatter = FormatterClient::new(config).map_err(io::Error::other)?;
        let listener = TcpListener::bind(config.listen_addr).await?;
        Ok(Self {
            listener,
            state: AppState {
                formatter,
                limits: config.limits.clone(),
            },
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
    }
}
