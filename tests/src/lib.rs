//! Support for the end-to-end tests in `tests/tests/` beyond the shared
//! harness (`test-harness`): the OpenTelemetry Python and JS SDKs as peers,
//! and a model of Envoy's tracers to walk each mesh hop with.

pub mod envoy_tracing;
pub mod interop_peer;
