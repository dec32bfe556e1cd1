//! The OTLP wire format of the services' export path: the request body
//! written straight from the SDK's spans ([`Encoder`]), and what the
//! collector's answer says was rejected ([`partial_success`]).
//!
//! `opentelemetry-otlp` copies every [`SpanData`] field into
//! `opentelemetry-proto` structs, encodes those with prost, then frees them:
//! about 12,500 instructions a span, most of a request's export cost. This
//! writes the same bytes from `&SpanData` into a reused buffer, with no
//! intermediate structs (opentelemetry-rust issues #3368 and #3123 track the
//! copies upstream).
//!
//! The bytes equal prost's encoding of `opentelemetry-proto`'s own transform
//! (`group_spans_by_resource_and_scope`, 0.33.1) of the same batch: fields in
//! tag order (prost-derive sorts them so), proto3 scalars left out when zero,
//! every `Some` message and every oneof written even when empty. The
//! property test in `tests/encode.rs` holds the two to that.
//!
//! A nested message's length comes before its body, and is not known until
//! the body is written: one byte is reserved for it, and the body is moved
//! along in the rare case its length needs more (128 bytes and over).

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::{
    Array, InstrumentationScope, KeyValue, Value,
    trace::{SpanContext, SpanId, SpanKind, Status},
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_sdk::{Resource, trace::SpanData};
use prost::Message;

/// What an `ExportTraceServiceResponse` body says was rejected: the count
/// and the collector's message, or `None` for a full success (or a body that
/// is not such a response, which OTLP/HTTP allows to be empty).
pub fn partial_success(response: &[u8]) -> Option<(i64, String)> {
    let partial = ExportTraceServiceResponse::decode(response)
        .ok()?
        .partial_success?;
    (partial.rejected_spans > 0 || !partial.error_message.is_empty())
        .then_some((partial.rejected_spans, partial.error_message))
}

/// Protobuf wire types used here.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// OTLP's `SpanFlags`: the parent's remoteness is known, and it is remote.
const CONTEXT_HAS_IS_REMOTE: u32 = 0x100;
const CONTEXT_IS_REMOTE: u32 = 0x200;

/// Writes `ExportTraceServiceRequest` protobuf, reusing its buffers from one
/// batch to the next.
#[derive(Debug, Default)]
pub struct Encoder {
    out: Vec<u8>,
    /// For each span of the batch, the index of the first span with its
    /// instrumentation scope.
    scope_of: Vec<usize>,
    /// The indexes of the spans that first carry each scope, in order.
    firsts: Vec<usize>,
}

impl Encoder {
    /// The request for `spans`, all from `resource`: one `ResourceSpans`, its
    /// spans grouped into one `ScopeSpans` for each instrumentation scope,
    /// in the order each scope first appears; within a scope the spans keep
    /// their batch order, as the transform does.
    pub fn export_request(&mut self, resource: &Resource, spans: &[SpanData]) -> &[u8] {
        self.group_by_scope(spans);
        let Self {
            out,
            scope_of,
            firsts,
        } = self;
        out.clear();
        message(out, 1, |out| {
            message(out, 1, |out| {
                for (key, value) in resource.iter() {
                    key_value(out, 1, key.as_str(), value);
                }
            });
            for &first in firsts.iter() {
                let scope = &spans[first].instrumentation_scope;
                message(out, 2, |out| {
                    message(out, 1, |out| instrumentation_scope(out, scope));
                    for (span, _) in spans[first..]
                        .iter()
                        .zip(&scope_of[first..])
                        .filter(|(_, of)| **of == first)
                    {
                        message(out, 2, |out| encode_span(out, span));
                    }
                    string(out, 3, scope.schema_url().unwrap_or_default());
                });
            }
            string(out, 3, resource.schema_url().unwrap_or_default());
        });
        out
    }

    /// [`Encoder::export_request`], handed over as an owned buffer (to send
    /// without a copy); [`Encoder::give_back`] returns it for the next batch.
    pub fn take_request(&mut self, resource: &Resource, spans: &[SpanData]) -> Vec<u8> {
        self.export_request(resource, spans);
        std::mem::take(&mut self.out)
    }

    /// Keeps `buffer` (emptied) for the next batch, if it is larger than the
    /// one held.
    pub fn give_back(&mut self, mut buffer: Vec<u8>) {
        if buffer.capacity() > self.out.capacity() {
            buffer.clear();
            self.out = buffer;
        }
    }

    fn group_by_scope(&mut self, spans: &[SpanData]) {
        self.scope_of.clear();
        self.firsts.clear();
        for (i, span) in spans.iter().enumerate() {
            let scope = &span.instrumentation_scope;
            // Nearly always the previous span's scope.
            let first = match self.scope_of.last() {
                Some(&previous) if same_scope(&spans[previous].instrumentation_scope, scope) => {
                    previous
                }
                _ => match self
                    .firsts
                    .iter()
                    .find(|&&first| same_scope(&spans[first].instrumentation_scope, scope))
                {
                    Some(&first) => first,
                    None => {
                        self.firsts.push(i);
                        i
                    }
                },
            };
            self.scope_of.push(first);
        }
    }
}

/// Whether two spans' scopes are equal, answered without comparing text
/// when both copy one scope whose name and version are static (a tracer's
/// usual case).
fn same_scope(a: &InstrumentationScope, b: &InstrumentationScope) -> bool {
    let same_text = |x: &str, y: &str| std::ptr::eq(x, y);
    let quick = same_text(a.name(), b.name())
        && match (a.version(), b.version()) {
            (Some(x), Some(y)) => same_text(x, y),
            (x, y) => x == y,
        }
        && a.schema_url().is_none()
        && b.schema_url().is_none()
        && a.attributes().next().is_none()
        && b.attributes().next().is_none();
    quick || a == b
}

/// `InstrumentationScope`: name, version and attributes.
fn instrumentation_scope(out: &mut Vec<u8>, scope: &InstrumentationScope) {
    string(out, 1, scope.name());
    string(out, 2, scope.version().unwrap_or_default());
    for attribute in scope.attributes() {
        key_value(out, 3, attribute.key.as_str(), &attribute.value);
    }
}

/// `Span`, fields in tag order (`flags`, tag 16, last).
fn encode_span(out: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    bytes(out, 1, &context.trace_id().to_bytes());
    bytes(out, 2, &context.span_id().to_bytes());
    string(out, 3, &context.trace_state().header());
    if span.parent_span_id != SpanId::INVALID {
        bytes(out, 4, &span.parent_span_id.to_bytes());
    }
    string(out, 5, &span.name);
    uint(out, 6, span_kind(&span.span_kind));
    fixed64(out, 7, nanos(span.start_time));
    fixed64(out, 8, nanos(span.end_time));
    attributes(out, 9, &span.attributes);
    uint(out, 10, span.dropped_attributes_count.into());
    for event in span.events.iter() {
        message(out, 11, |out| {
            fixed64(out, 1, nanos(event.timestamp));
            string(out, 2, &event.name);
            attributes(out, 3, &event.attributes);
            uint(out, 4, event.dropped_attributes_count.into());
        });
    }
    uint(out, 12, span.events.dropped_count.into());
    for link in span.links.iter() {
        message(out, 13, |out| {
            let context = &link.span_context;
            bytes(out, 1, &context.trace_id().to_bytes());
            bytes(out, 2, &context.span_id().to_bytes());
            string(out, 3, &context.trace_state().header());
            attributes(out, 4, &link.attributes);
            uint(out, 5, link.dropped_attributes_count.into());
            fixed32(out, 6, flags(context, context.is_remote()));
        });
    }
    uint(out, 14, span.links.dropped_count.into());
    message(out, 15, |out| {
        if let Status::Error { description } = &span.status {
            string(out, 2, description);
        }
        uint(out, 3, status_code(&span.status));
    });
    fixed32(
        out,
        16,
        flags(&span.span_context, span.parent_span_is_remote),
    );
}

/// The W3C trace flags plus OTLP's two remote-parent bits.
fn flags(context: &SpanContext, remote: bool) -> u32 {
    let mut flags = u32::from(context.trace_flags().to_u8()) | CONTEXT_HAS_IS_REMOTE;
    if remote {
        flags |= CONTEXT_IS_REMOTE;
    }
    flags
}

/// OTLP's `SpanKind` numbers (0 is "unspecified", never sent).
fn span_kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// OTLP's `StatusCode` numbers.
fn status_code(status: &Status) -> u64 {
    match status {
        Status::Unset => 0,
        Status::Ok => 1,
        Status::Error { .. } => 2,
    }
}

/// Nanoseconds since the Unix epoch; 0 for a time before it, as the
/// transform does.
fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

fn attributes(out: &mut Vec<u8>, field: u32, attributes: &[KeyValue]) {
    for attribute in attributes {
        key_value(out, field, attribute.key.as_str(), &attribute.value);
    }
}

/// `KeyValue`: the key, and the value as an `AnyValue` (always present).
///
/// Attributes are most of a span's bytes, and nearly all are scalars whose
/// encoded length is known before writing: those go out in one pass, with
/// no length to fill in afterwards.
fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    let any_len = match value {
        Value::String(s) => 1 + varint_len(s.as_str().len() as u64) + s.as_str().len(),
        Value::Bool(_) => 2,
        Value::I64(i) => 1 + varint_len(*i as u64),
        Value::F64(_) => 9,
        _ => {
            return message(out, field, |out| {
                string(out, 1, key);
                message(out, 2, |out| any_value(out, value));
            });
        }
    };
    let key_len = if key.is_empty() {
        0
    } else {
        1 + varint_len(key.len() as u64) + key.len()
    };
    let value_len = 1 + varint_len(any_len as u64) + any_len;
    self::key(out, field, LEN);
    varint(out, (key_len + value_len) as u64);
    string(out, 1, key);
    self::key(out, 2, LEN);
    varint(out, any_len as u64);
    any_value(out, value);
}

/// Bytes `value` takes as a varint.
fn varint_len(value: u64) -> usize {
    // One byte for each started group of 7 bits; zero takes one.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// `AnyValue`'s oneof: written even when it holds a zero or an empty string.
fn any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => always_bytes(out, 1, s.as_str().as_bytes()),
        Value::Bool(b) => always_varint(out, 2, u64::from(*b)),
        Value::I64(i) => always_varint(out, 3, *i as u64),
        Value::F64(f) => always_fixed64(out, 4, f.to_bits()),
        Value::Array(array) => message(out, 5, |out| match array {
            Array::Bool(values) => {
                for b in values {
                    message(out, 1, |out| always_varint(out, 2, u64::from(*b)));
                }
            }
            Array::I64(values) => {
                for i in values {
                    message(out, 1, |out| always_varint(out, 3, *i as u64));
                }
            }
            Array::F64(values) => {
                for f in values {
                    message(out, 1, |out| always_fixed64(out, 4, f.to_bits()));
                }
            }
            Array::String(values) => {
                for s in values {
                    message(out, 1, |out| always_bytes(out, 1, s.as_str().as_bytes()));
                }
            }
            // A kind of array added after 0.33: an empty array, not a panic.
            _ => {}
        }),
        // A kind of value added after 0.33: an empty AnyValue, not a panic.
        _ => {}
    }
}

fn key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire_type)));
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A proto3 integer field: left out when zero.
fn uint(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        always_varint(out, field, value);
    }
}

fn always_varint(out: &mut Vec<u8>, field: u32, value: u64) {
    key(out, field, VARINT);
    varint(out, value);
}

fn fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        always_fixed64(out, field, value);
    }
}

fn always_fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    key(out, field, FIXED64);
    out.extend_from_slice(&value.to_le_bytes());
}

fn fixed32(out: &mut Vec<u8>, field: u32, value: u32) {
    if value != 0 {
        key(out, field, FIXED32);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// A proto3 string field: left out when empty.
fn string(out: &mut Vec<u8>, field: u32, value: &str) {
    bytes(out, field, value.as_bytes());
}

/// A proto3 bytes field: left out when empty.
fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    if !value.is_empty() {
        always_bytes(out, field, value);
    }
}

fn always_bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    key(out, field, LEN);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// A present message field: its key, its length, then what `body` writes.
fn message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    key(out, field, LEN);
    let at = out.len();
    out.push(0);
    body(out);
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
    } else {
        let mut prefix = [0u8; 10];
        let mut n = 0;
        let mut value = len as u64;
        while value >= 0x80 {
            prefix[n] = value as u8 | 0x80;
            value >>= 7;
            n += 1;
        }
        prefix[n] = value as u8;
        n += 1;
        out.splice(at..at + 1, prefix[..n].iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;

    use super::*;

    #[test]
    fn a_partial_success_is_read_and_a_full_one_is_not() {
        let response = |rejected_spans, error_message: &str| {
            ExportTraceServiceResponse {
                partial_success: Some(ExportTracePartialSuccess {
                    rejected_spans,
                    error_message: error_message.into(),
                }),
            }
            .encode_to_vec()
        };
        assert_eq!(
            partial_success(&response(3, "too old")),
            Some((3, "too old".into()))
        );
        assert_eq!(partial_success(&response(0, "")), None);
        assert_eq!(partial_success(&[]), None);
        assert_eq!(partial_success(&[0xff, 0xff]), None);
    }
}
