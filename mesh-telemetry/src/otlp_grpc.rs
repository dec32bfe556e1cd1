//! The OTLP/gRPC exporter: `opentelemetry-otlp`'s, over a channel whose
//! connections [`crate::collector_connection`] makes, and whose retries
//! [`GrpcExporter`] decides from the typed cause of a failure: tonic turns
//! every connect error into `Unavailable`, which the SDK would retry, so a
//! certificate that is not trusted would be tried again like an outage.

use std::{sync::Arc, time::Duration};

use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{SpanData, SpanExporter},
};
use rustls::ClientConfig;
use tonic::transport::{Channel, Endpoint};

use crate::{
    collector_connection::{Connector, LastFailure},
    collector_tls::ALPN_H2,
    export_failure::grpc_failure_is_retryable,
    retry::Retries,
};

/// A channel to `endpoint` (`http://` or `https://`) over [`Connector`]'s
/// connections, recording failures in `failures`. It connects on first
/// use, so a collector that is not up yet is no error.
pub(crate) fn channel(
    endpoint: &str,
    timeout: Duration,
    tls: ClientConfig,
    failures: Arc<LastFailure>,
) -> Result<Channel, String> {
    let endpoint = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|_| format!("OTEL_EXPORTER_OTLP_ENDPOINT `{endpoint}` is not a URL"))?;
    let connector = Connector::new(tls, ALPN_H2, failures);
    Ok(endpoint
        .timeout(timeout)
        .connect_with_connector_lazy(connector))
}

/// `opentelemetry-otlp`'s gRPC exporter (built with no retries of its own)
/// and the retries, as [`Retries`] allows, for a failure that another try
/// could mend. A retry starts only within the export's timeout, but each try
/// is bounded by the channel's own timeout, the whole of it: unlike the
/// OTLP/HTTP exporter's, a last try may end up to one timeout past the
/// export's (the batch processor's thread has no tokio timer to cut it).
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
        let mut retries = Retries::new(self.timeout);
        loop {
            let (failure, retryable) = match self.attempt(batch.clone()).await {
                Ok(()) => return Ok(()),
                Err(failed) => failed,
            };
            let Some(delay) = retryable.then(|| retries.next_wait(None)).flatten() else {
                return Err(OTelSdkError::InternalFailure(failure));
            };
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

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    };
    use test_harness::{
        otlp_receiver::{OtlpReceiver, Transport},
        throwaway_pki::ThrowawayPki,
    };

    use super::*;
    use crate::{
        otlp_http::OtlpHttpSettings,
        telemetry::grpc_exporter,
        test_support::{span, trusting},
    };

    /// Exports one span to `receiver`, trusting `tls`, and returns the
    /// failure's text.
    async fn failure(receiver: &OtlpReceiver, tls: ClientConfig) -> String {
        let exporter = grpc_exporter(OtlpHttpSettings {
            endpoint: receiver.endpoint(),
            headers: Default::default(),
            timeout: Duration::from_secs(2),
            gzip: false,
            tls,
        })
        .unwrap();
        match exporter.export(vec![span()]).await {
            Err(OTelSdkError::InternalFailure(text)) => text,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    /// A plain gRPC collector that answers each export with the next of
    /// its codes (`Ok` once they run out), counting the exports it got.
    #[derive(Clone)]
    struct Scripted {
        codes: Arc<std::sync::Mutex<std::collections::VecDeque<tonic::Code>>>,
        calls: Arc<std::sync::atomic::AtomicUsize>,
    }

    #[tonic::async_trait]
    impl TraceService for Scripted {
        async fn export(
            &self,
            _request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            match self.codes.lock().unwrap().pop_front() {
                None | Some(tonic::Code::Ok) => {
                    Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
                }
                Some(code) => Err(tonic::Status::new(code, "scripted")),
            }
        }
    }

    impl Scripted {
        /// Serves on a free loopback port; gives the endpoint.
        async fn start(codes: &[tonic::Code]) -> (Self, String) {
            let scripted = Self {
                codes: Arc::new(std::sync::Mutex::new(codes.iter().copied().collect())),
                calls: Arc::default(),
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let endpoint = format!("http://{}", listener.local_addr().unwrap());
            let app = tonic::service::Routes::new(TraceServiceServer::new(scripted.clone()))
                .into_axum_router();
            tokio::spawn(async move { axum::serve(listener, app).await });
            (scripted, endpoint)
        }

        fn calls(&self) -> usize {
            self.calls.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    /// One export of one span to `endpoint`, plain, with a 5 s timeout.
    async fn export_to(endpoint: String) -> OTelSdkResult {
        let exporter = grpc_exporter(OtlpHttpSettings {
            endpoint,
            headers: Default::default(),
            timeout: Duration::from_secs(5),
            gzip: false,
            tls: crate::collector_tls::client_config(&Default::default(), false).unwrap(),
        })
        .unwrap();
        exporter.export(vec![span()]).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unavailable_collector_is_tried_again_until_it_answers() {
        use tonic::Code::Unavailable;
        let (collector, endpoint) = Scripted::start(&[Unavailable, Unavailable]).await;
        export_to(endpoint).await.unwrap();
        assert_eq!(collector.calls(), 3, "two retries, the second succeeding");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_code_the_policy_retries_gets_two_retries_and_no_more() {
        use tonic::Code::*;
        for code in [
            Cancelled,
            DeadlineExceeded,
            Aborted,
            OutOfRange,
            Unavailable,
            DataLoss,
        ] {
            let (collector, endpoint) = Scripted::start(&[code, code, code]).await;
            let result = export_to(endpoint).await;
            assert!(result.is_err(), "{code:?}: {result:?}");
            assert_eq!(collector.calls(), 3, "{code:?}: tried three times");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_code_the_policy_does_not_retry_fails_the_batch_at_the_first_answer() {
        use tonic::Code::*;
        for code in [
            InvalidArgument,
            PermissionDenied,
            Unauthenticated,
            ResourceExhausted,
            Unimplemented,
        ] {
            let (collector, endpoint) = Scripted::start(&[code]).await;
            let result = export_to(endpoint).await;
            assert!(result.is_err(), "{code:?}: {result:?}");
            assert_eq!(collector.calls(), 1, "{code:?}: tried once");
        }
    }

    /// After the export returned, a retry would already have been counted
    /// (it comes 50 ms after the first try).
    async fn assert_tried_once(receiver: &OtlpReceiver) {
        test_harness::eventually("the handshake", || receiver.failed_handshakes() > 0).await;
        assert_eq!(receiver.failed_handshakes(), 1, "tried once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_untrusted_collector_is_named_and_tried_once() {
        let collector = ThrowawayPki::new("collector CA");
        let receiver = OtlpReceiver::start_tls(Transport::Grpc, collector.server_config(false))
            .await
            .unwrap();
        let tls = trusting(&ThrowawayPki::new("another CA"));
        assert_eq!(
            failure(&receiver, tls).await,
            "the collector's certificate is not trusted (unknown issuer)"
        );
        assert_tried_once(&receiver).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_collector_that_wants_a_client_certificate_is_named_and_tried_once() {
        let collector = ThrowawayPki::new("collector CA");
        let receiver = OtlpReceiver::start_tls(Transport::Grpc, collector.server_config(true))
            .await
            .unwrap();
        assert_eq!(
            failure(&receiver, trusting(&collector)).await,
            "the collector refused the TLS handshake: it requires a client certificate"
        );
        assert_tried_once(&receiver).await;
    }
}
