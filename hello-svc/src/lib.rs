//! hello-svc: says hello to a name through formatter-svc.
//!
//! - `GET /sayHello/{name}` is explicitly instrumented: SERVER and CLIENT
//!   spans, the caller's User-Agent in the baggage, context injected into the
//!   formatter call.
//! - `GET /sayHello2/{name}` only forwards the mesh's tracing headers.

pub mod config;
mod error;

pub use error::AppError;
pub mod formatter_client;
mod formatter_endpoint;
mod name;
pub mod routes;
pub mod startup;
