//! What hello-svc and formatter-svc agree on, defined once where both
//! depend on it and neither depends on the other: hello-svc refuses a name
//! the formatter would refuse, and Istio routes each call to v1 or v2 on the
//! baggage member hello-svc sets (the routing rules of both data planes are
//! tested against what this key produces: `tests/tests/routing_contract.rs`;
//! `k8s/sidecar/routing.yaml` and `k8s/ambient/routing.yaml` share the regex).

/// The longest name accepted, in bytes once percent-decoded, by both
/// services.
pub const MAX_NAME_BYTES: usize = 256;

/// The baggage key that carries the caller's User-Agent: hello-svc sets it,
/// Istio routes on it, formatter-svc records it on its span.
pub const USER_AGENT_BAGGAGE_KEY: &str = "user-agent";
