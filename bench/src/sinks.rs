//! The benchmark's counting OTLP sinks, one a transport: they count spans
//! by `service.name` without decoding the spans themselves, so they take
//! little of the CPU the services are measured on. OTLP/HTTP goes through
//! the same endpoint as every receiver here ([`otlp_receive::http_receiver`]).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::body::Bytes;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::KeyValue,
    resource::v1::Resource,
};
use otlp_receive::{
    DecodeError,
    http_receiver::{self, ExportSink},
};
use prost::Message;
use test_harness::otlp_receiver::Transport;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;

/// Largest export accepted, decompressed.
const MAX_BODY_BYTES: usize = 32 << 20;

/// A running counting sink. Dropping it stops the server task.
#[derive(Debug)]
pub(crate) struct CountingSink {
    address: SocketAddr,
    counts: Arc<Counts>,
    server: tokio::task::JoinHandle<()>,
}

impl CountingSink {
    /// Starts a sink for `transport` on a free loopback port.
    pub(crate) async fn start(transport: Transport) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let counts = Arc::new(Counts::default());
        let app = match transport {
            Transport::Grpc => tonic::service::Routes::new(
                TraceServiceServer::new(GrpcCounter(counts.clone()))
                    .accept_compressed(CompressionEncoding::Gzip),
            )
            .into_axum_router(),
            Transport::HttpProtobuf => http_receiver::router(counts.clone(), MAX_BODY_BYTES),
        };
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            counts,
            server,
        })
    }

    /// The base URL to export to.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Spans received so far, by `service.name`.
    pub(crate) fn counts(&self) -> HashMap<String, u64> {
        self.counts.lock().clone()
    }
}

impl Drop for CountingSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Spans by `service.name`.
#[derive(Debug, Default)]
struct Counts(Mutex<HashMap<String, u64>>);

impl Counts {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `(resource attributes, spans)` pairs.
    fn tally<'a>(&self, resources: impl Iterator<Item = (Option<&'a [KeyValue]>, usize)>) {
        let mut counts = self.lock();
        for (resource, spans) in resources {
            let service = resource
                .and_then(|attrs| otlp_receive::attributes(attrs).remove("service.name"))
                .unwrap_or_default();
            *counts.entry(service).or_default() += spans as u64;
        }
    }
}

impl ExportSink for Counts {
    fn accept(&self, protobuf: &[u8], _gzipped: bool) -> Result<(), DecodeError> {
        let request = CountedRequest::decode(protobuf).map_err(|_| DecodeError::Protobuf)?;
        self.tally(request.resource_spans.iter().map(|r| {
            let spans = r.scope_spans.iter().map(|s| s.spans.len()).sum();
            (r.resource.as_ref().map(|r| r.attributes.as_slice()), spans)
        }));
        Ok(())
    }
}

/// gRPC decodes the whole request before the service sees it; it is
/// counted the same way.
struct GrpcCounter(Arc<Counts>);

#[tonic::async_trait]
impl TraceService for GrpcCounter {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0
            .tally(request.get_ref().resource_spans.iter().map(|r| {
                let spans = r.scope_spans.iter().map(|s| s.spans.len()).sum();
                (r.resource.as_ref().map(|r| r.attributes.as_slice()), spans)
            }));
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// `ExportTraceServiceRequest` with each span left as its bytes: enough to
/// count spans by resource without decoding them.
#[derive(Clone, PartialEq, prost::Message)]
struct CountedRequest {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<CountedResourceSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CountedResourceSpans {
    #[prost(message, optional, tag = "1")]
    resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<CountedScopeSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CountedScopeSpans {
    #[prost(bytes = "bytes", repeated, tag = "2")]
    spans: Vec<Bytes>,
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::{
        common::v1::{AnyValue, any_value::Value},
        trace::v1::{ResourceSpans, ScopeSpans, Span},
    };

    use super::*;

    fn export(service: &str, spans: usize) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(Value::StringValue(service.into())),
                        }),
                        ..KeyValue::default()
                    }],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span::default(); spans],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    #[tokio::test]
    async fn the_http_sink_counts_spans_by_service_without_decoding_them() {
        let sink = CountingSink::start(Transport::HttpProtobuf).await.unwrap();
        let client = reqwest::Client::new();
        for (service, spans) in [("hello-svc", 3), ("formatter-svc", 2), ("hello-svc", 1)] {
            let response = client
                .post(format!("{}/v1/traces", sink.endpoint()))
                .header("content-type", "application/x-protobuf")
                .body(export(service, spans).encode_to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        let counts = sink.counts();
        assert_eq!(counts.get("hello-svc"), Some(&4));
        assert_eq!(counts.get("formatter-svc"), Some(&2));

        let garbage = client
            .post(format!("{}/v1/traces", sink.endpoint()))
            .body(&b"\xff\xff"[..])
            .send()
            .await
            .unwrap();
        assert_eq!(garbage.status(), 400);
    }
}
