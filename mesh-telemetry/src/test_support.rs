//! What the crate's unit tests share: a span to export, and the log
//! lines a piece of code writes.

use std::sync::{Arc, Mutex};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

/// A finished SERVER span, trace 7, span 8, as an exporter receives it.
pub(crate) fn span() -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(7),
            SpanId::from(8),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: "GET /sayHello/{name}".into(),
        start_time: std::time::UNIX_EPOCH,
        end_time: std::time::UNIX_EPOCH,
        attributes: vec![],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: Default::default(),
    }
}

/// What `run` logged, as text lines, under a plain `fmt` subscriber.
pub(crate) fn captured(run: impl FnOnce()) -> String {
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(log.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, run);
    log.lines().join("\n")
}

/// Log lines written into a shared buffer, in order: a `MakeWriter` for
/// any layer under test.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Every line written so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8(bytes)
            .expect("log lines are UTF-8")
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
    type Writer = Self;

    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

/// A client configuration that trusts `pki`'s CA only, as
/// `OTEL_EXPORTER_OTLP_CERTIFICATE` would make it.
pub(crate) fn trusting(pki: &test_harness::throwaway_pki::ThrowawayPki) -> rustls::ClientConfig {
    let files = crate::collector_tls::TlsFiles {
        ca: Some(crate::collector_tls::FileSetting {
            var: "OTEL_EXPORTER_OTLP_CERTIFICATE",
            path: pki.ca_file().into(),
        }),
        ..Default::default()
    };
    crate::collector_tls::client_config(&files, true).expect("the CA file is good")
}
