//! What the caller's trace headers said beyond an OpenTelemetry
//! [`SpanContext`], kept in the
//! [`Context`] so the outbound headers and the
//! sampler can honour it.
//!
//! A `SpanContext` has ids, a `sampled` bit and a
//! [`TraceState`]. The formats
//! carry more: B3's "defer" and "debug" sampling states and its
//! sampling-only `b3: 0`, W3C Level 2's random-trace-id flag, and `tracestate`
//! keys that the SDK's own `TraceState` rejects although the specification
//! allows them (a 14-character system id after `@`). None of these fit in
//! the SDK's trace flags without colliding with another format's meaning, so
//! they travel here, next to the span context they describe.

use std::sync::Arc;

use opentelemetry::{
    Context,
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
};

/// A sampling decision as the caller sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// Record this trace (W3C `sampled` set, B3 `1`).
    Accept,
    /// Do not record it (W3C `sampled` unset, B3 `0`).
    Deny,
    /// No decision: this service decides (B3 with no sampling state).
    Defer,
    /// Record it, and mark it for debugging (B3 `d`, `X-B3-Flags: 1`).
    Debug,
}

impl Sampling {
    /// The W3C `sampled` flag for this decision.
    pub(crate) fn is_sampled(self) -> bool {
        matches!(self, Self::Accept | Self::Debug)
    }
}

/// The caller's trace, as one format read it from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerTrace {
    /// The caller's trace and span, if it sent valid ones. `None` for a
    /// sampling decision sent alone (B3 `b3: 0`).
    pub ids: Option<(TraceId, SpanId)>,
    /// The caller's sampling decision.
    pub sampling: Sampling,
    /// W3C Trace Context Level 2: the caller says the trace id is random.
    pub random_trace_id: bool,
    /// The caller's `tracestate`, validated and normalized; `None` when
    /// absent, empty or discarded as invalid.
    pub tracestate: Option<Arc<str>>,
}

impl CallerTrace {
    /// `cx` continuing this caller's trace: the remote span context (when
    /// there are ids) and this record of what the headers said.
    pub(crate) fn continued_in(self, cx: &Context) -> Context {
        let span = cx.span();
        let (this, remote) = self.resolved(caller_trace(cx), span.span_context());
        match remote {
            Some(remote) => cx.with_remote_span_context(remote).with_value(this),
            None => cx.with_value(this),
        }
    }

    /// Whether this record replaces what an earlier format found, whose
    /// span is `current`: a decision sent alone (B3 `b3: 0`) does not
    /// displace a trace.
    pub(crate) fn displaces(&self, current: &SpanContext) -> bool {
        self.ids.is_some() || !current.is_valid()
    }

    /// What [`continued_in`](Self::continued_in) puts in a context whose
    /// record is `earlier` and whose span is `current`: this record merged
    /// with the earlier one, and the remote span context to continue when
    /// it is not `current` already.
    pub(crate) fn resolved(
        self,
        earlier: Option<&CallerTrace>,
        current: &SpanContext,
    ) -> (Self, Option<SpanContext>) {
        let this = self.merged_with(earlier);
        let Some((trace_id, span_id)) = this.ids else {
            return (this, None);
        };
        let remote = this.remote_span(trace_id, span_id);
        // An earlier format may have read this very span (hello-svc sends B3
        // and `traceparent` for one span): then only the record changes.
        let remote = (*current != remote).then_some(remote);
        (this, remote)
    }

    /// This record, enriched by what an earlier format said of the *same*
    /// span: we write W3C and B3 for one span, and whichever is read last
    /// must not lose what only the other can say (the random-trace-id flag
    /// and `tracestate`; B3's "debug" and "defer", when the W3C `sampled`
    /// bit agrees with them).
    fn merged_with(mut self, earlier: Option<&CallerTrace>) -> Self {
        let Some(earlier) = earlier.filter(|e| e.ids.is_some() && e.ids == self.ids) else {
            return self;
        };
        self.random_trace_id |= earlier.random_trace_id;
        if self.tracestate.is_none() {
            self.tracestate = earlier.tracestate.clone();
        }
        self.sampling = match (self.sampling, earlier.sampling) {
            (Sampling::Accept, Sampling::Debug) => Sampling::Debug,
            (Sampling::Deny, Sampling::Defer) => Sampling::Defer,
            (mine, _) => mine,
        };
        self
    }

    fn remote_span(&self, trace_id: TraceId, span_id: SpanId) -> SpanContext {
        let flags = if self.sampling.is_sampled() {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        // The SDK's `TraceState` refuses some valid keys; what it refuses
        // still travels in `self.tracestate`.
        let trace_state = self
            .tracestate
            .as_deref()
            .and_then(|header| header.parse().ok())
            .unwrap_or(TraceState::NONE);
        SpanContext::new(trace_id, span_id, flags, true, trace_state)
    }
}

/// What `cx`'s caller sent, if a propagator read anything.
pub fn caller_trace(cx: &Context) -> Option<&CallerTrace> {
    cx.get::<CallerTrace>()
}

fn is_callers_span(caller: &CallerTrace, span: &SpanContext) -> bool {
    caller.ids == Some((span.trace_id(), span.span_id()))
}

/// The caller's decision for a span whose parent is `parent_cx`, when that
/// parent is the caller's own span or the caller sent a decision alone; else
/// `None`, and the parent's flags decide as usual.
pub fn caller_sampling(parent_cx: &Context) -> Option<Sampling> {
    let caller = caller_trace(parent_cx)?;
    let span = parent_cx.span();
    let parent = span.span_context();
    let applies = if parent.is_valid() {
        parent.is_remote() && is_callers_span(caller, parent)
    } else {
        caller.ids.is_none()
    };
    applies.then_some(caller.sampling)
}

/// The sampling state to write for `span` in `cx`: the caller's own state
/// when `span` is the caller's span passed through unchanged (no span of
/// ours, as with the SDK disabled), so "defer" stays "defer"; otherwise the
/// decision `span` carries, kept as "debug" when the caller asked for it.
pub(crate) fn outbound_sampling(cx: &Context, span: &SpanContext) -> Sampling {
    match caller_trace(cx) {
        Some(caller) if is_callers_span(caller, span) => caller.sampling,
        Some(caller)
            if caller.sampling == Sampling::Debug
                && caller
                    .ids
                    .is_some_and(|(trace, _)| trace == span.trace_id())
                && span.is_sampled() =>
        {
            Sampling::Debug
        }
        _ if span.is_sampled() => Sampling::Accept,
        _ => Sampling::Deny,
    }
}

/// The W3C Level 2 random-trace-id flag for `span` in `cx`: as the caller
/// sent it when the trace is the caller's, and set when the trace started
/// here, since the SDK draws every new trace id at random.
pub(crate) fn outbound_random_trace_id(cx: &Context, span: &SpanContext) -> bool {
    match caller_trace(cx).and_then(|caller| caller.ids.map(|ids| (caller, ids))) {
        Some((caller, (trace_id, _))) if trace_id == span.trace_id() => caller.random_trace_id,
        _ => true,
    }
}

/// The `tracestate` to write for `span` in `cx`: the span's own when the SDK
/// holds one, else the caller's when the trace is the caller's.
pub(crate) fn outbound_tracestate(cx: &Context, span: &SpanContext) -> Option<String> {
    let own = span.trace_state().header();
    if !own.is_empty() {
        return Some(own);
    }
    caller_trace(cx)
        .filter(|caller| {
            caller
                .ids
                .is_some_and(|(trace_id, _)| trace_id == span.trace_id())
        })
        .and_then(|caller| caller.tracestate.as_deref().map(str::to_owned))
}
