//! Fuzzes the OTLP encoder (`otlp_export`) with arbitrary span
//! batches: whatever the spans hold, the bytes decode as an
//! `ExportTraceServiceRequest` with every span in it, under its scope.

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::{
    arbitrary::{Result, Unstructured},
    fuzz_target,
};
use opentelemetry::{
    Array, InstrumentationScope, KeyValue, StringValue, Value,
    trace::{Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState},
};
use opentelemetry_sdk::{
    Resource,
    trace::{SpanData, SpanEvents, SpanLinks},
};
use otlp_export::Encoder;
use otlp_receive::decode_request;

fn text(u: &mut Unstructured) -> Result<String> {
    u.arbitrary()
}

fn value(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.int_in_range(0..=7)? {
        0 => Value::Bool(u.arbitrary()?),
        1 => Value::I64(u.arbitrary()?),
        2 => Value::F64(u.arbitrary()?),
        3 => Value::String(text(u)?.into()),
        4 => Value::Array(Array::Bool(u.arbitrary()?)),
        5 => Value::Array(Array::I64(u.arbitrary()?)),
        6 => Value::Array(Array::F64(u.arbitrary()?)),
        _ => {
            let strings: Vec<String> = u.arbitrary()?;
            Value::Array(Array::String(
                strings.into_iter().map(StringValue::from).collect(),
            ))
        }
    })
}

fn attributes(u: &mut Unstructured) -> Result<Vec<KeyValue>> {
    let n = u.int_in_range(0..=6)?;
    (0..n)
        .map(|_| Ok(KeyValue::new(text(u)?, value(u)?)))
        .collect()
}

fn span_context(u: &mut Unstructured) -> Result<SpanContext> {
    Ok(SpanContext::new(
        TraceId::from(u.arbitrary::<u128>()?),
        SpanId::from(u.arbitrary::<u64>()?),
        TraceFlags::new(u.arbitrary()?),
        u.arbitrary()?,
        if u.arbitrary()? {
            TraceState::from_key_value([("congo", "t61rcWkgMzE")]).unwrap_or_default()
        } else {
            TraceState::NONE
        },
    ))
}

fn span(u: &mut Unstructured, scopes: &[InstrumentationScope]) -> Result<SpanData> {
    let mut events = SpanEvents::default();
    for _ in 0..u.int_in_range(0..=3)? {
        let at = UNIX_EPOCH + Duration::from_nanos(u.arbitrary()?);
        events
            .events
            .push(Event::new(text(u)?, at, attributes(u)?, u.arbitrary()?));
    }
    events.dropped_count = u.arbitrary()?;
    let mut links = SpanLinks::default();
    for _ in 0..u.int_in_range(0..=3)? {
        links
            .links
            .push(Link::new(span_context(u)?, attributes(u)?, u.arbitrary()?));
    }
    links.dropped_count = u.arbitrary()?;
    Ok(SpanData {
        span_context: span_context(u)?,
        parent_span_id: SpanId::from(u.arbitrary::<u64>()?),
        parent_span_is_remote: u.arbitrary()?,
        span_kind: match u.int_in_range(0..=4)? {
            0 => SpanKind::Internal,
            1 => SpanKind::Server,
            2 => SpanKind::Client,
            3 => SpanKind::Producer,
            _ => SpanKind::Consumer,
        },
        name: text(u)?.into(),
        start_time: UNIX_EPOCH + Duration::from_nanos(u.arbitrary()?),
        end_time: UNIX_EPOCH + Duration::from_nanos(u.arbitrary()?),
        attributes: attributes(u)?,
        dropped_attributes_count: u.arbitrary()?,
        events,
        links,
        status: match u.int_in_range(0..=2)? {
            0 => Status::Unset,
            1 => Status::Ok,
            _ => Status::error(text(u)?),
        },
        instrumentation_scope: u.choose(scopes)?.clone(),
    })
}

fn batch(u: &mut Unstructured) -> Result<(Resource, Vec<SpanData>)> {
    let resource = Resource::builder_empty()
        .with_schema_url(attributes(u)?, text(u)?)
        .build();
    let scopes = [
        InstrumentationScope::builder(text(u)?).build(),
        InstrumentationScope::builder(text(u)?)
            .with_version(text(u)?)
            .with_schema_url(text(u)?)
            .with_attributes(attributes(u)?)
            .build(),
    ];
    let n = u.int_in_range(0..=8)?;
    let spans = (0..n).map(|_| span(u, &scopes)).collect::<Result<_>>()?;
    Ok((resource, spans))
}

fuzz_target!(|data: &[u8]| {
    let Ok((resource, spans)) = batch(&mut Unstructured::new(data)) else {
        return;
    };
    let mut encoder = Encoder::default();
    let request = decode_request(encoder.export_request(&resource, &spans))
        .expect("the encoder's bytes always decode");
    assert_eq!(request.resource_spans.len(), 1);
    // Each scope once, in the order it first appears, holding its spans in
    // batch order.
    let decoded: Vec<(String, Vec<u8>, String)> = request.resource_spans[0]
        .scope_spans
        .iter()
        .flat_map(|scope| {
            let name = scope
                .scope
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            scope
                .spans
                .iter()
                .map(move |span| (name.clone(), span.span_id.clone(), span.name.clone()))
        })
        .collect();
    // The grouping the SDK's transform makes: a span joins the first group
    // whose scope equals its own, else starts one. A scope holding a NaN
    // attribute equals nothing, itself included, so each such span is a
    // group of its own.
    let mut groups: Vec<(&InstrumentationScope, Vec<&SpanData>)> = Vec::new();
    for span in &spans {
        let scope = &span.instrumentation_scope;
        match groups.iter_mut().find(|(first, _)| *first == scope) {
            Some((_, members)) => members.push(span),
            None => groups.push((scope, vec![span])),
        }
    }
    let expected: Vec<(String, Vec<u8>, String)> = groups
        .iter()
        .flat_map(|(scope, members)| {
            members.iter().map(move |span| {
                // Written even when all zeros, as the transform does (only an
                // invalid parent is left out).
                let id = span.span_context.span_id().to_bytes().to_vec();
                (scope.name().to_owned(), id, span.name.to_string())
            })
        })
        .collect();
    assert_eq!(decoded, expected);
});
