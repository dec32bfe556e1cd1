//! Connections to the collector, for both exporters: TCP, then TLS with
//! [`crate::collector_tls`]'s configuration for an `https` endpoint.
//!
//! Making the connections here is what lets a failure be named by its
//! cause. The clients above (hyper for OTLP/HTTP, tonic for OTLP/gRPC) keep
//! a connect error only as text, or, in tonic's case, turn every one into
//! `Unavailable`. Each connection records the typed cause
//! ([`TransportFailure`]) in a [`LastFailure`] as it happens, and the
//! exporter reads it after a failed export.

use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use http::Uri;
use hyper_util::{
    client::legacy::connect::{Connected, Connection as HyperConnection},
    rt::TokioIo,
};
use rustls::{ClientConfig, pki_types::ServerName};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};

use crate::export_failure::TransportFailure;

/// The last transport failure a connection saw, shared by the connections
/// and the exporter that reads it. An exporter sends one export at a time,
/// so the failure it reads after an export is that export's.
#[derive(Debug, Default)]
pub(crate) struct LastFailure(Mutex<Option<TransportFailure>>);

impl LastFailure {
    /// Records the cause of `error`, if it names one.
    pub(crate) fn record(&self, error: &(dyn std::error::Error + 'static)) {
        if let Some(failure) = TransportFailure::of(error) {
            *self.lock() = Some(failure);
        }
    }

    /// The failure recorded since the last `take`, if any.
    pub(crate) fn take(&self) -> Option<TransportFailure> {
        self.lock().take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<TransportFailure>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Makes connections to the collector: plain TCP for `http`, TLS with its
/// configuration for `https`, each recording its failures.
#[derive(Clone)]
pub(crate) struct Connector {
    tls: TlsConnector,
    failures: Arc<LastFailure>,
}

impl Connector {
    /// Connections with `tls` (its ALPN set to `alpn`), recording into
    /// `failures`.
    pub(crate) fn new(mut tls: ClientConfig, alpn: &[u8], failures: Arc<LastFailure>) -> Self {
        tls.alpn_protocols = vec![alpn.to_vec()];
        Self {
            tls: TlsConnector::from(Arc::new(tls)),
            failures,
        }
    }
}

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<Connection>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (tls, failures) = (self.tls.clone(), self.failures.clone());
        Box::pin(async move {
            let connected = connect(&uri, tls, failures.clone()).await;
            if let Err(error) = &connected {
                failures.record(error);
            }
            connected.map(TokioIo::new)
        })
    }
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
pub(crate) struct Connection {
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

impl HyperConnection for Connection {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}
