//! A span exporter wrapper that reports collector outages once, not per batch.
//!
//! Without it the batch processor logs an error for every failed export: a
//! service started without Jaeger would fill its log with the same line. With
//! it the log says when exports start failing, and when they recover, with the
//! number of spans lost in between.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter},
};

/// Wraps a [`SpanExporter`] and logs the transitions between healthy and
/// failing exports.
#[derive(Debug)]
pub struct HealthReportingExporter<E> {
    inner: E,
    endpoint: String,
    failing: AtomicBool,
    lost_spans: AtomicU64,
}

impl<E> HealthReportingExporter<E> {
    /// Wraps `inner`, which sends to `endpoint` (named in log lines).
    pub fn new(inner: E, endpoint: impl Into<String>) -> Self {
        Self {
            inner,
            endpoint: endpoint.into(),
            failing: AtomicBool::new(false),
            lost_spans: AtomicU64::new(0),
        }
    }
}

impl<E: SpanExporter> SpanExporter for HealthReportingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        endpoint = %self.endpoint,
                        lost_spans = self.lost_spans.swap(0, Ordering::Relaxed),
                        "span export recovered"
                    );
                }
            }
            Err(error) => {
                self.lost_spans.fetch_add(spans, Ordering::Relaxed);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        %error,
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::error::OTelSdkError;
    use std::sync::Mutex;

    /// An exporter whose outcome the test sets.
    #[derive(Debug, Default)]
    struct Switchable(Mutex<bool>);

    impl SpanExporter for Switchable {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            if *self.0.lock().unwrap() {
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
        assert!(exporter.failing.load(Ordering::Relaxed));

        *exporter.inner.0.lock().unwrap() = true;
        assert!(exporter.export(Vec::new()).await.is_ok());
        assert!(!exporter.failing.load(Ordering::Relaxed));
    }
}
