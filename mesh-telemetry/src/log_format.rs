//! Log lines that carry the OpenTelemetry `trace_id` (and, in JSON, the
//! `span_id`), so a log line leads straight to its trace in Jaeger and back.
//!
//! - JSON, for machines: the `tracing-subscriber` JSON line with the ids as
//!   its first keys ([`WithTraceIds`]).
//! - Text, for people at a terminal ([`ShortLine`]): time, level, the
//!   message and its fields, and the trace id; no span context, so a request
//!   is one short line.

use std::fmt;

use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use tracing::{Event, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    registry::LookupSpan,
};

/// Wraps a `tracing-subscriber` JSON event formatter and adds `trace_id` and
/// `span_id` of the active OpenTelemetry span as the first keys.
///
/// The ids are read from the current `tracing` span's OpenTelemetry context
/// (`Span::current().context()`; context activation is off, see
/// [`crate::telemetry::subscriber`]), so they are exactly the ids exported.
/// Lines outside any trace are written unchanged.
#[derive(Debug)]
pub(crate) struct WithTraceIds<F> {
    inner: F,
}

impl<F> WithTraceIds<F> {
    /// Wraps a JSON formatter (its output must be one JSON object a line).
    pub fn json(inner: F) -> Self {
        Self { inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some((trace_id, span_id)) = current_ids() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(
                writer,
                "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"
            ),
            None => write!(writer, "{line}"),
        }
    }
}

/// One short text line an event: `HH:MM:SS.mmm LEVEL message key=value…`
/// and `trace_id=…` inside a trace.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ShortLine;

impl<S, N> FormatEvent<S, N> for ShortLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let since_midnight = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            % 86_400_000;
        let (h, m, s, ms) = (
            since_midnight / 3_600_000,
            since_midnight / 60_000 % 60,
            since_midnight / 1000 % 60,
            since_midnight % 1000,
        );
        write!(
            writer,
            "{h:02}:{m:02}:{s:02}.{ms:03} {:>5} ",
            event.metadata().level()
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        if let Some((trace_id, _)) = current_ids() {
            write!(writer, " trace_id={trace_id}")?;
        }
        writeln!(writer)
    }
}

/// The ids of the current `tracing` span's OpenTelemetry span, as
/// `tracing-opentelemetry` keeps them, so they are exactly the ids exported.
fn current_ids() -> Option<(TraceId, SpanId)> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let ids = span.span_context();
    ids.is_valid().then(|| (ids.trace_id(), ids.span_id()))
}
