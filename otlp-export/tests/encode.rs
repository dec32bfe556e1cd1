//! The direct encoder against the reference: for arbitrary batches, its bytes
//! equal prost's encoding of `opentelemetry-proto`'s own transform
//! (`group_spans_by_resource_and_scope`), which is what `opentelemetry-otlp`
//! sends. And they decode to a message that holds every span of the batch
//! and encodes again to those same bytes: decoding loses nothing.

use std::{
    borrow::Cow,
    str::FromStr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use opentelemetry::{
    Array, InstrumentationScope, KeyValue, StringValue, Value,
    trace::{Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState},
};
use opentelemetry_proto::{
    tonic::{
        collector::trace::v1::ExportTraceServiceRequest,
        common::v1::any_value::Value as AnyValueKind,
    },
    transform::{
        common::tonic::ResourceAttributesWithSchema,
        trace::tonic::group_spans_by_resource_and_scope,
    },
};
use opentelemetry_sdk::{
    Resource,
    trace::{SpanData, SpanEvents, SpanLinks},
};
use otlp_export::Encoder;
use proptest::{collection::vec, prelude::*};
use prost::Message;

/// What `opentelemetry-otlp` 0.33.1 puts on the wire for `spans`
/// (`OtlpHttpClient::build_trace_export_body`).
fn reference(resource: &Resource, spans: &[SpanData]) -> Vec<u8> {
    let resource_spans = group_spans_by_resource_and_scope(
        spans.to_vec(),
        &ResourceAttributesWithSchema::from(resource),
    );
    ExportTraceServiceRequest { resource_spans }.encode_to_vec()
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z._]{1,12}",
        any::<String>(),
        // Lengths either side of 128, where a varint length grows from one
        // byte to two (and so do the lengths of the messages around it).
        "[a-z]{100,300}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::I64),
        prop_oneof![Just(0.0), Just(-0.0), Just(f64::NAN), any::<f64>()].prop_map(Value::F64),
        text().prop_map(|s| Value::String(s.into())),
        vec(any::<bool>(), 0..4).prop_map(|v| Value::Array(Array::Bool(v))),
        vec(any::<i64>(), 0..4).prop_map(|v| Value::Array(Array::I64(v))),
        vec(any::<f64>(), 0..4).prop_map(|v| Value::Array(Array::F64(v))),
        vec(text(), 0..4).prop_map(|v| Value::Array(Array::String(
            v.into_iter().map(StringValue::from).collect()
        ))),
    ]
}

fn attributes(max: usize) -> impl Strategy<Value = Vec<KeyValue>> {
    vec(
        (text(), value()).prop_map(|(k, v)| KeyValue::new(k, v)),
        0..max,
    )
}

fn time() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        Just(UNIX_EPOCH),
        // Before the epoch: the transform writes 0.
        (1u64..1_000).prop_map(|s| UNIX_EPOCH - Duration::from_secs(s)),
        (0u64..4_000_000_000_000_000_000).prop_map(|n| UNIX_EPOCH + Duration::from_nanos(n)),
    ]
}

fn trace_state() -> impl Strategy<Value = TraceState> {
    prop_oneof![
        Just(TraceState::NONE),
        Just(TraceState::from_str("congo=t61rcWkgMzE").unwrap()),
        Just(TraceState::from_str("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE").unwrap()),
    ]
}

fn span_context() -> impl Strategy<Value = SpanContext> {
    (
        any::<u128>(),
        any::<u64>(),
        any::<u8>(),
        any::<bool>(),
        trace_state(),
    )
        .prop_map(|(trace, span, flags, remote, state)| {
            SpanContext::new(
                TraceId::from(trace),
                SpanId::from(span),
                TraceFlags::new(flags),
                remote,
                state,
            )
        })
}

/// A few scopes, so batches mix them and the grouping is exercised.
fn scope() -> impl Strategy<Value = InstrumentationScope> {
    prop_oneof![
        Just(InstrumentationScope::builder("hello-svc").build()),
        Just(InstrumentationScope::builder("").build()),
        Just(
            InstrumentationScope::builder("tracing-opentelemetry")
                .with_version("0.34.0")
                .with_schema_url("https://opentelemetry.io/schemas/1.37.0")
                .with_attributes([KeyValue::new("scope.kind", 7), KeyValue::new("", "")])
                .build()
        ),
        // Equal to nothing, itself included: every span is a group of its own.
        Just(
            InstrumentationScope::builder("nan")
                .with_attributes([KeyValue::new("x", f64::NAN)])
                .build()
        ),
    ]
}

fn kind() -> impl Strategy<Value = SpanKind> {
    prop_oneof![
        Just(SpanKind::Internal),
        Just(SpanKind::Server),
        Just(SpanKind::Client),
        Just(SpanKind::Producer),
        Just(SpanKind::Consumer),
    ]
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Unset),
        Just(Status::Ok),
        text().prop_map(|d| Status::Error {
            description: Cow::Owned(d)
        }),
    ]
}

prop_compose! {
    fn span()(
        span_context in span_context(),
        parent in prop_oneof![Just(0u64), any::<u64>()],
        parent_span_is_remote in any::<bool>(),
        span_kind in kind(),
        name in text(),
        start_time in time(),
        end_time in time(),
        attributes in attributes(6),
        dropped_attributes_count in prop_oneof![Just(0u32), any::<u32>()],
        events in vec((text(), time(), attributes(3), any::<u32>()), 0..3),
        dropped_events in prop_oneof![Just(0u32), any::<u32>()],
        links in vec((span_context(), attributes(3), any::<u32>()), 0..3),
        dropped_links in prop_oneof![Just(0u32), any::<u32>()],
        status in status(),
        instrumentation_scope in scope(),
    ) -> SpanData {
        SpanData {
            span_context,
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote,
            span_kind,
            name: name.into(),
            start_time,
            end_time,
            attributes,
            dropped_attributes_count,
            events: {
                let mut span_events = SpanEvents::default();
                span_events.events = events
                    .into_iter()
                    .map(|(name, at, attributes, dropped)| Event::new(name, at, attributes, dropped))
                    .collect();
                span_events.dropped_count = dropped_events;
                span_events
            },
            links: {
                let mut span_links = SpanLinks::default();
                span_links.links = links
                    .into_iter()
                    .map(|(context, attributes, dropped)| Link::new(context, attributes, dropped))
                    .collect();
                span_links.dropped_count = dropped_links;
                span_links
            },
            status,
            instrumentation_scope,
        }
    }
}

fn resource() -> impl Strategy<Value = Resource> {
    (
        attributes(5),
        prop_oneof![Just(None), text().prop_map(Some)],
    )
        .prop_map(|(attributes, schema_url)| {
            let builder = Resource::builder_empty();
            match schema_url {
                Some(url) => builder.with_schema_url(attributes, url),
                None => builder.with_attributes(attributes),
            }
            .build()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_bytes_equal_prosts_encoding_of_the_sdks_own_transform(
        resource in resource(),
        batches in vec(vec(span(), 0..6), 1..3),
    ) {
        // One encoder across batches, as the exporter keeps it.
        let mut encoder = Encoder::default();
        for spans in &batches {
            let ours = encoder.export_request(&resource, spans).to_vec();
            prop_assert_eq!(&ours, &reference(&resource, spans));
            let decoded = ExportTraceServiceRequest::decode(ours.as_slice()).expect("our bytes decode");
            // Bit for bit, so a NaN attribute compares equal to itself.
            prop_assert_eq!(decoded.encode_to_vec(), reference(&resource, spans));
            let mut ids: Vec<Vec<u8>> = decoded
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .map(|span| span.span_id.clone())
                .collect();
            let mut sent: Vec<Vec<u8>> = spans
                .iter()
                .map(|span| span.span_context.span_id().to_bytes().to_vec())
                .collect();
            ids.sort_unstable();
            sent.sort_unstable();
            prop_assert_eq!(ids, sent);
        }
    }
}

/// hello-svc's SERVER span for a request whose formatter timed out (answered
/// 504): every scalar value kind, an empty string, a remote parent and an
/// error status.
fn server_span() -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736),
            SpanId::from(0x00f067aa0ba902b7),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        ),
        parent_span_id: SpanId::from(0x53995c3f42cd8ad8),
        parent_span_is_remote: true,
        span_kind: SpanKind::Server,
        name: "GET /sayHello/{name}".into(),
        start_time: UNIX_EPOCH + Duration::from_nanos(1_764_600_000_123_456_789),
        end_time: UNIX_EPOCH + Duration::from_nanos(1_764_600_000_125_000_000),
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.response.status_code", 504),
            KeyValue::new("error", false),
            KeyValue::new("ratio", 0.5),
            KeyValue::new("user_agent.original", ""),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::error("formatter timed out"),
        instrumentation_scope: InstrumentationScope::builder("hello-svc").build(),
    }
}

#[test]
fn a_server_span_with_the_services_attributes_encodes_as_the_reference_does() {
    let resource = Resource::builder()
        .with_service_name("hello-svc")
        .with_attribute(KeyValue::new("service.version", "v1"))
        .build();
    let span = server_span();
    let spans = [span];
    let mut encoder = Encoder::default();
    assert_eq!(
        encoder.export_request(&resource, &spans),
        reference(&resource, &spans).as_slice()
    );
    let decoded =
        ExportTraceServiceRequest::decode(encoder.export_request(&resource, &spans)).unwrap();
    let [decoded] = decoded.resource_spans[0].scope_spans[0].spans.as_slice() else {
        panic!("one span: {decoded:?}");
    };
    assert_eq!(decoded.parent_span_id, 0x53995c3f42cd8ad8u64.to_be_bytes());
    let status = decoded
        .attributes
        .iter()
        .find(|kv| kv.key == "http.response.status_code")
        .and_then(|kv| kv.value.as_ref()?.value.clone());
    assert_eq!(
        status,
        Some(AnyValueKind::IntValue(504)),
        "an int, not a string"
    );
}

#[test]
fn a_buffer_given_back_is_written_again_without_a_new_allocation() {
    let resource = Resource::builder_empty()
        .with_service_name("hello-svc")
        .build();
    let span = server_span();
    let spans = vec![span; 50];
    let mut encoder = Encoder::default();
    let first = encoder.take_request(&resource, &spans);
    assert_eq!(first, reference(&resource, &spans));
    let address = first.as_ptr();
    encoder.give_back(first);
    let second = encoder.take_request(&resource, &spans);
    assert_eq!(second.as_ptr(), address, "the same buffer");
    assert_eq!(second, reference(&resource, &spans));
}
