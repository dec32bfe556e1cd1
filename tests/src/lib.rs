//! Support for the cross-service tests in `tests/tests/`: a real OTLP
//! receiver, the real service binaries as child processes, a fake formatter
//! that records what hello-svc sends it, the OpenTelemetry Python and JS
//! SDKs as peers, and static checks of `k8s/`.

pub mod fake_formatter;
pub mod interop_peer;
pub mod istio_routing;
pub mod manifests;
pub mod openapi_schema;
pub mod otlp_receiver;
pub mod service_process;

/// The trace id in a response's W3C `traceresponse` header
/// (`00-<trace id>-<span id>-<flags>`), as hello-svc and formatter-svc send it.
pub fn traceresponse_trace_id(headers: &axum::http::HeaderMap) -> String {
    let value = headers
        .get("traceresponse")
        .and_then(|v| v.to_str().ok())
        .expect("the response carries a traceresponse header");
    value
        .split('-')
        .nth(1)
        .expect("traceresponse has a trace id")
        .to_owned()
}
