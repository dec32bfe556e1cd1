//! A real OTLP trace receiver, over gRPC or HTTP/protobuf, decoding with
//! `opentelemetry-proto` exactly as a collector does.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router, body::Bytes, extract::State, http::header, response::IntoResponse, routing::post,
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::KeyValue,
};
use prost::Message;
use tokio::{net::TcpListener, sync::Notify};
use tonic::codec::CompressionEncoding;

pub use otlp_spans::{AttrValue, ReceivedSpan};

/// Which OTLP transport the receiver speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    HttpProtobuf,
}

impl Transport {
    /// The `OTEL_EXPORTER_OTLP_PROTOCOL` value for this transport.
    pub fn protocol(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }
}

#[derive(Debug, Default)]
struct Store {
    /// Count only: a sink under benchmark load must not keep every span.
    count_only: bool,
    /// Export requests whose body arrived gzip-compressed.
    gzipped: std::sync::atomic::AtomicU64,
    spans: Mutex<Vec<ReceivedSpan>>,
    counts: Mutex<HashMap<String, u64>>,
    arrived: Notify,
}

impl Store {
    fn count(&self, request: CountedRequest) {
        self.tally(request.resource_spans.iter().map(|r| {
            let spans = r.scope_spans.iter().map(|s| s.spans.len()).sum();
            (r.resource.as_ref().map(|r| r.attributes.as_slice()), spans)
        }));
    }

    /// Adds `(resource attributes, spans)` pairs to the per-service counts.
    fn tally<'a>(&self, resources: impl Iterator<Item = (Option<&'a [KeyValue]>, usize)>) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for (resource, spans) in resources {
            let service = resource
                .and_then(|attrs| otlp_spans::attributes(attrs).remove("service.name"))
                .unwrap_or_default();
            *counts.entry(service).or_default() += spans as u64;
        }
    }

    fn accept(&self, request: ExportTraceServiceRequest) {
        if self.count_only {
            // gRPC has decoded the whole request already; count it the same way.
            self.tally(request.resource_spans.iter().map(|r| {
                let spans = r.scope_spans.iter().map(|s| s.spans.len()).sum();
                (r.resource.as_ref().map(|r| r.attributes.as_slice()), spans)
            }));
            return;
        }
        let received = otlp_spans::spans(request);
        self.spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(received);
        self.arrived.notify_waiters();
    }
}

/// A running receiver. Dropping it stops the server task.
#[derive(Debug)]
pub struct OtlpReceiver {
    address: SocketAddr,
    transport: Transport,
    store: Arc<Store>,
    server: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    /// Starts a receiver on a free loopback port.
    pub async fn start(transport: Transport) -> std::io::Result<Self> {
        Self::start_with(transport, false).await
    }

    /// Starts a receiver that only counts spans by `service.name`, for load:
    /// [`spans`](Self::spans) stays empty, [`counts`](Self::counts) grows.
    pub async fn start_counting(transport: Transport) -> std::io::Result<Self> {
        Self::start_with(transport, true).await
    }

    /// Starts a receiver on `address`: a collector that comes back on the
    /// port it had, for the outage tests.
    pub async fn start_on(address: SocketAddr, transport: Transport) -> std::io::Result<Self> {
        Self::bind(address, transport, false).await
    }

    async fn start_with(transport: Transport, count_only: bool) -> std::io::Result<Self> {
        Self::bind(
            "127.0.0.1:0".parse().expect("literal address"),
            transport,
            count_only,
        )
        .await
    }

    async fn bind(
        address: SocketAddr,
        transport: Transport,
        count_only: bool,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let store = Arc::new(Store {
            count_only,
            ..Store::default()
        });
        let app = match transport {
            Transport::Grpc => tonic::service::Routes::new(
                TraceServiceServer::new(GrpcService(store.clone()))
                    .accept_compressed(CompressionEncoding::Gzip),
            )
            .into_axum_router(),
            Transport::HttpProtobuf => Router::new()
                .route("/v1/traces", post(http_export))
                .with_state(store.clone()),
        };
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            transport,
            store,
            server,
        })
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The transport it speaks.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Export requests whose body arrived gzip-compressed.
    pub fn gzipped_requests(&self) -> u64 {
        self.store
            .gzipped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Spans received so far, by `service.name`.
    pub fn counts(&self) -> HashMap<String, u64> {
        self.store
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.store
            .spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Vec<ReceivedSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }

    /// Waits until `done` holds for the received spans, or `timeout` passes;
    /// returns the spans either way, for the caller's assertions.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.store.arrived.notified();
            let spans = self.spans();
            if done(&spans) || tokio::time::Instant::now() >= deadline {
                return spans;
            }
            let _ = tokio::time::timeout_at(deadline, arrived).await;
        }
    }

    /// Waits until trace `trace_id` has at least `count` spans.
    pub async fn wait_for_trace(&self, trace_id: &str, count: usize) -> Vec<ReceivedSpan> {
        self.wait_until(Duration::from_secs(10), |spans| {
            spans.iter().filter(|s| s.trace_id == trace_id).count() >= count
        })
        .await
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .collect()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct GrpcService(Arc<Store>);

#[tonic::async_trait]
impl TraceService for GrpcService {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        if request
            .metadata()
            .get("grpc-encoding")
            .is_some_and(|e| e == "gzip")
        {
            self.0
                .gzipped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.0.accept(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Just enough of `ExportTraceServiceRequest` to count spans by service:
/// each span stays an undecoded slice of the body, so a counting sink under
/// load spends little CPU on the machine it shares with what it measures.
#[derive(Clone, PartialEq, prost::Message)]
struct CountedRequest {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<CountedResourceSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CountedResourceSpans {
    #[prost(message, optional, tag = "1")]
    resource: Option<opentelemetry_proto::tonic::resource::v1::Resource>,
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<CountedScopeSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CountedScopeSpans {
    #[prost(bytes = "bytes", repeated, tag = "2")]
    spans: Vec<Bytes>,
}

/// The largest decompressed export body accepted.
const MAX_BODY_BYTES: u64 = 32 << 20;

async fn http_export(
    State(store): State<Arc<Store>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|e| e == "gzip");
    if gzipped {
        store
            .gzipped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let accepted = if store.count_only && !gzipped {
        CountedRequest::decode(body)
            .map(|request| store.count(request))
            .map_err(|_| otlp_spans::DecodeError::Protobuf)
    } else {
        otlp_spans::decode_http_body(&body, gzipped, MAX_BODY_BYTES)
            .map(|request| store.accept(request))
    };
    match accepted {
        Ok(()) => {
            let response = ExportTraceServiceResponse::default().encode_to_vec();
            (
                axum::http::StatusCode::OK,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                response,
            )
        }
        Err(error) => (
            axum::http::StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("{error}\n").into_bytes(),
        ),
    }
}
