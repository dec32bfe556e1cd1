//! The request stack both services serve through, and their lifecycle.
//!
//! - [`config`]: the request and connection limits, as `clap` arguments.
//! - [`stack`]: the per-request layers, in order, in one function.
//! - [`server_span`]: the SERVER span and the response headers naming it.
//! - [`access_log`]: one log line per request.
//! - [`serve`]: accepting connections, with their limits, and the graceful
//!   shutdown.
//! - [`parse_rejection`]: the span and log line of a request hyper answers
//!   itself, before any route.
//! - [`responses`]: the short `text/plain` answers: limits' errors,
//!   `/healthz` and unknown paths.
//! - [`lifecycle`]: reading the configuration, running a service from start
//!   to flushed shutdown, and the shutdown signal.

pub mod access_log;
pub mod config;
pub mod lifecycle;
mod parse_rejection;
pub mod responses;
mod serve;
mod server_span;
mod stack;

pub use config::{ConnectionLimits, RequestLimits};
pub use serve::Application;
pub use stack::request_stack;
