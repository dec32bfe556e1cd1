//! Trace-context propagation: one composite propagator, built from
//! `OTEL_PROPAGATORS` and installed once for the whole process. Everything
//! that reads or writes trace context goes through this crate: both
//! services, `/sayHello2`'s copy, the fuzz target and the benchmarks. It
//! depends on the OpenTelemetry API and `http` only, not on the SDK or a
//! server.
//!
//! The formats are implemented here, to the letter of their specifications,
//! rather than taken from the SDK, whose parsers are lenient where the specs
//! are strict (see each module and docs/conformance.md):
//! the private modules `w3c_trace_context` (W3C Trace Context Level 1 and
//! 2) and `b3` (Zipkin B3, single and multiple headers), and
//! [`w3c_baggage`] (W3C Baggage), chosen by [`PropagatorKind`]. The private
//! `header_lines` lets them see every line of a repeated header, and
//! [`caller_trace`] keeps what a format said beyond a `SpanContext`.
//!
//! # Which context wins
//! The composite runs its propagators in the configured order, and each one
//! that finds a *valid* trace context replaces what the earlier ones found
//! (a B3 sampling decision sent alone never displaces one). So the format
//! listed **last** wins when the headers disagree. The default,
//! `b3multi,tracecontext,baggage`, prefers `traceparent` and falls back to
//! B3: both of Istio's providers, as `make install-istio` configures them,
//! rewrite `traceparent` at every hop (the zipkin provider with
//! `USE_B3_WITH_W3C_PROPAGATION`), while the otel provider passes `x-b3-*`
//! through untouched, so a B3 header can be stale and `traceparent` cannot.
//! See docs/propagation.md, "Which incoming context wins".
//!
//! On the way out, every listed format is written, so a downstream sidecar
//! finds whichever one it reads.

mod b3;
pub mod caller_trace;
mod header_lines;
mod hex;
mod mesh_headers;
pub mod w3c_baggage;
mod w3c_trace_context;

use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    Context,
    baggage::{Baggage, BaggageExt},
    propagation::{
        Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
        text_map_propagator::FieldIter,
    },
    trace::{SpanContext, TraceContextExt},
};

use self::{
    b3::{B3, B3Encoding},
    caller_trace::CallerTrace,
    header_lines::HeaderLines,
    w3c_baggage::W3cBaggage,
    w3c_trace_context::W3cTraceContext,
};

pub use self::{
    hex::{push_span_id, push_trace_id},
    mesh_headers::{MAX_FORWARDED_VALUE_BYTES, MESH_TRACE_HEADERS, forwardable, mesh_headers},
    w3c_baggage::{LeftOut, with_member_first},
};

/// One value of `OTEL_PROPAGATORS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl PropagatorKind {
    /// Every kind, with its name in `OTEL_PROPAGATORS`.
    pub const NAMES: [(Self, &'static str); 5] = [
        (Self::Tracecontext, "tracecontext"),
        (Self::Baggage, "baggage"),
        (Self::B3, "b3"),
        (Self::B3multi, "b3multi"),
        (Self::None, "none"),
    ];

    /// The kind `name` names, in any ASCII case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(_, known)| known.eq_ignore_ascii_case(name))
            .map(|(kind, _)| *kind)
    }
}

/// The formats `OTEL_PROPAGATORS` lists when it is not set.
pub const DEFAULT_PROPAGATORS: [PropagatorKind; 3] = [
    PropagatorKind::B3multi,
    PropagatorKind::Tracecontext,
    PropagatorKind::Baggage,
];

/// The composite of the configured propagators: reads a request's headers
/// (every line of each) into a [`Context`], and writes a context into
/// outbound headers.
///
/// [`extract`](Self::extract) and [`inject`](Self::inject), the per-request
/// path, run the formats in order as the composite does, but on the headers
/// themselves: the context is built once, at the end, rather than copied
/// at each format, and values go into the header map without the
/// `Injector`'s text names and `String`s. The [`TextMapPropagator`]
/// implementation, for any carrier, is the general path they must agree
/// with (tests/hostile_headers.rs checks that they do).
#[derive(Debug)]
pub struct Propagator {
    inner: TextMapCompositePropagator,
    formats: Vec<Format>,
}

/// One configured format, for the per-request path.
#[derive(Debug, Clone, Copy)]
enum Format {
    Tracecontext,
    Baggage,
    B3(B3),
}

/// What the formats read so far, from an empty context: the span to
/// continue, the caller's record and the baggage, each `None` until a
/// format sets it. The same steps as each format's `extract_with_context`
/// on the context the previous one returned.
#[derive(Default)]
struct Extracted {
    span: Option<SpanContext>,
    caller: Option<CallerTrace>,
    baggage: Option<Baggage>,
}

impl Extracted {
    fn span(&self) -> &SpanContext {
        self.span.as_ref().unwrap_or(&SpanContext::NONE)
    }

    /// As [`CallerTrace::continued_in`].
    fn continue_with(&mut self, caller: CallerTrace) {
        let (caller, remote) = caller.resolved(self.caller.as_ref(), self.span());
        if remote.is_some() {
            self.span = remote;
        }
        self.caller = Some(caller);
    }

    fn into_context(self) -> Context {
        let mut cx = Context::new();
        if let Some(span) = self.span {
            cx = cx.with_remote_span_context(span);
        }
        if let Some(caller) = self.caller {
            cx = cx.with_value(caller);
        }
        if let Some(baggage) = self.baggage {
            cx = cx.with_baggage(baggage);
        }
        cx
    }
}

impl Propagator {
    /// The trace context and baggage that arrived with `headers`.
    pub fn extract(&self, headers: &HeaderMap) -> Context {
        let lines = HeaderLines::new(headers);
        let mut found = Extracted::default();
        for format in &self.formats {
            match format {
                Format::Tracecontext => {
                    if let Some(caller) = w3c_trace_context::read(&lines) {
                        found.continue_with(caller);
                    }
                }
                Format::B3(_) => {
                    if let Some(caller) = b3::read(&lines).filter(|c| c.displaces(found.span())) {
                        found.continue_with(caller);
                    }
                }
                Format::Baggage => {
                    if let Some(baggage) = w3c_baggage::read(&lines) {
                        found.baggage = Some(baggage);
                    }
                }
            }
        }
        found.into_context()
    }

    /// Writes `cx`'s trace context and baggage into `headers`.
    pub fn inject(&self, cx: &Context, headers: &mut HeaderMap) {
        for format in &self.formats {
            match format {
                Format::Tracecontext => w3c_trace_context::write(cx, headers),
                Format::Baggage => w3c_baggage::write(cx, headers),
                Format::B3(b3) => b3.write(cx, headers),
            }
        }
    }
}

impl TextMapPropagator for Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.inner.inject_context(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        self.inner.extract_with_context(cx, extractor)
    }

    fn fields(&self) -> FieldIter<'_> {
        self.inner.fields()
    }
}

/// Builds the propagator for `kinds`, in that order.
pub fn composite(kinds: &[PropagatorKind]) -> Propagator {
    let format = |kind| match kind {
        PropagatorKind::Tracecontext => Some(Format::Tracecontext),
        PropagatorKind::Baggage => Some(Format::Baggage),
        PropagatorKind::B3 => Some(Format::B3(B3::new(B3Encoding::Single))),
        PropagatorKind::B3multi => Some(Format::B3(B3::new(B3Encoding::Multi))),
        PropagatorKind::None => None,
    };
    let formats: Vec<Format> = kinds.iter().copied().filter_map(format).collect();
    let propagators = formats
        .iter()
        .map(|format| -> Box<dyn TextMapPropagator + Send + Sync> {
            match *format {
                Format::Tracecontext => Box::new(W3cTraceContext),
                Format::Baggage => Box::new(W3cBaggage),
                Format::B3(b3) => Box::new(b3),
            }
        })
        .collect();
    Propagator {
        inner: TextMapCompositePropagator::new(propagators),
        formats,
    }
}

static INSTALLED: OnceLock<Propagator> = OnceLock::new();

/// Installs the composite for `kinds` as the process-wide propagator, once;
/// later calls change nothing and return `false`. Until it is called,
/// [`extract`] and [`inject`] use [`DEFAULT_PROPAGATORS`].
pub fn install(kinds: &[PropagatorKind]) -> bool {
    INSTALLED.set(composite(kinds)).is_ok()
}

fn installed() -> &'static Propagator {
    INSTALLED.get_or_init(|| composite(&DEFAULT_PROPAGATORS))
}

/// Reads the trace context and baggage that arrived with a request.
pub fn extract(headers: &HeaderMap) -> Context {
    installed().extract(headers)
}

/// Writes `cx`'s span context and baggage into outbound request headers.
pub fn inject(cx: &Context, headers: &mut HeaderMap) {
    installed().inject(cx, headers);
}

/// The response headers that name `cx`'s span, for a caller (or a person
/// with curl) to find the trace: `traceresponse`
/// (`00-<trace-id>-<child-id>-<flags>`, W3C Trace Context Level 2 drafts)
/// and the `trace` metric of `Server-Timing`
/// (`trace;desc=00-<trace-id>-<child-id>-<flags>`, the W3C editor's draft
/// that replaces it). `None` without a valid span.
pub fn response_headers(cx: &Context) -> Option<[(HeaderName, HeaderValue); 2]> {
    const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");
    const TRACERESPONSE: HeaderName = HeaderName::from_static("traceresponse");
    let span = cx.span();
    let span = span.span_context();
    if !span.is_valid() {
        return None;
    }
    // One buffer for both: `traceresponse` is the tail of `Server-Timing`.
    const PREFIX: &str = "trace;desc=";
    let mut server_timing =
        String::with_capacity(PREFIX.len() + w3c_trace_context::TRACEPARENT_LEN);
    server_timing.push_str(PREFIX);
    w3c_trace_context::push_traceparent_value(&mut server_timing, cx, span);
    let server_timing = bytes::Bytes::from(server_timing);
    let traceresponse = server_timing.slice(PREFIX.len()..);
    Some([
        (
            SERVER_TIMING,
            HeaderValue::from_maybe_shared(server_timing).ok()?,
        ),
        (
            TRACERESPONSE,
            HeaderValue::from_maybe_shared(traceresponse).ok()?,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    const W3C_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const B3_TRACE: &str = "463ac35c9f6413ad48485a3953bb6124";

    fn disagreeing_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            format!("00-{W3C_TRACE}-b7ad6b7169203331-01")
                .parse()
                .unwrap(),
        );
        headers.insert("x-b3-traceid", B3_TRACE.parse().unwrap());
        headers.insert("x-b3-spanid", "a2fb4a1d1a96d312".parse().unwrap());
        headers.insert("x-b3-sampled", "1".parse().unwrap());
        headers
    }

    fn extracted_trace_id(kinds: &[PropagatorKind]) -> String {
        let cx = composite(kinds).extract(&disagreeing_headers());
        cx.span().span_context().trace_id().to_string()
    }

    #[test]
    fn the_last_listed_propagator_wins_when_headers_disagree() {
        use PropagatorKind::*;
        assert_eq!(
            extracted_trace_id(&[Tracecontext, Baggage, B3multi]),
            B3_TRACE
        );
        assert_eq!(
            extracted_trace_id(&[B3multi, Baggage, Tracecontext]),
            W3C_TRACE
        );
    }

    #[test]
    fn by_default_traceparent_wins_over_a_disagreeing_b3() {
        // Under Istio's otel provider, x-b3-* pass through the sidecars
        // untouched while traceparent is rewritten at every hop.
        assert_eq!(extracted_trace_id(&DEFAULT_PROPAGATORS), W3C_TRACE);
    }

    #[test]
    fn an_absent_or_invalid_format_does_not_erase_an_earlier_one() {
        use PropagatorKind::*;
        let mut headers = disagreeing_headers();
        headers.insert("x-b3-traceid", "not-hex".parse().unwrap());
        let cx = composite(&[Tracecontext, B3multi, B3]).extract(&headers);
        assert_eq!(cx.span().span_context().trace_id().to_string(), W3C_TRACE);
    }

    #[test]
    fn a_b3_decision_sent_alone_does_not_displace_a_w3c_trace() {
        use PropagatorKind::*;
        let mut headers = disagreeing_headers();
        headers.remove("x-b3-traceid");
        headers.remove("x-b3-spanid");
        headers.insert("b3", "0".parse().unwrap());
        let cx = composite(&[Tracecontext, B3]).extract(&headers);
        assert_eq!(cx.span().span_context().trace_id().to_string(), W3C_TRACE);
        assert!(cx.span().span_context().is_sampled());
    }

    #[test]
    fn writes_every_listed_format_for_the_same_span() {
        use PropagatorKind::*;
        let cx = composite(&[B3multi]).extract(&disagreeing_headers());
        let mut out = HeaderMap::new();
        composite(&[Tracecontext, B3, B3multi]).inject(&cx, &mut out);
        let header = |name: &str| out[name].to_str().unwrap().to_owned();
        // B3 says nothing of the trace id's randomness, so neither may we.
        assert_eq!(
            header("traceparent"),
            format!("00-{B3_TRACE}-a2fb4a1d1a96d312-01")
        );
        assert_eq!(header("b3"), format!("{B3_TRACE}-a2fb4a1d1a96d312-1"));
        assert_eq!(header("x-b3-traceid"), B3_TRACE);
        assert_eq!(header("x-b3-spanid"), "a2fb4a1d1a96d312");
        assert_eq!(header("x-b3-sampled"), "1");
        assert!(out.get("tracestate").is_none(), "no empty tracestate");
    }

    #[test]
    fn none_propagates_nothing() {
        let cx = composite(&[PropagatorKind::None]).extract(&disagreeing_headers());
        assert!(!cx.span().span_context().is_valid());
    }

    #[test]
    fn the_response_headers_name_the_span_in_both_forms() {
        let cx = composite(&[PropagatorKind::B3multi]).extract(&disagreeing_headers());
        let [(timing, timing_value), (response, response_value)] = response_headers(&cx).unwrap();
        assert_eq!(
            (timing.as_str(), response.as_str()),
            ("server-timing", "traceresponse")
        );
        let expected = format!("00-{B3_TRACE}-a2fb4a1d1a96d312-01");
        assert_eq!(response_value, expected.as_str());
        assert_eq!(timing_value, format!("trace;desc={expected}").as_str());
    }
}
