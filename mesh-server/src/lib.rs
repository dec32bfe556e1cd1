//! The request stack both services serve through, and their lifecycle.
//!
//! - [`config`]: the request and connection limits, as `clap` arguments.
//! - [`request_stack`]: the per-request stack, in order, in one service:
//!   load shedding, the SERVER span and the response headers naming it, the
//!   header guard, the timeout, the log line.
//! - [`request_context`]: the context a handler continues, from its SERVER
//!   span, or from the caller's headers when the SDK is disabled.
//! - [`access_log`]: one log line per request.
//! - [`Application`]: accepting connections, with their limits, and the
//!   graceful shutdown; a request hyper answers itself, before any route,
//!   still gets its span and log line.
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
mod shed;
mod stack;

pub use config::{ConnectionLimits, RequestLimits};
pub use serve::Application;
pub use server_span::request_context;
pub use stack::request_stack;
