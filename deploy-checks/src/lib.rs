//! Static checks of what ships beside the binaries, as a library for its
//! tests (`deploy-checks/tests/`) and for the end-to-end tests that evaluate
//! the routing rules on real traffic:
//! - [`manifests`]: `k8s/` and its Kustomize rendering, loaded and typed;
//! - [`openapi_schema`]: Istio's and the Gateway API's vendored CRD schemas,
//!   and validation against them;
//! - [`istio_routing`]: a VirtualService's match rules evaluated as Envoy
//!   does;
//! - [`gateway_api_routing`]: an HTTPRoute's rules evaluated as Istio
//!   programs Envoy with them (the ambient data plane);
//! - [`stand_ins`]: the Makefile and `scripts/mesh-e2e.sh` run against
//!   stand-ins of docker, kind, kubectl and istioctl that print what the
//!   pinned releases print.

pub mod gateway_api_routing;
pub mod istio_routing;
pub mod manifests;
pub mod openapi_schema;
pub mod stand_ins;
