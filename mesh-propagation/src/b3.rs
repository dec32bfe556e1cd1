//! Zipkin B3 (openzipkin/b3-propagation), single header `b3` and multiple
//! `X-B3-*` headers, with all four sampling states.
//!
//! It replaces `opentelemetry-propagator-b3`, whose "deferred" and "debug"
//! states are trace-flag bits 0x02 and 0x04: 0x02 is W3C Level 2's
//! random-trace-id flag, so a W3C caller's random trace would go out as a
//! B3 "defer" and lose its sampling decision. Here those states travel in
//! [`CallerTrace`] instead, and the flags keep their W3C meaning.

use std::sync::LazyLock;

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
    trace::{SpanId, TraceContextExt, TraceId},
};

use super::{
    caller_trace::{CallerTrace, Sampling, caller_trace, outbound_sampling},
    header_lines::{Field, Fields, Sink, Value, trim_ows},
    hex,
};

const SINGLE: Field = Field::B3;
const TRACE_ID: Field = Field::B3TraceId;
const SPAN_ID: Field = Field::B3SpanId;
const PARENT_SPAN_ID: Field = Field::B3ParentSpanId;
const SAMPLED: Field = Field::B3Sampled;
const FLAGS: Field = Field::B3Flags;
static SINGLE_FIELDS: LazyLock<[String; 1]> = LazyLock::new(|| [SINGLE.name().to_owned()]);
/// The multiple-header form's headers, in the order B3 lists them.
pub(crate) const MULTI_HEADERS: [&str; 5] = [
    TRACE_ID.name(),
    SPAN_ID.name(),
    PARENT_SPAN_ID.name(),
    SAMPLED.name(),
    FLAGS.name(),
];
static MULTI_FIELDS: LazyLock<[String; 5]> = LazyLock::new(|| MULTI_HEADERS.map(str::to_owned));

/// Which B3 form is written; both are always read, `b3` first (the
/// specification: "the single-header variant takes precedence").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum B3Encoding {
    /// `b3: {TraceId}-{SpanId}-{SamplingState}`.
    Single,
    /// `X-B3-TraceId`, `X-B3-SpanId`, and `X-B3-Sampled` or `X-B3-Flags`.
    Multi,
}

/// The B3 propagator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct B3 {
    encoding: B3Encoding,
}

impl B3 {
    /// A propagator writing `encoding`.
    pub(crate) fn new(encoding: B3Encoding) -> Self {
        Self { encoding }
    }
}

/// A 16- or 32-digit lower-hex trace id, not all zeros; a 64-bit id is
/// carried as the 128-bit id with its high half zero.
pub(crate) fn parse_trace_id(field: &str) -> Option<TraceId> {
    let id = match field.len() {
        16 => u128::from(hex::parse_u64(field.as_bytes())?),
        32 => hex::parse_u128(field.as_bytes())?,
        _ => return None,
    };
    Some(TraceId::from(id)).filter(|id| *id != TraceId::INVALID)
}

/// A 16-digit lower-hex span id, not all zeros.
pub(crate) fn parse_span_id(field: &str) -> Option<SpanId> {
    if field.len() != 16 {
        return None;
    }
    Some(SpanId::from(hex::parse_u64(field.as_bytes())?)).filter(|id| *id != SpanId::INVALID)
}

fn single_state(field: &str) -> Option<Sampling> {
    match field {
        "1" => Some(Sampling::Accept),
        "0" => Some(Sampling::Deny),
        "d" => Some(Sampling::Debug),
        _ => None,
    }
}

/// Parses a `b3` value: `{TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]`,
/// or a sampling state alone. `None` when it is malformed.
pub(crate) fn parse_single(value: &str) -> Option<CallerTrace> {
    let fields: Vec<&str> = trim_ows(value).split('-').collect();
    let ids = |trace: &str, span: &str| Some((parse_trace_id(trace)?, parse_span_id(span)?));
    let (ids, sampling) = match fields.as_slice() {
        [state] => (None, single_state(state)?),
        [trace, span] => (Some(ids(trace, span)?), Sampling::Defer),
        [trace, span, state] => (Some(ids(trace, span)?), single_state(state)?),
        [trace, span, state, parent] => {
            parse_span_id(parent)?;
            (Some(ids(trace, span)?), single_state(state)?)
        }
        _ => return None,
    };
    Some(from_b3(ids, sampling))
}

/// What B3 can say: ids and a sampling state, nothing of W3C's.
fn from_b3(ids: Option<(TraceId, SpanId)>, sampling: Sampling) -> CallerTrace {
    CallerTrace {
        ids,
        sampling,
        random_trace_id: false,
        tracestate: None,
    }
}

/// Reads the `X-B3-*` headers (the first line of each, as the specification
/// says). `None` when there is nothing valid to read.
pub(crate) fn parse_multi(extractor: &(impl Fields + ?Sized)) -> Option<CallerTrace> {
    let debug = extractor.first(FLAGS).map(trim_ows) == Some("1");
    let sampled = match extractor.first(SAMPLED).map(trim_ows) {
        None => None,
        // `true`/`false` predate the specification; it allows accepting them.
        Some("1" | "true") => Some(Sampling::Accept),
        Some("0" | "false") => Some(Sampling::Deny),
        Some(_) => return None,
    };
    let sampling = match (debug, sampled) {
        (true, _) => Sampling::Debug,
        (false, Some(decision)) => decision,
        (false, None) => Sampling::Defer,
    };
    let ids = match (extractor.first(TRACE_ID), extractor.first(SPAN_ID)) {
        (None, None) if sampling != Sampling::Defer => None,
        (Some(trace), Some(span)) => {
            if let Some(parent) = extractor.first(PARENT_SPAN_ID) {
                parse_span_id(trim_ows(parent))?;
            }
            Some((
                parse_trace_id(trim_ows(trace))?,
                parse_span_id(trim_ows(span))?,
            ))
        }
        _ => return None,
    };
    Some(from_b3(ids, sampling))
}

/// What the request's B3 headers say: the single header when it is valid
/// (it "takes precedence"), else the multiple headers.
pub(crate) fn read(extractor: &(impl Fields + ?Sized)) -> Option<CallerTrace> {
    extractor
        .first(SINGLE)
        .and_then(parse_single)
        .or_else(|| parse_multi(extractor))
}

impl B3 {
    /// Writes `cx`'s span and sampling state in this propagator's form.
    pub(crate) fn write(&self, cx: &Context, out: &mut (impl Sink + ?Sized)) {
        let span = cx.span();
        let span = span.span_context();
        if !span.is_valid() {
            // A decision sent alone (`b3: 0`), passed on with no span of ours.
            if let Some(caller) = caller_trace(cx).filter(|c| c.ids.is_none()) {
                match (self.encoding, caller.sampling) {
                    (_, Sampling::Defer) => {}
                    (B3Encoding::Single, state) => out.put(SINGLE, state_value(state)),
                    (B3Encoding::Multi, Sampling::Debug) => out.put(FLAGS, Value::Static("1")),
                    (B3Encoding::Multi, state) => out.put(SAMPLED, state_value(state)),
                }
            }
            return;
        }
        let sampling = outbound_sampling(cx, span);
        match self.encoding {
            B3Encoding::Single => {
                let mut value = String::with_capacity(53);
                hex::push_trace_id(&mut value, span.trace_id());
                value.push('-');
                hex::push_span_id(&mut value, span.span_id());
                if sampling != Sampling::Defer {
                    value.push('-');
                    value.push_str(state_char(sampling));
                }
                out.put(SINGLE, Value::Owned(value));
            }
            B3Encoding::Multi => {
                out.put(TRACE_ID, Value::Owned(hex::trace_id(span.trace_id())));
                out.put(SPAN_ID, Value::Owned(hex::span_id(span.span_id())));
                match sampling {
                    Sampling::Defer => {}
                    // "Debug implies an accept decision, so don't also send
                    // the X-B3-Sampled header."
                    Sampling::Debug => out.put(FLAGS, Value::Static("1")),
                    state => out.put(SAMPLED, state_value(state)),
                }
            }
        }
    }
}

impl TextMapPropagator for B3 {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.write(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match read(extractor) {
            Some(caller) if caller.displaces(cx.span().span_context()) => caller.continued_in(cx),
            _ => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        match self.encoding {
            B3Encoding::Single => FieldIter::new(SINGLE_FIELDS.as_slice()),
            B3Encoding::Multi => FieldIter::new(MULTI_FIELDS.as_slice()),
        }
    }
}

fn state_value(sampling: Sampling) -> Value {
    Value::Static(state_char(sampling))
}

fn state_char(sampling: Sampling) -> &'static str {
    match sampling {
        Sampling::Accept => "1",
        Sampling::Deny => "0",
        Sampling::Debug => "d",
        Sampling::Defer => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_header_reads_every_documented_shape() {
        let trace = "80f198ee56343ba864fe8b2a57d3eff7";
        let full = parse_single(&format!("{trace}-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")).unwrap();
        assert_eq!(full.sampling, Sampling::Accept);
        assert_eq!(full.ids.unwrap().0.to_string(), trace);
        assert_eq!(
            parse_single(&format!("{trace}-e457b5a2e4d86bd1"))
                .unwrap()
                .sampling,
            Sampling::Defer
        );
        assert_eq!(parse_single("0").unwrap().ids, None, "a deny sent alone");
        assert!(parse_single(&format!("{trace}-e457b5a2e4d86bd1-x")).is_none());
        assert!(parse_single(&format!("{trace}-E457B5A2E4D86BD1-1")).is_none());
    }
}
