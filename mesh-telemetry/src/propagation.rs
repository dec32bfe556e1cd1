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
    Context, StringValue,
    baggage::{Baggage, BaggageExt, BaggageMetadata},
    global,
    propagation::{
        Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
        text_map_propagator::FieldIter,
    },
    trace::{SpanContext, TraceContextExt, TraceState},
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

/// The longest mesh header value passed on. Real ones are under 100 bytes
/// (a `tracestate` may reach 512); anything longer is not a trace header.
pub const MAX_FORWARDED_VALUE_BYTES: usize = 1024;

/// The mesh's tracing headers of a request, as the propagation-only path
/// passes them on: only [`MESH_TRACE_HEADERS`], the first value of each, and
/// only values that are visible ASCII and at most
/// [`MAX_FORWARDED_VALUE_BYTES`] long. Headers arrive from the internet
/// through the ingress gateway; nothing else, and nothing outsized, is copied
/// into the call to another service.
pub fn mesh_headers(incoming: &HeaderMap) -> HeaderMap {
    MESH_TRACE_HEADERS
        .iter()
        .filter_map(|&name| {
            let value = forwardable(incoming, name)?;
            Some((http::HeaderName::from_static(name), value.clone()))
        })
        .collect()
}

/// The first value of header `name`, if it may be passed on: visible ASCII
/// and at most [`MAX_FORWARDED_VALUE_BYTES`] long.
pub fn forwardable<'a>(incoming: &'a HeaderMap, name: &str) -> Option<&'a http::HeaderValue> {
    incoming
        .get(name)
        .filter(|value| value.len() <= MAX_FORWARDED_VALUE_BYTES && value.to_str().is_ok())
}

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
    /// No propagation at all.
    None,
}

/// W3C Trace Context allows at most 32 `tracestate` list-members.
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// The composite of the configured propagators, with W3C's limits enforced
/// on what it reads: a `tracestate` of more than [`MAX_TRACESTATE_MEMBERS`]
/// members is dropped (the specification lets a parser discard it), so it
/// cannot be passed on to the next service. Baggage is bounded by the SDK
/// itself (64 members, 8192 bytes).
#[derive(Debug)]
pub struct Propagator {
    inner: TextMapCompositePropagator,
}

impl TextMapPropagator for Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        // W3C Baggage percent-encodes values, but the SDK's propagator leaves
        // `%` itself alone, so a value holding `%0A` would arrive as a
        // newline (and be dropped). Encode it here, once for every caller.
        let baggage = cx.baggage();
        if baggage
            .iter()
            .any(|(_, (value, _))| value.as_str().contains('%'))
        {
            let escaped: Baggage = baggage
                .iter()
                .map(|(key, (value, meta))| {
                    let value = StringValue::from(value.as_str().replace('%', "%25"));
                    (key.clone(), (value, meta.clone()))
                })
                .collect();
            return self
                .inner
                .inject_context(&cx.with_baggage(escaped), injector);
        }
        self.inner.inject_context(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let mut extracted = self.inner.extract_with_context(cx, extractor);
        // The SDK percent-decodes baggage properties (`k=v;property`) but
        // writes them back raw, so `;p=%DD%B4` would go out as non-ASCII
        // bytes. Drop any such property; the member and its value stay.
        let baggage = extracted.baggage();
        if baggage
            .iter()
            .any(|(_, (_, meta))| !is_plain_ascii(meta.as_str()))
        {
            let cleaned: Baggage = baggage
                .iter()
                .map(|(key, (value, meta))| {
                    let meta = if is_plain_ascii(meta.as_str()) {
                        meta.clone()
                    } else {
                        BaggageMetadata::default()
                    };
                    (key.clone(), (value.clone(), meta))
                })
                .collect();
            extracted = extracted.with_baggage(cleaned);
        }
        let span = extracted.span();
        let ids = span.span_context();
        if ids.trace_state().header().split(',').count() <= MAX_TRACESTATE_MEMBERS {
            return extracted.clone();
        }
        let bounded = SpanContext::new(
            ids.trace_id(),
            ids.span_id(),
            ids.trace_flags(),
            ids.is_remote(),
            TraceState::NONE,
        );
        extracted.with_remote_span_context(bounded)
    }

    fn fields(&self) -> FieldIter<'_> {
        self.inner.fields()
    }
}

/// Printable ASCII only: what may be written into a header unencoded.
fn is_plain_ascii(text: &str) -> bool {
    text.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// Builds the propagator for `kinds`, in that order.
pub fn composite(kinds: &[PropagatorKind]) -> Propagator {
    use opentelemetry_propagator_b3::{B3Encoding, Propagator as B3Propagator};
    fn one(kind: PropagatorKind) -> Option<Box<dyn TextMapPropagator + Send + Sync>> {
        Some(match kind {
            PropagatorKind::Tracecontext => Box::new(TraceContextPropagator::new()),
            PropagatorKind::Baggage => Box::new(BaggagePropagator::new()),
            PropagatorKind::B3 => Box::new(B3Propagator::with_encoding(B3Encoding::SingleHeader)),
            PropagatorKind::B3multi => {
                Box::new(B3Propagator::with_encoding(B3Encoding::MultipleHeader))
            }
            PropagatorKind::None => return None,
        })
    }
    Propagator {
        inner: TextMapCompositePropagator::new(kinds.iter().copied().filter_map(one).collect()),
    }
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
        let cx = composite(&[Tracecontext, B3multi]).extract(&HeaderExtractor(&headers));
        assert_eq!(cx.span().span_context().trace_id().to_string(), STALE_TRACE);
    }

    #[test]
    fn writes_every_listed_format() {
        use PropagatorKind::*;
        let cx = composite(&[B3multi]).extract(&HeaderExtractor(&disagreeing_headers()));
        let mut out = HeaderMap::new();
        composite(&[Tracecontext, B3, B3multi]).inject_context(&cx, &mut HeaderInjector(&mut out));
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
    }

    #[test]
    fn baggage_properties_that_decode_to_non_ascii_are_dropped_not_sent_raw() {
        // The shape of the input cargo fuzz found.
        let mut headers = HeaderMap::new();
        headers.insert("baggage", "k=v;p=%DD%B4%09x,other=1".parse().unwrap());
        let propagator = composite(&[PropagatorKind::Baggage]);
        let cx = propagator.extract(&HeaderExtractor(&headers));
        let mut out = HeaderMap::new();
        propagator.inject_context(&cx, &mut HeaderInjector(&mut out));
        let baggage = out
            .get("baggage")
            .expect("the members survive")
            .to_str()
            .expect("ASCII only");
        let mut members: Vec<&str> = baggage.split(',').collect();
        members.sort();
        assert_eq!(members, ["k=v", "other=1"]);
    }

    #[test]
    fn none_propagates_nothing() {
        let cx =
            composite(&[PropagatorKind::None]).extract(&HeaderExtractor(&disagreeing_headers()));
        assert!(!cx.span().span_context().is_valid());
    }
}
