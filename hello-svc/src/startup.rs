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
    formatter_client::FormatterClient,
    routes::{AppState, router},
};

/// A bound, not yet running, hello-svc.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    connections: ConnectionLimits,
}

impl Application {
    /// Builds the formatter client and binds `config.listen_addr` (port 0
    /// picks a free port, for tests).
    pub async fn build(config: &Config) -> io::Result<Self> {
        let formatter = FormatterClient::new(config).map_err(|error| {
            io::Error::other(format!("cannot build the formatter client: {error}"))
        })?;
        let listener = bind(config.listen_addr).await?;
        Ok(Self {
            listener,
            state: AppState {
                formatter,
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
