"""An OpenTelemetry Python peer for the interop tests (tests/tests/interop.rs).

    otel_peer.py inject '{"baggage": {"k": "v"}}'   # prints {"headers", "trace_id", "span_id"}
    otel_peer.py extract < '{"headers": {...}}'      # prints {"trace_id", "span_id", "sampled", "baggage"}

It uses only opentelemetry-api's own W3C propagators, as an instrumented
Python service would by default (OTEL_PROPAGATORS=tracecontext,baggage).
"""
import json
import random
import sys

from opentelemetry import baggage, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

PROPAGATOR = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


def inject(spec):
    span = trace.SpanContext(
        trace_id=random.getrandbits(128) or 1,
        span_id=random.getrandbits(64) or 1,
        is_remote=False,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    context = trace.set_span_in_context(trace.NonRecordingSpan(span))
    for key, value in spec.get("baggage", {}).items():
        context = baggage.set_baggage(key, value, context)
    headers = {}
    PROPAGATOR.inject(headers, context)
    return {
        "headers": headers,
        "trace_id": format(span.trace_id, "032x"),
        "span_id": format(span.span_id, "016x"),
    }


def extract(spec):
    context = PROPAGATOR.extract(spec["headers"])
    span = trace.get_current_span(context).get_span_context()
    return {
        "trace_id": format(span.trace_id, "032x") if span.is_valid else None,
        "span_id": format(span.span_id, "016x") if span.is_valid else None,
        "sampled": span.trace_flags.sampled,
        "baggage": dict(baggage.get_all(context)),
    }


if __name__ == "__main__":
    mode = sys.argv[1]
    spec = json.loads(sys.argv[2]) if mode == "inject" else json.load(sys.stdin)
    print(json.dumps(inject(spec) if mode == "inject" else extract(spec)))
