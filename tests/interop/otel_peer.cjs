// An OpenTelemetry JS peer for the interop tests (tests/tests/interop.rs).
//
//   node otel_peer.cjs inject '{"baggage": {"k": "v"}}'  // prints {headers, trace_id, span_id}
//   node otel_peer.cjs extract < '{"headers": {...}}'     // prints {trace_id, span_id, sampled, baggage}
//
// It uses @opentelemetry/core's W3C propagators, as a Node service's SDK
// does by default (OTEL_PROPAGATORS=tracecontext,baggage).
'use strict';
const crypto = require('node:crypto');
const api = require('@opentelemetry/api');
const {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} = require('@opentelemetry/core');

const propagator = new CompositePropagator({
  propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
});

function inject(spec) {
  const span = {
    traceId: crypto.randomBytes(16).toString('hex'),
    spanId: crypto.randomBytes(8).toString('hex'),
    traceFlags: api.TraceFlags.SAMPLED,
  };
  let context = api.trace.setSpanContext(api.ROOT_CONTEXT, span);
  const entries = Object.fromEntries(
    Object.entries(spec.baggage || {}).map(([k, v]) => [k, { value: v }]),
  );
  context = api.propagation.setBaggage(context, api.propagation.createBaggage(entries));
  const headers = {};
  propagator.inject(context, headers, api.defaultTextMapSetter);
  return { headers, trace_id: span.traceId, span_id: span.spanId };
}

function extract(spec) {
  const context = propagator.extract(api.ROOT_CONTEXT, spec.headers, api.defaultTextMapGetter);
  const span = api.trace.getSpanContext(context);
  const bag = api.propagation.getBaggage(context);
  return {
    trace_id: span ? span.traceId : null,
    span_id: span ? span.spanId : null,
    sampled: span ? (span.traceFlags & api.TraceFlags.SAMPLED) === 1 : false,
    baggage: Object.fromEntries((bag ? bag.getAllEntries() : []).map(([k, e]) => [k, e.value])),
  };
}

const mode = process.argv[2];
if (mode === 'inject') {
  console.log(JSON.stringify(inject(JSON.parse(process.argv[3]))));
} else {
  const input = require('node:fs').readFileSync(0, 'utf8');
  console.log(JSON.stringify(extract(JSON.parse(input))));
}
