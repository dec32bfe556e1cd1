//! Building hello-svc: its state and router, bound to its address.

use std::io;

use mesh_server::Application;

use crate::{
    config::Config,
    formatter_client::FormatterClient,
    routes::{AppState, router},
};

/// Builds the formatter client and binds `config.listen_addr` (port 0 picks
/// a free port, for tests).
pub async fn build(config: &Config) -> io::Result<Application> {
    let formatter = FormatterClient::new(config)
        .map_err(|error| io::Error::other(format!("cannot build the formatter client: {error}")))?;
    let state = AppState {
        formatter,
        limits: config.limits.clone(),
    };
    Application::bind(
        config.listen_addr,
        router(state),
        config.connections.clone(),
    )
    .await
}
