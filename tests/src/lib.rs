//! Support for the cross-service tests in `tests/tests/`: a real OTLP
//! receiver, the real service binaries as child processes, a fake formatter
//! that records what hello-svc sends it, and static checks of `k8s/`.

pub mod fake_formatter;
pub mod istio_routing;
pub mod manifests;
pub mod openapi_schema;
pub mod otlp_receiver;
pub mod service_process;
