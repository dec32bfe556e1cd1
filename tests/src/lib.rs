//! Support for the cross-service tests in `tests/tests/`: a real OTLP
//! receiver, the real service binaries as child processes, and a fake
//! formatter that records what hello-svc sends it.

pub mod fake_formatter;
pub mod otlp_receiver;
pub mod service_process;
