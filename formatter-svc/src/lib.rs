//! formatter-svc: formats the Hello application's greeting.
//!
//! `GET /formatGreeting?name=NAME` answers with the v1 or v2 greeting,
//! continuing the caller's trace and recording the baggage `user-agent`
//! that Istio used to route the call here.

pub mod config;
mod error;
pub mod greeting;
pub mod routes;
pub mod startup;
