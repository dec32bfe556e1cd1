//! Support for the end-to-end tests in `tests/tests/` beyond the shared
//! harness (`test-harness`): the OpenTelemetry Python and JS SDKs as peers,
//! a model of Envoy's tracers to walk each mesh hop with, and the two apps
//! as deployed for those walks.

pub mod envoy_tracing;
pub mod interop_peer;
pub mod mesh_apps;
