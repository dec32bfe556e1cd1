//! A real OTLP trace receiver, over gRPC or HTTP/protobuf, in plain text
//! or TLS, decoding with `opentelemetry-proto` exactly as a collector does.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use otlp_receive::{
    DecodeError, decode_request,
    http_receiver::{self, ExportSink},
};
use rustls::ServerConfig;
use tokio::{net::TcpListener, sync::Notify};
use tokio_rustls::TlsAcceptor;
use tonic::codec::CompressionEncoding;

pub use otlp_receive::{AttrValue, ReceivedSpan};

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
    /// TLS handshakes that failed, for a TLS receiver.
    failed_handshakes: std::sync::atomic::AtomicU64,
    spans: Mutex<Vec<ReceivedSpan>>,
    arrived: Notify,
}

impl Store {
    fn accept(&self, request: ExportTraceServiceRequest) {
        let received = otlp_receive::spans(request);
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
    tls: bool,
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
        Self::bind(address, transport, None).await
    }

    /// Starts a receiver that speaks TLS with `tls` (see
    /// [`ThrowawayPki::server_config`](crate::throwaway_pki::ThrowawayPki::server_config)),
    /// on a free loopback port; its [`endpoint`](Self::endpoint) is
    /// `https://127.0.0.1:PORT`.
    pub async fn start_tls(transport: Transport, tls: ServerConfig) -> std::io::Result<Self> {
        let address = "127.0.0.1:0".parse().expect("literal address");
        Self::bind(address, transport, Some(tls)).await
    }

    async fn bind(
        address: SocketAddr,
        transport: Transport,
        tls: Option<ServerConfig>,
    ) -> std::io::Result<Self> {
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
        let is_tls = tls.is_some();
        let server = match tls {
            None => tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, app).await {
                    eprintln!("the OTLP receiver stopped: {error}");
                }
            }),
            Some(tls) => tokio::spawn(serve_tls(
                listener,
                TlsAcceptor::from(Arc::new(tls)),
                app,
                store.clone(),
            )),
        };
        Ok(Self {
            address,
            transport,
            tls: is_tls,
            store,
            server,
        })
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`: `http://` or, for a
    /// TLS receiver, `https://`.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }

    /// TLS handshakes that failed so far (a TLS receiver's).
    pub fn failed_handshakes(&self) -> u64 {
        self.store
            .failed_handshakes
            .load(std::sync::atomic::Ordering::Relaxed)
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

/// Accepts TLS connections on `listener` and serves `app` on each, over
/// HTTP/1.1 or HTTP/2 as the client speaks; a failed handshake is counted
/// and its connection dropped, as a collector does.
async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: axum::Router,
    store: Arc<Store>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, app, store) = (acceptor.clone(), app.clone(), store.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                store
                    .failed_handshakes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            };
            let service = TowerToHyperService::new(app);
            // A connection the client closes ends here; nothing to report.
            let _closed = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
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
