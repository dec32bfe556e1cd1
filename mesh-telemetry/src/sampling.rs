//! The sampler `OTEL_TRACES_SAMPLER` names, extended to honour what B3
//! callers can say and a [`SpanContext`](opentelemetry::trace::SpanContext)
//! cannot hold.
//!
//! The SDK's parent-based samplers read only the parent's `sampled` flag.
//! B3 has two more states: "defer" (the caller leaves the decision to this
//! service: the root sampler decides, not a "not sampled" parent) and a
//! decision sent alone without ids (`b3: 0` starts a trace here, but it is
//! not recorded). Both come from [`caller_sampling`].

use opentelemetry::{
    Context, KeyValue,
    trace::{Link, SpanKind, TraceContextExt, TraceId, TraceState},
};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, SamplingResult, ShouldSample};

use mesh_propagation::caller_trace::{Sampling, caller_sampling};

use crate::config::SamplerKind;

/// The configured sampler.
#[derive(Debug, Clone)]
pub(crate) struct MeshSampler {
    /// Decides traces that start here (and, when parent-based, deferred ones).
    root: Sampler,
    /// `Some(ParentBased(root))` for the `parentbased_*` samplers.
    parent_based: Option<Sampler>,
}

impl MeshSampler {
    /// The sampler for `OTEL_TRACES_SAMPLER=kind` and its `ratio` argument.
    pub(crate) fn new(kind: SamplerKind, ratio: f64) -> Self {
        let (root, parent_based) = match kind {
            SamplerKind::AlwaysOn => (Sampler::AlwaysOn, false),
            SamplerKind::AlwaysOff => (Sampler::AlwaysOff, false),
            SamplerKind::TraceIdRatio => (Sampler::TraceIdRatioBased(ratio), false),
            SamplerKind::ParentbasedAlwaysOn => (Sampler::AlwaysOn, true),
            SamplerKind::ParentbasedAlwaysOff => (Sampler::AlwaysOff, true),
            SamplerKind::ParentbasedTraceIdRatio => (Sampler::TraceIdRatioBased(ratio), true),
        };
        Self {
            parent_based: parent_based.then(|| Sampler::ParentBased(Box::new(root.clone()))),
            root,
        }
    }
}

fn decided(decision: SamplingDecision, parent_context: Option<&Context>) -> SamplingResult {
    SamplingResult {
        decision,
        attributes: Vec::new(),
        trace_state: parent_context
            .map(|cx| cx.span().span_context().trace_state().clone())
            .unwrap_or(TraceState::NONE),
    }
}

impl ShouldSample for MeshSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let sampler = match (&self.parent_based, parent_context.and_then(caller_sampling)) {
            (None, _) | (Some(_), Some(Sampling::Defer)) => &self.root,
            (Some(_), Some(Sampling::Accept | Sampling::Debug)) => {
                return decided(SamplingDecision::RecordAndSample, parent_context);
            }
            (Some(_), Some(Sampling::Deny)) => {
                return decided(SamplingDecision::Drop, parent_context);
            }
            (Some(parent_based), None) => parent_based,
        };
        sampler.should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use mesh_propagation::{DEFAULT_PROPAGATORS, composite};

    fn decision(kind: SamplerKind, headers: &[(&'static str, &str)]) -> SamplingDecision {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().unwrap());
        }
        let cx = composite(&DEFAULT_PROPAGATORS).extract(&map);
        MeshSampler::new(kind, 1.0)
            .should_sample(
                Some(&cx),
                TraceId::from(1),
                "GET /",
                &SpanKind::Server,
                &[],
                &[],
            )
            .decision
    }

    const TRACE: &str = "463ac35c9f6413ad48485a3953bb6124";

    #[test]
    fn a_deferred_b3_decision_is_made_by_the_root_sampler() {
        let deferred = [("x-b3-traceid", TRACE), ("x-b3-spanid", "a2fb4a1d1a96d312")];
        assert_eq!(
            decision(SamplerKind::ParentbasedAlwaysOn, &deferred),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(
            decision(SamplerKind::ParentbasedAlwaysOff, &deferred),
            SamplingDecision::Drop
        );
    }

    #[test]
    fn a_decision_sent_alone_is_followed() {
        assert_eq!(
            decision(SamplerKind::ParentbasedAlwaysOn, &[("x-b3-sampled", "0")]),
            SamplingDecision::Drop
        );
        assert_eq!(
            decision(SamplerKind::ParentbasedAlwaysOff, &[("x-b3-sampled", "1")]),
            SamplingDecision::RecordAndSample
        );
    }

    #[test]
    fn debug_is_recorded_and_a_plain_parent_decides_as_usual() {
        let debug = [
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ("x-b3-flags", "1"),
        ];
        assert_eq!(
            decision(SamplerKind::ParentbasedAlwaysOff, &debug),
            SamplingDecision::RecordAndSample
        );
        let denied = [(
            "traceparent",
            "00-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-00",
        )];
        assert_eq!(
            decision(SamplerKind::ParentbasedAlwaysOn, &denied),
            SamplingDecision::Drop
        );
        assert_eq!(
            decision(SamplerKind::AlwaysOn, &denied),
            SamplingDecision::RecordAndSample,
            "not parent-based: the caller is not asked"
        );
    }
}
