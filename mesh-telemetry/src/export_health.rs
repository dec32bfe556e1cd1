//! A span exporter wrapper that reports collector outages once, not per
//! batch, and keeps shutdown fast when the collector is known to be down.
//!
//! Without it the batch processor logs an error for every failed export: a
//! service started without Jaeger would fill its log with the same line. With
//! it the log says when exports start failing, and when they recover, with the
//! number of spans lost in between.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};
use std::time::Duration;

use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{SpanData, SpanExporter},
};

/// The export state shared between the exporter (on the batch processor's
/// thread) and the [`Telemetry`](crate::Telemetry) handle that shuts it down.
#[derive(Debug, Default)]
pub(crate) struct ExportHealth {
    failing: AtomicBool,
    lost_spans: AtomicU64,
    failed_exports: AtomicU64,
    shutting_down: AtomicBool,
}

impl ExportHealth {
    /// From now on, a batch is not sent to a collector that is known to be
    /// down: the OTLP exporter's retries would only delay the exit.
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Whether the last export failed.
    pub(crate) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Spans dropped since the current outage began.
    pub(crate) fn lost_spans(&self) -> u64 {
        self.lost_spans.load(Ordering::Relaxed)
    }

    /// Exports that did not reach the collector since the current outage
    /// began: each one failed, or was not tried at shutdown.
    pub(crate) fn failed_exports(&self) -> u64 {
        self.failed_exports.load(Ordering::Relaxed)
    }

    fn count_failure(&self, spans: u64) {
        self.lost_spans.fetch_add(spans, Ordering::Relaxed);
        self.failed_exports.fetch_add(1, Ordering::Relaxed);
    }
}

/// Wraps a [`SpanExporter`] and logs the transitions between healthy and
/// failing exports.
#[derive(Debug)]
pub(crate) struct HealthReportingExporter<E> {
    inner: E,
    endpoint: String,
    health: Arc<ExportHealth>,
}

impl<E> HealthReportingExporter<E> {
    /// Wraps `inner`, which sends to `endpoint` (named in log lines).
    pub(crate) fn new(inner: E, endpoint: impl Into<String>) -> Self {
        Self {
            inner,
            endpoint: endpoint.into(),
            health: Arc::default(),
        }
    }

    /// The state this exporter reports into, for the shutdown path.
    pub(crate) fn health(&self) -> Arc<ExportHealth> {
        self.health.clone()
    }
}

impl<E: SpanExporter> SpanExporter for HealthReportingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let health = &self.health;
        if health.shutting_down.load(Ordering::Relaxed) && health.is_failing() {
            health.count_failure(spans);
            return Err(OTelSdkError::InternalFailure(
                "collector unreachable at shutdown".into(),
            ));
        }
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => {
                if health.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        endpoint = %self.endpoint,
                        lost_spans = health.lost_spans.swap(0, Ordering::Relaxed),
                        failed_exports = health.failed_exports.swap(0, Ordering::Relaxed),
                        "span export recovered"
                    );
                }
            }
            Err(error) => {
                health.count_failure(spans);
                if !health.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        error = %cause(error),
                        "span export failing; spans are dropped until the collector answers \
                         (logged once per outage)"
                    );
                }
            }
        }
        result
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

/// What an export failure says, without the SDK's "Operation failed: "
/// in front: the exporters' own text names the cause
/// ([`crate::export_failure`]).
fn cause(error: &OTelSdkError) -> &dyn std::fmt::Display {
    match error {
        OTelSdkError::InternalFailure(text) => text,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An exporter whose outcome the test sets, counting its calls.
    #[derive(Debug, Default)]
    struct Switchable {
        healthy: Mutex<bool>,
        calls: AtomicU64,
    }

    impl SpanExporter for Switchable {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if *self.healthy.lock().unwrap() {
                Ok(())
            } else {
                Err(OTelSdkError::InternalFailure("connection refused".into()))
            }
        }
    }

    #[tokio::test]
    async fn enters_the_failing_state_on_error_and_leaves_it_on_success() {
        let exporter = HealthReportingExporter::new(Switchable::default(), "http://collector");
        assert!(exporter.export(Vec::new()).await.is_err());
        assert!(exporter.health().is_failing());

        *exporter.inner.healthy.lock().unwrap() = true;
        assert!(exporter.export(Vec::new()).await.is_ok());
        assert!(!exporter.health().is_failing());
    }

    #[tokio::test]
    async fn at_shutdown_a_collector_known_down_is_not_tried_again() {
        let exporter = HealthReportingExporter::new(Switchable::default(), "http://collector");
        assert!(exporter.export(Vec::new()).await.is_err());
        exporter.health().begin_shutdown();
        assert!(exporter.export(Vec::new()).await.is_err());
        assert_eq!(
            exporter.inner.calls.load(Ordering::Relaxed),
            1,
            "no second try"
        );
        assert_eq!(exporter.health().failed_exports(), 2, "both undelivered");
    }

    #[tokio::test]
    async fn at_shutdown_a_healthy_collector_still_gets_the_last_batch() {
        let exporter = HealthReportingExporter::new(Switchable::default(), "http://collector");
        *exporter.inner.healthy.lock().unwrap() = true;
        exporter.health().begin_shutdown();
        assert!(exporter.export(Vec::new()).await.is_ok());
        assert_eq!(exporter.inner.calls.load(Ordering::Relaxed), 1);
    }
}
