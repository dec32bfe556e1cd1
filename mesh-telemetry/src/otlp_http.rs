//! The OTLP/HTTP span exporter: protobuf written straight from the spans
//! ([`otlp_export`]) into a buffer kept across batches, then POSTed.
//!
//! It replaces `opentelemetry-otlp`'s HTTP exporter, which builds
//! `opentelemetry-proto` structs for every span, encodes and frees them:
//! most of the cost of exporting (BENCHMARKS.md). What that exporter did for
//! users is kept: the headers, timeout and gzip of `OTEL_EXPORTER_OTLP_*`,
//! retries, and a warning for a partial success. gRPC stays on
//! `opentelemetry-otlp`.
//!
//! Retried, as the OTLP specification's OTLP/HTTP failures section asks:
//! the throttling and unavailable answers 429, 502, 503 and 504, and a
//! request that got no answer (no connection, a connection lost, no answer
//! within the time left). Not retried: every other status, and a TLS
//! failure, which only a change of settings mends.
//!
//! The POST goes out on hyper's HTTP/1.1 client over
//! [`crate::collector_connection`]'s connections (TLS for `https`), so a
//! failure is named by its cause and a TLS one is not retried.

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use flate2::{Compression, write::GzEncoder};
use http::Uri;
use http::{HeaderMap, HeaderValue, header};
use http_body_util::{BodyExt, Collected, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{SpanData, SpanExporter},
};
use otlp_export::Encoder;

use crate::{
    collector_connection::{Connector, LastFailure},
    collector_tls::ALPN_HTTP1,
    export_failure::{TransportFailure, http_status_is_retryable},
    retry::Retries,
};

/// What the exporter sends where, resolved from `OTEL_EXPORTER_OTLP_*`.
#[derive(Debug, Clone)]
pub(crate) struct OtlpHttpSettings {
    /// The full URL, `/v1/traces` included.
    pub(crate) endpoint: String,
    /// Sent with every export, after the content headers.
    pub(crate) headers: HeaderMap,
    /// How long one export may take, retries included.
    pub(crate) timeout: Duration,
    /// Whether bodies are gzipped.
    pub(crate) gzip: bool,
    /// TLS for an `https` endpoint ([`crate::collector_tls`]).
    pub(crate) tls: rustls::ClientConfig,
}

/// Why the exporter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OtlpHttpError {
    /// The endpoint is not an `http` or `https` URL.
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT `{0}` is not an http:// or https:// URL")]
    Endpoint(String),
    /// The HTTP client could not start.
    #[error("cannot start the OTLP/HTTP client: {0}")]
    Client(String),
}

/// The exporter. It runs on the batch processor's own thread, which blocks
/// on each export: each POST runs to its end on the exporter's own
/// single-threaded runtime, over [`Connector`]'s connections.
pub(crate) struct OtlpHttpExporter {
    client: Client<Connector, Full<Bytes>>,
    runtime: tokio::runtime::Runtime,
    failures: Arc<LastFailure>,
    url: Uri,
    headers: HeaderMap,
    timeout: Duration,
    gzip: bool,
    resource: Resource,
    encoder: Mutex<Encoder>,
}

impl OtlpHttpExporter {
    /// An exporter for `settings`, reporting `resource` (the provider sets
    /// its own through [`SpanExporter::set_resource`]).
    pub(crate) fn new(settings: OtlpHttpSettings) -> Result<Self, OtlpHttpError> {
        let url = settings
            .endpoint
            .parse::<Uri>()
            .ok()
            .filter(|url| {
                matches!(url.scheme_str(), Some("http" | "https")) && url.host().is_some()
            })
            .ok_or_else(|| OtlpHttpError::Endpoint(settings.endpoint.clone()))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!(
                "mesh-telemetry-OTLP-Exporter-Rust/",
                env!("CARGO_PKG_VERSION")
            )),
        );
        if settings.gzip {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        // The user's headers come last, so they can replace ours.
        for (name, value) in &settings.headers {
            headers.insert(name, value.clone());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| OtlpHttpError::Client(error.to_string()))?;
        let failures = Arc::new(LastFailure::default());
        let connector = Connector::new(settings.tls, ALPN_HTTP1, failures.clone());
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            client,
            runtime,
            failures,
            url,
            headers,
            timeout: settings.timeout,
            gzip: settings.gzip,
            resource: Resource::builder_empty().build(),
            encoder: Mutex::default(),
        })
    }

    /// The request body for `batch`: encoded, and gzipped if configured. It
    /// is the encoder's own buffer, handed back by [`Self::reclaim`].
    fn body(&self, batch: &[SpanData]) -> Result<Bytes, OTelSdkError> {
        let mut encoder = self.encoder();
        let protobuf = encoder.take_request(&self.resource, batch);
        if !self.gzip {
            return Ok(Bytes::from(protobuf));
        }
        let mut gzip = GzEncoder::new(
            Vec::with_capacity(protobuf.len() / 4),
            Compression::default(),
        );
        let gzipped = gzip.write_all(&protobuf).and_then(|()| gzip.finish());
        encoder.give_back(protobuf);
        gzipped
            .map(Bytes::from)
            .map_err(|_| OTelSdkError::InternalFailure("cannot gzip the export".into()))
    }

    /// Gives the body's buffer back to the encoder once nothing else holds
    /// it, so the next batch is written without growing a new one.
    fn reclaim(&self, body: Bytes) {
        if let Ok(buffer) = body.try_into_mut() {
            self.encoder().give_back(buffer.into());
        }
    }

    fn encoder(&self) -> std::sync::MutexGuard<'_, Encoder> {
        self.encoder
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The POST and, for a success, its body (which may tell of a partial
    /// success); on no answer, the failure the client's error names, if any.
    async fn post(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<(http::response::Parts, Option<Collected<Bytes>>), Option<TransportFailure>> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|error| TransportFailure::of(&error))?;
        let (head, body) = response.into_parts();
        let body = if head.status.is_success() {
            body.collect().await.ok()
        } else {
            None
        };
        Ok((head, body))
    }

    /// One POST, bounded by what is left of the export's time.
    fn send(&self, body: Bytes, left: Duration) -> Attempt {
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.url.clone();
        *request.headers_mut() = self.headers.clone();
        self.failures.take();
        // One deadline for the answer's head and its body together, made
        // inside the runtime, whose timer it needs.
        let answer = self
            .runtime
            .block_on(async { tokio::time::timeout(left, self.post(request)).await });
        let (head, body) = match answer {
            Ok(Ok(answered)) => answered,
            // The connection's record first: it holds the TLS cause.
            Ok(Err(cause)) => return Attempt::of_transport(self.failures.take().or(cause)),
            Err(tokio::time::error::Elapsed { .. }) => {
                return Attempt::Retryable("timed out".into(), None);
            }
        };
        let status = head.status;
        if status.is_success() {
            if let Some((rejected_spans, message)) = body
                .map(|body| body.to_bytes())
                .and_then(|body| otlp_export::partial_success(&body))
            {
                tracing::warn!(
                    rejected_spans,
                    collector_message = %message,
                    "the collector accepted the export in part"
                );
            }
            return Attempt::Sent;
        }
        let failure = format!("HTTP {}", status.as_u16());
        if !http_status_is_retryable(status) {
            return Attempt::Failed(failure);
        }
        // OTLP/HTTP's throttling answers may say when to come back.
        let after = head
            .headers
            .get(header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok())
            .map(Duration::from_secs);
        Attempt::Retryable(failure, after)
    }

    /// POSTs `body`, and again after each retryable failure while
    /// [`Retries`] allows.
    fn send_with_retries(&self, body: &Bytes, mut retries: Retries) -> OTelSdkResult {
        loop {
            let (failure, retry_after) = match self.send(body.clone(), retries.left()) {
                Attempt::Sent => return Ok(()),
                Attempt::Failed(failure) => return Err(OTelSdkError::InternalFailure(failure)),
                Attempt::Retryable(failure, retry_after) => (failure, retry_after),
            };
            match retries.next_wait(retry_after) {
                Some(wait) => std::thread::sleep(wait),
                None => return Err(OTelSdkError::InternalFailure(failure)),
            }
        }
    }
}

/// How one POST ended.
enum Attempt {
    Sent,
    /// Worth another try, after the server's `Retry-After` if it gave one.
    Retryable(String, Option<Duration>),
    Failed(String),
}

impl Attempt {
    /// A request that got no answer, named by the cause its connection
    /// recorded, or the client's error says ([`TransportFailure`]): a TLS
    /// verification failure or a refused handshake is not retried. The
    /// client's own error is not used: its text says little of the cause.
    fn of_transport(cause: Option<TransportFailure>) -> Self {
        match cause {
            Some(failure) if failure.is_retryable() => Self::Retryable(failure.to_string(), None),
            Some(failure) => Self::Failed(failure.to_string()),
            None => Self::Retryable("the request failed".into(), None),
        }
    }
}

impl std::fmt::Debug for OtlpHttpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The headers are left out: they often hold credentials.
        f.debug_struct("OtlpHttpExporter")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

impl SpanExporter for OtlpHttpExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        // The export's time starts before the body is encoded.
        let retries = Retries::new(self.timeout);
        let body = self.body(&batch)?;
        let result = self.send_with_retries(&body, retries);
        self.reclaim(body);
        result
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.clone();
    }
}

#[cfg(test)]
mod tests {
    use std::{
        future::Future,
        io::{BufRead, BufReader, Read},
        net::TcpListener,
        pin::pin,
        sync::mpsc,
        task::{Context, Poll, Waker},
        time::Instant,
    };

    use super::*;
    use crate::test_support::span;

    /// The longest any test waits on a channel: a collector that never
    /// reports fails the test instead of hanging it.
    const WAIT: Duration = Duration::from_secs(10);

    /// The next `n` requests the collector reports, within [`WAIT`] each.
    fn next_seen(seen: &mpsc::Receiver<Seen>, n: usize) -> Vec<Seen> {
        (0..n)
            .map(|i| {
                seen.recv_timeout(WAIT)
                    .unwrap_or_else(|e| panic!("request {} of {n} not seen: {e}", i + 1))
            })
            .collect()
    }

    /// One HTTP/1.1 request's head and body from `reader`; `None` when the
    /// connection closes first.
    fn read_request(reader: &mut impl BufRead) -> Option<(String, Vec<u8>)> {
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            if reader.read_line(&mut head).ok()? == 0 {
                return None;
            }
        }
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(|n| n.parse().unwrap())
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        Some((head, body))
    }

    /// One request as the collector saw it.
    struct Seen {
        head: String,
        body: Vec<u8>,
    }

    /// A collector on a free loopback port that answers each request with
    /// the next of `answers` (a status line and headers, and a body), and
    /// reports what it received.
    fn collector(answers: Vec<(&'static str, Vec<u8>)>) -> (String, mpsc::Receiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let (seen, received) = mpsc::channel();
        std::thread::spawn(move || {
            for (head, body) in answers {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let (request, received) = read_request(&mut reader).expect("a request");
                let mut stream = reader.into_inner();
                let answer = format!(
                    "{head}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                std::io::Write::write_all(&mut stream, answer.as_bytes()).unwrap();
                std::io::Write::write_all(&mut stream, &body).unwrap();
                let _ = seen.send(Seen {
                    head: request,
                    body: received,
                });
            }
        });
        (url, received)
    }

    fn exporter(endpoint: &str, gzip: bool, timeout_ms: u64) -> OtlpHttpExporter {
        exporter_with_tls(endpoint, gzip, timeout_ms, no_tls())
    }

    fn exporter_with_tls(
        endpoint: &str,
        gzip: bool,
        timeout_ms: u64,
        tls: rustls::ClientConfig,
    ) -> OtlpHttpExporter {
        let mut headers = HeaderMap::new();
        headers.insert("api-key", HeaderValue::from_static("s3cret"));
        let mut exporter = OtlpHttpExporter::new(OtlpHttpSettings {
            endpoint: endpoint.into(),
            headers,
            timeout: Duration::from_millis(timeout_ms),
            gzip,
            tls,
        })
        .unwrap();
        exporter.set_resource(
            &Resource::builder_empty()
                .with_service_name("hello-svc")
                .build(),
        );
        exporter
    }

    fn no_tls() -> rustls::ClientConfig {
        crate::collector_tls::client_config(&Default::default(), false).unwrap()
    }

    /// The export runs to its end without awaiting (it blocks, as on the
    /// batch processor's thread), so one poll finishes it.
    fn export(exporter: &OtlpHttpExporter) -> OTelSdkResult {
        let mut future = pin!(exporter.export(vec![span()]));
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(result) => result,
            Poll::Pending => panic!("the export awaited"),
        }
    }

    fn error_text(result: OTelSdkResult) -> String {
        match result {
            Err(OTelSdkError::InternalFailure(text)) => text,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn an_export_posts_the_encoded_spans_with_the_configured_headers() {
        let (url, seen) = collector(vec![("HTTP/1.1 200 OK", vec![])]);
        let exporter = exporter(&url, false, 2_000);
        export(&exporter).unwrap();
        let request = next_seen(&seen, 1).remove(0);
        let head = request.head.to_ascii_lowercase();
        assert!(head.starts_with("post /v1/traces http/1.1\r\n"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: application/x-protobuf\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\napi-key: s3cret\r\n"), "{head}");
        assert!(
            head.contains("\r\nuser-agent: mesh-telemetry-otlp-exporter-rust/"),
            "{head}"
        );
        assert!(!head.contains("content-encoding"), "{head}");
        let spans = otlp_receive::spans(otlp_receive::decode_request(&request.body).unwrap());
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].service_name, "hello-svc");
        assert_eq!(spans[0].span_id, "0000000000000008");
    }

    #[test]
    fn a_gzipped_export_says_so_and_decodes() {
        let (url, seen) = collector(vec![("HTTP/1.1 200 OK", vec![])]);
        export(&exporter(&url, true, 2_000)).unwrap();
        let request = next_seen(&seen, 1).remove(0);
        assert!(
            request
                .head
                .to_ascii_lowercase()
                .contains("\r\ncontent-encoding: gzip\r\n")
        );
        let mut protobuf = Vec::new();
        flate2::read::GzDecoder::new(request.body.as_slice())
            .read_to_end(&mut protobuf)
            .unwrap();
        assert_eq!(
            otlp_receive::spans(otlp_receive::decode_request(&protobuf).unwrap()).len(),
            1
        );
    }

    #[test]
    fn a_busy_collector_is_tried_three_times_then_the_batch_fails() {
        let busy = || ("HTTP/1.1 503 Service Unavailable", vec![]);
        let (url, seen) = collector(vec![busy(), busy(), busy()]);
        assert_eq!(
            error_text(export(&exporter(&url, false, 2_000))),
            "HTTP 503"
        );
        assert_eq!(next_seen(&seen, 3).len(), 3);
    }

    #[test]
    fn a_retry_can_succeed() {
        let (url, seen) = collector(vec![
            ("HTTP/1.1 502 Bad Gateway", vec![]),
            ("HTTP/1.1 200 OK", vec![]),
        ]);
        export(&exporter(&url, false, 2_000)).unwrap();
        assert_eq!(next_seen(&seen, 2).len(), 2);
    }

    #[test]
    fn a_refused_batch_is_not_retried() {
        let (url, seen) = collector(vec![("HTTP/1.1 400 Bad Request", vec![])]);
        // The collector closes after one answer: a retry would end in
        // "connection refused", not in the 400.
        assert_eq!(
            error_text(export(&exporter(&url, false, 2_000))),
            "HTTP 400"
        );
        assert!(!next_seen(&seen, 1)[0].body.is_empty());
    }

    #[test]
    fn a_retry_after_past_the_timeout_ends_the_export_at_once() {
        let (url, _seen) = collector(vec![(
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 60",
            vec![],
        )]);
        // A 10 s timeout, so "at once" means well under it: the export
        // does not sleep towards a wait it could never finish.
        let started = Instant::now();
        assert_eq!(
            error_text(export(&exporter(&url, false, 10_000))),
            "HTTP 429"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_partial_success_still_counts_as_sent() {
        use opentelemetry_proto::tonic::collector::trace::v1::{
            ExportTracePartialSuccess, ExportTraceServiceResponse,
        };
        use prost::Message;
        let body = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 1,
                error_message: "span too old".into(),
            }),
        }
        .encode_to_vec();
        let (url, _seen) = collector(vec![("HTTP/1.1 200 OK", body)]);
        let log = crate::test_support::captured(|| {
            export(&exporter(&url, false, 2_000)).unwrap();
        });
        assert!(
            log.contains("WARN")
                && log.contains("the collector accepted the export in part")
                && log.contains("rejected_spans=1")
                && log.contains("collector_message=span too old"),
            "{log}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_untrusted_collector_is_named_and_tried_once() {
        use test_harness::{
            otlp_receiver::{OtlpReceiver, Transport},
            throwaway_pki::ThrowawayPki,
        };
        let collector = ThrowawayPki::new("collector CA");
        let receiver =
            OtlpReceiver::start_tls(Transport::HttpProtobuf, collector.server_config(false))
                .await
                .unwrap();
        let tls = crate::test_support::trusting(&ThrowawayPki::new("another CA"));
        let url = format!("{}/v1/traces", receiver.endpoint());
        // The exporter blocks on its own runtime, as on the batch thread.
        let result = tokio::task::spawn_blocking(move || {
            export(&exporter_with_tls(&url, false, 2_000, tls))
        })
        .await
        .unwrap();
        assert_eq!(
            error_text(result),
            "the collector's certificate is not trusted (unknown issuer)"
        );
        // A retry would have come 50 ms after the first handshake, well
        // before the export returned.
        test_harness::eventually("the handshake", || receiver.failed_handshakes() > 0).await;
        assert_eq!(receiver.failed_handshakes(), 1, "tried once");
    }

    #[test]
    fn a_collector_that_drops_the_connection_is_tried_three_times() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let (accepted, accepts) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                // Counted before the close the exporter then sees.
                if accepted.send(()).is_err() {
                    return;
                }
                drop(stream);
            }
        });
        assert_eq!(
            error_text(export(&exporter(&url, false, 2_000))),
            "the connection was lost"
        );
        assert_eq!(accepts.try_iter().count(), 3);
    }

    /// A collector that accepts connections and never answers, holding each
    /// open; reports each accept.
    fn silent_collector(answer_first: Option<&'static str>) -> (String, mpsc::Receiver<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let (accepted, accepts) = mpsc::channel();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for (index, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                if accepted.send(()).is_err() {
                    return;
                }
                if let (0, Some(head)) = (index, answer_first) {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    while line != "\r\n" {
                        line.clear();
                        reader.read_line(&mut line).unwrap();
                    }
                    let answer =
                        format!("{head}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    std::io::Write::write_all(&mut stream, answer.as_bytes()).unwrap();
                    continue;
                }
                held.push(stream);
            }
        });
        (url, accepts)
    }

    #[test]
    fn a_collector_that_never_answers_fails_the_batch_when_the_timeout_runs_out() {
        let (url, accepts) = silent_collector(None);
        let started = Instant::now();
        assert_eq!(error_text(export(&exporter(&url, false, 300))), "timed out");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_millis(1_300),
            "{took:?}"
        );
        accepts.recv_timeout(WAIT).expect("the export connected");
        assert!(
            accepts.try_recv().is_err(),
            "no retry once the time was spent"
        );
    }

    #[test]
    fn a_retry_gets_only_what_is_left_of_the_exports_time() {
        // The first try is answered 503 at once; the retry meets silence and
        // must give up when the export's 1 s is spent, not 1 s after it began.
        let (url, accepts) = silent_collector(Some("HTTP/1.1 503 Service Unavailable"));
        let started = Instant::now();
        assert_eq!(
            error_text(export(&exporter(&url, false, 1_000))),
            "timed out"
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1_000) && took < Duration::from_millis(1_300),
            "{took:?}"
        );
        accepts.recv_timeout(WAIT).expect("the first try");
        accepts.recv_timeout(WAIT).expect("the retry");
    }

    #[test]
    fn exports_reuse_a_kept_alive_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let (seen, requests) = mpsc::channel();
        std::thread::spawn(move || {
            for (connection, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut stream = stream;
                    // Until the client closes the connection.
                    while read_request(&mut reader).is_some() {
                        std::io::Write::write_all(
                            &mut stream,
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
                        )
                        .unwrap();
                        if seen.send(connection).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let exporter = exporter(&url, false, 2_000);
        export(&exporter).unwrap();
        export(&exporter).unwrap();
        let connections: Vec<usize> = (0..2)
            .map(|_| requests.recv_timeout(WAIT).unwrap())
            .collect();
        assert_eq!(connections, [0, 0], "both exports on the first connection");
    }

    #[test]
    fn no_collector_fails_the_batch_with_a_short_reason() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/v1/traces");
        assert_eq!(
            error_text(export(&exporter(&url, false, 2_000))),
            "connection refused"
        );
    }

    #[test]
    fn an_endpoint_that_is_not_http_is_refused() {
        let settings = |endpoint: &str| OtlpHttpSettings {
            endpoint: endpoint.into(),
            headers: HeaderMap::new(),
            timeout: Duration::from_secs(1),
            gzip: false,
            tls: no_tls(),
        };
        for endpoint in ["localhost:4318", "ftp://collector/v1/traces", ""] {
            let error = OtlpHttpExporter::new(settings(endpoint)).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "OTEL_EXPORTER_OTLP_ENDPOINT `{endpoint}` is not an http:// or https:// URL"
                )
            );
        }
    }
}
