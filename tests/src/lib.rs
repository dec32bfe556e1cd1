//! Support for the cross-service tests in `tests/tests/` beyond the shared
//! harness (`mesh-test-harness`): the OpenTelemetry Python and JS SDKs as
//! peers, a model of Envoy's tracers, and the static checks of `k8s/`.

pub mod envoy_tracing;
pub mod interop_peer;
pub mod istio_routing;
pub mod manifests;
pub mod openapi_schema;
pub mod stand_ins;
