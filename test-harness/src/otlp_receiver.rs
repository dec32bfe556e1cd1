//! A real OTLP trace receiver, over gRPC or HTTP/protobuf, decoding with
//! `opentelemetry-proto` exactly as a collector does.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use otlp_spans::{
    DecodeError, decode_request,
    http_receiver::{self, ExportSink},
};
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
    /// Export requests whose body arrived gzip-compressed.
    gzipped: std::sync::atomic::AtomicU64,
    spans: Mutex<Vec<ReceivedSpan>>,
    arrived: Notify,
}

impl Store {
    fn accept(&self, request: ExportTraceServiceRequest) {
        let received = otlp_spans::spans(request);
        self.spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(received);
        self.arrived.notify_waiters();
    }

    fn count_gzipped(&self) {
        self.gzipped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl ExportSink for Store {
    fn accept(&self, protobuf: &[u8], gzipped: bool) -> Result<(), DecodeError> {
        if gzipped {
            self.count_gzipped();
        }
        Store::accept(self, decode_request(protobuf)?);
        Ok(())
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
        Self::start_on("127.0.0.1:0".parse().expect("literal address"), transport).await
    }

    /// Starts a receiver on `address`: a collector that comes back on the
    /// port it had, for the outage tests.
    pub async fn start_on(address: SocketAddr, transport: Transport) -> std::io::Result<Self> {
        Self::bind(address, transport).await
    }

    async fn bind(address: SocketAddr, transport: Transport) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let store = Arc::new(Store::default());
        let app = match transport {
            Transport::Grpc => tonic::service::Routes::new(
                TraceServiceServer::new(GrpcService(store.clone()))
                    .accept_compressed(CompressionEncoding::Gzip),
            )
            .into_axum_router(),
            Transport::HttpProtobuf => http_receiver::router(store.clone(), MAX_BODY_BYTES),
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
    pub(crate) async fn wait_until(
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
            self.0.count_gzipped();
        }
        self.0.accept(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Largest export accepted, decompressed.
const MAX_BODY_BYTES: usize = 32 << 20;
