//! Binding the listener and serving until shutdown.

use std::{future::Future, io, net::SocketAddr};

use mesh_server::{
    ConnectionLimits,
    lifecycle::Server,
    serve::{bind, serve},
};
use tokio::net::TcpListener;

use crate::{
    config::Config,
    routes::{AppState, router},
};

/// A bound, not yet running, formatter-svc.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    connections: ConnectionLimits,
}

impl Application {
    /// Binds `config.listen_addr` (port 0 picks a free port, for tests).
    pub async fn build(config: &Config) -> io::Result<Self> {
        let listener = bind(config.listen_addr).await?;
        let version = config.formatter_version;
        tracing::info!(
            version = version.as_str(),
            template = version.template(),
            "greeting template"
        );
        Ok(Self {
            listener,
            state: AppState {
                version,
                limits: config.limits.clone(),
            },
            connections: config.connections.clone(),
        })
    }
}

impl Server for Application {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        serve(
            self.listener,
            router(self.state),
            self.connections,
            shutdown,
        )
        .await
    }
}
