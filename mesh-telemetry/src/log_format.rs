//! Log lines that carry the OpenTelemetry `trace_id` and `span_id`, so a log
//! line leads straight to its trace in Jaeger and back.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    registry::LookupSpan,
};

/// Wraps a `tracing-subscriber` event formatter and adds `trace_id` and
/// `span_id` of the active OpenTelemetry span: as the first keys of a JSON
/// object, or as trailing `key=value` pairs of a text line.
///
/// The ids come from the OpenTelemetry context that `tracing-opentelemetry`
/// attaches when a span is entered, so they are exactly the ids exported.
/// Lines outside any trace are written unchanged.
#[derive(Debug)]
pub struct WithTraceIds<F> {
    inner: F,
    json: bool,
}

impl<F> WithTraceIds<F> {
    /// Wraps a JSON formatter (its output must be one JSON object a line).
    pub fn json(inner: F) -> Self {
        Self { inner, json: true }
    }

    /// Wraps a text formatter (its output must end with a newline).
    pub fn text(inner: F) -> Self {
        Self { inner, json: false }
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
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let ids = span.span_context();
        if !ids.is_valid() {
            return self.inner.format_event(ctx, writer, event);
        }

        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let (trace_id, span_id) = (ids.trace_id(), ids.span_id());
        match (self.json, line.strip_prefix('{')) {
            (true, Some(rest)) => write!(
                writer,
                "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"
            ),
            _ => writeln!(
                writer,
                "{} trace_id={trace_id} span_id={span_id}",
                line.trim_end_matches('\n')
            ),
        }
    }
}
