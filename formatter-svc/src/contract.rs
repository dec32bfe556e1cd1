//! What formatter-svc agrees on with its callers and with the mesh, defined
//! once: hello-svc refuses a name the formatter would refuse, and Istio
//! routes each call to v1 or v2 on the baggage member hello-svc sets
//! (the regex that `k8s/sidecar/routing.yaml` and `k8s/ambient/routing.yaml`
//! share is tested against what this key produces).

/// The longest name accepted, in bytes once percent-decoded, by both
/// services.
pub const MAX_NAME_BYTES: usize = 256;

/// The baggage key that carries the caller's User-Agent: hello-svc sets it,
/// Istio routes on it, formatter-svc records it on its span.
pub const USER_AGENT_BAGGAGE_KEY: &str = "user-agent";
