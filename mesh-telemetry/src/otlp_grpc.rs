//! The OTLP/gRPC exporter: `opentelemetry-otlp`'s, over a channel whose
//! connections this module makes (TCP, then TLS with
//! [`crate::collector_tls`]'s configuration for an `https` endpoint), and
//! whose retries it decides.
//!
//! Making the connections here is what lets a failure be named by its
//! cause: tonic turns every connect error into `Unavailable`, which the
//! SDK would retry, and keeps only its text. The connection records the
//! typed cause ([`TransportFailure`]) as it happens, and [`GrpcExporter`]
//! reads it after a failed export: a certificate that is not trusted is
//! reported as such and not retried.

use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http::Uri;
use hyper_util::rt::TokioIo;
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{SpanData, SpanExporter},
};
use rustls::{ClientConfig, pki_types::ServerName};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};
use tonic::transport::{Channel, Endpoint};

use crate::{
    collector_tls::ALPN_H2,
    export_failure::{TransportFailure, grpc_failure_is_retryable},
    otlp_http::RETRY_DELAYS,
};

/// The last transport failure a connection saw, shared by the connections
/// and the exporter that reads it.
#[derive(Debug, Default)]
pub(crate) struct LastFailure(Mutex<Option<TransportFailure>>);

impl LastFailure {
    fn record(&self, error: &(dyn std::error::Error + 'static)) {
        if let Some(failure) = TransportFailure::of(error) {
            *self.lock() = Some(failure);
        }
    }

    fn take(&self) -> Option<TransportFailure> {
        self.lock().take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<TransportFailure>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A channel to `endpoint` (`http://` or `https://`) that connects with
/// `tls` when the scheme is `https`, recording failures in `failures`. It
/// connects on first use, so a collector that is not up yet is no error.
pub(crate) fn channel(
    endpoint: &str,
    timeout: Duration,
    tls: ClientConfig,
    failures: Arc<LastFailure>,
) -> Result<Channel, String> {
    let endpoint = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|_| format!("OTEL_EXPORTER_OTLP_ENDPOINT `{endpoint}` is not a URL"))?;
    let mut tls = tls;
    tls.alpn_protocols = vec![ALPN_H2.to_vec()];
    let tls = TlsConnector::from(Arc::new(tls));
    let connector = tower::service_fn(move |uri: Uri| {
        let (tls, failures) = (tls.clone(), failures.clone());
        async move {
            let connected = connect(&uri, tls, failures.clone()).await;
            if let Err(error) = &connected {
                failures.record(error);
            }
            connected.map(TokioIo::new)
        }
    });
    Ok(endpoint
        .timeout(timeout)
        .connect_with_connector_lazy(connector))
}

async fn connect(
    uri: &Uri,
    tls: TlsConnector,
    failures: Arc<LastFailure>,
) -> io::Result<Connection> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
    let host = uri
        .host()
        .ok_or_else(|| invalid("the endpoint has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    let stream = if https {
        let name = ServerName::try_from(host).map_err(|_| invalid("the host is not a TLS name"))?;
        Stream::Tls(Box::new(tls.connect(name, tcp).await?))
    } else {
        Stream::Plain(tcp)
    };
    Ok(Connection { stream, failures })
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A connection that records the cause of each read or write failure: under
/// TLS 1.3 a collector refuses a missing client certificate after the
/// handshake, on the first read.
struct Connection {
    stream: Stream,
    failures: Arc<LastFailure>,
}

impl Connection {
    fn noted<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(error)) = &poll {
            self.failures.record(error);
        }
        poll
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = match &mut this.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        };
        this.noted(poll)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = match &mut this.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        };
        this.noted(poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = match &mut this.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        };
        this.noted(poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// `opentelemetry-otlp`'s gRPC exporter (built with no retries of its own)
/// and the retries: up to [`RETRY_DELAYS`], for a failure that another try
/// could mend, within the export's timeout.
#[derive(Debug)]
pub(crate) struct GrpcExporter {
    inner: opentelemetry_otlp::SpanExporter,
    failures: Arc<LastFailure>,
    timeout: Duration,
}

impl GrpcExporter {
    /// Wraps `inner`, whose channel records into `failures`.
    pub(crate) fn new(
        inner: opentelemetry_otlp::SpanExporter,
        failures: Arc<LastFailure>,
        timeout: Duration,
    ) -> Self {
        Self {
            inner,
            failures,
            timeout,
        }
    }

    /// One export; on failure, its cause and whether to retry.
    async fn attempt(&self, batch: Vec<SpanData>) -> Result<(), (String, bool)> {
        self.failures.take();
        let Err(error) = self.inner.export(batch).await else {
            return Ok(());
        };
        Err(match self.failures.take() {
            Some(failure) => (failure.to_string(), failure.is_retryable()),
            None => {
                let message = error.to_string();
                let retryable = grpc_failure_is_retryable(&message);
                (message, retryable)
            }
        })
    }
}

impl SpanExporter for GrpcExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let started = Instant::now();
        let mut delays = RETRY_DELAYS.iter();
        loop {
            let (failure, retryable) = match self.attempt(batch.clone()).await {
                Ok(()) => return Ok(()),
                Err(failed) => failed,
            };
            let delay = match delays.next() {
                Some(delay) if retryable => *delay + crate::otlp_http::jitter(),
                _ => return Err(OTelSdkError::InternalFailure(failure)),
            };
            if started.elapsed() + delay >= self.timeout {
                return Err(OTelSdkError::InternalFailure(failure));
            }
            // The batch processor exports from a thread of its own, outside
            // tokio; the channel's connections still run on tokio's.
            match tokio::runtime::Handle::try_current() {
                Ok(_) => tokio::time::sleep(delay).await,
                Err(_) => std::thread::sleep(delay),
            }
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
