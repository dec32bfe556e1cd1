//! Building formatter-svc: its state and router, bound to its address.

use std::io;

use mesh_server::Application;

use crate::{
    config::Config,
    routes::{AppState, router},
};

/// Binds `config.listen_addr` (port 0 picks a free port, for tests), and
/// logs the greeting template this instance serves, as the book's did.
pub async fn build(config: &Config) -> io::Result<Application> {
    let version = config.formatter_version;
    tracing::info!(
        version = version.as_str(),
        template = version.template(),
        "greeting template"
    );
    let state = AppState {
        version,
        limits: config.limits.clone(),
    };
    Application::bind(
        config.listen_addr,
        router(state),
        config.connections.clone(),
    )
    .await
}
