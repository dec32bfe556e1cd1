//! OTLP trace export requests received, as a collector reads them: decoded
//! into flat spans ([`ReceivedSpan`]), and [`http_receiver`], the one
//! OTLP/HTTP endpoint. The test receiver, the benchmark's sinks and the
//! trace viewer share both; the services ship none of it (they encode with
//! `otlp-export`).

use std::{borrow::Cow, collections::HashMap, io::Read, time::Duration};

pub mod http_receiver;

pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
pub use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use prost::Message;

/// One received span, flattened. Ids are lower-case hex.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The resource's `service.name`.
    pub service_name: String,
    /// All resource attributes, as strings.
    pub resource: HashMap<String, String>,
    /// The instrumentation scope's name and version.
    pub scope: (String, String),
    /// The span's name.
    pub name: String,
    /// SERVER, CLIENT, INTERNAL...
    pub kind: SpanKind,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits, or empty for a root span.
    pub parent_span_id: String,
    /// Attributes, with their OTLP types.
    pub attributes: HashMap<String, AttrValue>,
    /// The span status.
    pub status: StatusCode,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// End, in nanoseconds since the Unix epoch.
    pub end_unix_nano: u64,
}

/// An attribute value as it arrived, its OTLP type kept: the semantic
/// conventions type `http.response.status_code` and `server.port` as ints.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// `string_value`.
    Str(String),
    /// `int_value`.
    Int(i64),
    /// `bool_value`.
    Bool(bool),
    /// `double_value`.
    Double(f64),
    /// Any other kind (arrays, maps, bytes), as its debug form.
    Other(String),
}

impl std::fmt::Display for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Str(value) | Self::Other(value) => f.write_str(value),
            Self::Int(value) => write!(f, "{value}"),
            Self::Bool(value) => write!(f, "{value}"),
            Self::Double(value) => write!(f, "{value}"),
        }
    }
}

impl ReceivedSpan {
    /// A string attribute's value; `None` when absent or of another type.
    pub fn attr(&self, key: &str) -> Option<&str> {
        match self.attributes.get(key) {
            Some(AttrValue::Str(value)) => Some(value),
            _ => None,
        }
    }

    /// An int attribute's value; `None` when absent or of another type.
    pub fn int_attr(&self, key: &str) -> Option<i64> {
        match self.attributes.get(key) {
            Some(AttrValue::Int(value)) => Some(*value),
            _ => None,
        }
    }

    /// How long the span lasted.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.end_unix_nano.saturating_sub(self.start_unix_nano))
    }
}

/// Why a body is not an OTLP trace export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// `Content-Encoding: gzip`, but not gzip.
    Gzip,
    /// Decompressed, it is larger than allowed.
    TooLarge,
    /// Not an [`ExportTraceServiceRequest`] in protobuf.
    Protobuf,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Gzip => "undecodable gzip body",
            Self::TooLarge => "body too large",
            Self::Protobuf => "undecodable OTLP body",
        })
    }
}

/// An OTLP/HTTP body's protobuf: gunzipped first when `gzipped`, and at most
/// `max_bytes` long, decompressed or not.
pub(crate) fn http_body_protobuf(
    body: &[u8],
    gzipped: bool,
    max_bytes: u64,
) -> Result<Cow<'_, [u8]>, DecodeError> {
    if !gzipped {
        if body.len() as u64 > max_bytes {
            return Err(DecodeError::TooLarge);
        }
        return Ok(Cow::Borrowed(body));
    }
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(max_bytes + 1)
        .read_to_end(&mut decoded)
        .map_err(|_| DecodeError::Gzip)?;
    if decoded.len() as u64 > max_bytes {
        return Err(DecodeError::TooLarge);
    }
    Ok(Cow::Owned(decoded))
}

/// An [`ExportTraceServiceRequest`] from its protobuf.
pub fn decode_request(protobuf: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    ExportTraceServiceRequest::decode(protobuf).map_err(|_| DecodeError::Protobuf)
}

/// Every span of `request`, flattened.
pub fn spans(request: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service_name = resource.get("service.name").cloned().unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            let scope = scope_spans
                .scope
                .map(|scope| (scope.name, scope.version))
                .unwrap_or_default();
            for span in scope_spans.spans {
                received.push(ReceivedSpan {
                    service_name: service_name.clone(),
                    resource: resource.clone(),
                    scope: scope.clone(),
                    kind: SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), typed(kv.value.as_ref())))
                        .collect(),
                    status: span
                        .status
                        .and_then(|s| StatusCode::try_from(s.code).ok())
                        .unwrap_or(StatusCode::Unset),
                    start_unix_nano: span.start_time_unix_nano,
                    end_unix_nano: span.end_time_unix_nano,
                });
            }
        }
    }
    received
}

/// Resource or span attributes, as strings.
pub fn attributes(attributes: &[KeyValue]) -> HashMap<String, String> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), typed(kv.value.as_ref()).to_string()))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn typed(value: Option<&AnyValue>) -> AttrValue {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => AttrValue::Str(s.clone()),
        Some(Value::IntValue(i)) => AttrValue::Int(*i),
        Some(Value::BoolValue(b)) => AttrValue::Bool(*b),
        Some(Value::DoubleValue(d)) => AttrValue::Double(*d),
        other => AttrValue::Other(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn the_size_limit_holds_for_plain_and_gzipped_bodies_alike() {
        let big = vec![0u8; 4096];
        assert_eq!(
            http_body_protobuf(&big, false, 1024).unwrap_err(),
            DecodeError::TooLarge
        );
        // Small on the wire, large once inflated.
        let bomb = gzip(&big);
        assert!(bomb.len() < 1024);
        assert_eq!(
            http_body_protobuf(&bomb, true, 1024).unwrap_err(),
            DecodeError::TooLarge
        );
        assert_eq!(
            http_body_protobuf(b"not gzip", true, 1024).unwrap_err(),
            DecodeError::Gzip
        );
        let empty = ExportTraceServiceRequest::default().encode_to_vec();
        let gzipped = gzip(&empty);
        let unpacked = http_body_protobuf(&gzipped, true, 1024).unwrap();
        assert!(decode_request(&unpacked).is_ok());
    }
}
