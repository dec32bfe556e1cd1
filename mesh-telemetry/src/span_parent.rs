//! Parenting a `tracing` span on an OpenTelemetry context, without
//! swallowing the failure.
//!
//! [`OpenTelemetrySpanExt::set_parent`] fails when the subscriber has no
//! OpenTelemetry layer, when no layer enabled the span, or when the span's
//! OpenTelemetry span was already started. The span is then not part of the
//! caller's trace, and a context read from it carries neither the trace nor
//! the caller's baggage (the `user-agent` member that routes to v2). The
//! services' own subscriber ([`crate::init`]) enables every span they make
//! at `INFO`, whatever `RUST_LOG` says, and parents each before anything
//! starts it, so this should not happen; if it does, it is said once, the
//! span is marked, and the caller can fall back on the context it holds.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::Context;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The attribute that marks a span whose parent could not be set: its
/// value is the reason.
pub const PARENT_ERROR_ATTRIBUTE: &str = "mesh.parent_error";

static WARNED: AtomicBool = AtomicBool::new(false);

/// Makes `cx` the parent of `span`. On failure: a warning, once per
/// process (the cause is the set-up, so it would repeat on every request);
/// the attribute [`PARENT_ERROR_ATTRIBUTE`] on the span, where it has an
/// OpenTelemetry span to mark; and `false`, so the caller can propagate
/// `cx` itself rather than the unparented span's context.
pub fn set_parent(span: &tracing::Span, cx: Context) -> bool {
    set_parent_warning_once(span, cx, &WARNED)
}

fn set_parent_warning_once(span: &tracing::Span, cx: Context, warned: &AtomicBool) -> bool {
    let Err(error) = span.set_parent(cx) else {
        return true;
    };
    if !warned.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            %error,
            span = span.metadata().map_or("(disabled)", |meta| meta.name()),
            "cannot parent a span on the incoming trace; its trace starts here instead \
             (logged once)"
        );
    }
    span.set_attribute(PARENT_ERROR_ATTRIBUTE, error.to_string());
    false
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::{
        Context,
        trace::{
            SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
            TracerProvider as _,
        },
    };
    use opentelemetry_sdk::{
        error::OTelSdkResult,
        trace::{SdkTracerProvider, SpanData, SpanExporter},
    };
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Finished spans, kept for the test to read.
    #[derive(Debug, Clone, Default)]
    struct Kept(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Kept {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    fn remote_parent() -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
            TraceFlags::SAMPLED,
            true,
            TraceState::NONE,
        ))
    }

    /// Runs `body` under a subscriber with the OpenTelemetry layer, and
    /// gives the spans it ended, as exported.
    fn exported_under_the_layer(body: impl FnOnce()) -> Vec<SpanData> {
        let kept = Kept::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(kept.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, body);
        kept.0.lock().unwrap().clone()
    }

    #[test]
    fn a_fresh_span_under_the_opentelemetry_layer_takes_the_parent() {
        let spans = exported_under_the_layer(|| {
            let span = tracing::info_span!("request");
            assert!(set_parent(&span, remote_parent()));
        });
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].parent_span_id, SpanId::from(0x00f0_67aa_0ba9_02b7));
        assert!(
            spans[0]
                .attributes
                .iter()
                .all(|kv| kv.key.as_str() != PARENT_ERROR_ATTRIBUTE)
        );
    }

    #[test]
    fn a_span_already_started_keeps_its_root_is_marked_and_says_so() {
        let spans = exported_under_the_layer(|| {
            let span = tracing::info_span!("request");
            // Reading the context starts the OpenTelemetry span.
            let _started = span.context();
            assert!(!set_parent(&span, remote_parent()));
        });
        assert_eq!(spans[0].parent_span_id, SpanId::INVALID);
        let mark = spans[0]
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == PARENT_ERROR_ATTRIBUTE)
            .expect("the span is marked");
        assert_eq!(
            mark.value.as_str(),
            "Span has already been started, cannot set parent"
        );
    }

    #[test]
    fn without_the_opentelemetry_layer_it_fails_and_warns_once() {
        let warned = AtomicBool::new(false);
        let log = crate::test_support::captured(|| {
            for _ in 0..2 {
                let span = tracing::info_span!("request");
                assert!(!set_parent_warning_once(&span, remote_parent(), &warned));
            }
        });
        assert_eq!(log.matches("cannot parent a span").count(), 1, "{log}");
        assert!(log.contains("OpenTelemetry layer not found"), "{log}");
    }
}
