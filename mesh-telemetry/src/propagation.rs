//! Trace-context propagation: one composite propagator, built from
//! `OTEL_PROPAGATORS` and installed once for the whole process.
//!
//! # Which context wins
//! The composite runs its propagators in the configured order, and each one
//! that finds a *valid* span context replaces what the earlier ones found. So
//! the format listed **last** wins when the headers disagree. The default,
//! `tracecontext,baggage,b3multi`, lets the B3 headers that Istio's Envoy
//! (Zipkin provider) writes override a `traceparent` the client sent, which
//! Envoy does not rewrite and which is therefore stale inside the mesh.
//!
//! On the way out, every listed format is written, so a downstream sidecar
//! finds whichever one it reads.

use clap::ValueEnum;
use http::HeaderMap;
use opentelemetry::{
    Context, global,
    propagation::{TextMapCompositePropagator, TextMapPropagator},
};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

/// The headers Istio asks applications to forward, and the only ones the
/// propagation-only path copies from a request to its outbound call.
pub const MESH_TRACE_HEADERS: [&str; 10] = [
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "x-ot-span-context",
];

/// One value of `OTEL_PROPAGATORS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PropagatorKind {
    /// W3C `traceparent` and `tracestate`.
    Tracecontext,
    /// W3C `baggage`.
    Baggage,
    /// Zipkin B3, written as the single `b3` header (read in both forms).
    B3,
    /// Zipkin B3, written as `x-b3-*` headers, as Istio's Zipkin provider
    /// does (read in both forms).
    B3multi,
    /// Jaeger's `uber-trace-id` (deprecated upstream in favour of W3C).
    Jaeger,
    /// No propagation at all.
    None,
}

/// Builds the composite propagator for `kinds`, in that order.
pub fn composite(kinds: &[PropagatorKind]) -> TextMapCompositePropagator {
    // Both B3 and Jaeger crates are deprecated upstream (they still work and
    // Istio still speaks B3); this is the one place that names them.
    #[allow(deprecated)]
    fn one(kind: PropagatorKind) -> Option<Box<dyn TextMapPropagator + Send + Sync>> {
        use opentelemetry_zipkin::{B3Encoding, Propagator as B3Propagator};
        Some(match kind {
            PropagatorKind::Tracecontext => Box::new(TraceContextPropagator::new()),
            PropagatorKind::Baggage => Box::new(BaggagePropagator::new()),
            PropagatorKind::B3 => Box::new(B3Propagator::with_encoding(B3Encoding::SingleHeader)),
            PropagatorKind::B3multi => {
                Box::new(B3Propagator::with_encoding(B3Encoding::MultipleHeader))
            }
            PropagatorKind::Jaeger => Box::new(opentelemetry_jaeger_propagator::Propagator::new()),
            PropagatorKind::None => return None,
        })
    }
    TextMapCompositePropagator::new(kinds.iter().copied().filter_map(one).collect())
}

/// Installs the composite for `kinds` as the process-wide propagator.
pub fn install(kinds: &[PropagatorKind]) {
    global::set_text_map_propagator(composite(kinds));
}

/// Reads the trace context and baggage that arrived with a request.
pub fn extract(headers: &HeaderMap) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)))
}

/// Writes `cx`'s span context and baggage into outbound request headers.
pub fn inject(cx: &Context, headers: &mut HeaderMap) {
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut HeaderInjector(headers))
    });
    // The W3C propagator writes `tracestate` even when it is empty; an empty
    // header carries nothing and only costs bytes on every hop.
    if headers
        .get("tracestate")
        .is_some_and(|value| value.is_empty())
    {
        headers.remove("tracestate");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    const STALE_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const MESH_TRACE: &str = "463ac35c9f6413ad48485a3953bb6124";

    fn disagreeing_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            format!("00-{STALE_TRACE}-b7ad6b7169203331-01")
                .parse()
                .unwrap(),
        );
        headers.insert("x-b3-traceid", MESH_TRACE.parse().unwrap());
        headers.insert("x-b3-spanid", "a2fb4a1d1a96d312".parse().unwrap());
        headers.insert("x-b3-sampled", "1".parse().unwrap());
        headers
    }

    fn extracted_trace_id(kinds: &[PropagatorKind]) -> String {
        let cx = composite(kinds).extract(&HeaderExtractor(&disagreeing_headers()));
        cx.span().span_context().trace_id().to_string()
    }

    #[test]
    fn the_last_listed_propagator_wins_when_headers_disagree() {
        use PropagatorKind::*;
        assert_eq!(
            extracted_trace_id(&[Tracecontext, Baggage, B3multi]),
            MESH_TRACE
        );
        assert_eq!(
            extracted_trace_id(&[B3multi, Baggage, Tracecontext]),
            STALE_TRACE
        );
    }

    #[test]
    fn an_absent_format_does_not_erase_an_earlier_one() {
        use PropagatorKind::*;
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            format!("00-{STALE_TRACE}-b7ad6b7169203331-01")
                .parse()
                .unwrap(),
        );
        let cx = composite(&[Tracecontext, B3multi, Jaeger]).extract(&HeaderExtractor(&headers));
        assert_eq!(cx.span().span_context().trace_id().to_string(), STALE_TRACE);
    }

    #[test]
    fn writes_every_listed_format() {
        use PropagatorKind::*;
        let cx = composite(&[B3multi]).extract(&HeaderExtractor(&disagreeing_headers()));
        let mut out = HeaderMap::new();
        composite(&[Tracecontext, B3, B3multi, Jaeger])
            .inject_context(&cx, &mut HeaderInjector(&mut out));
        let header = |name: &str| {
            out.get(name)
                .unwrap_or_else(|| panic!("{name} missing"))
                .to_str()
                .unwrap()
        };
        assert_eq!(
            header("traceparent"),
            format!("00-{MESH_TRACE}-a2fb4a1d1a96d312-01")
        );
        assert_eq!(header("b3"), format!("{MESH_TRACE}-a2fb4a1d1a96d312-1"));
        assert_eq!(header("x-b3-traceid"), MESH_TRACE);
        assert_eq!(header("x-b3-spanid"), "a2fb4a1d1a96d312");
        assert_eq!(header("x-b3-sampled"), "1");
        assert!(header("uber-trace-id").starts_with(&format!("{MESH_TRACE}:a2fb4a1d1a96d312:")));
    }

    #[test]
    fn none_propagates_nothing() {
        let cx =
            composite(&[PropagatorKind::None]).extract(&HeaderExtractor(&disagreeing_headers()));
        assert!(!cx.span().span_context().is_valid());
    }
}
