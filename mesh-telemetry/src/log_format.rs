//! The log layer: one line an event, written straight into a reused buffer
//! and out in one write, carrying the OpenTelemetry `trace_id` (and, in JSON,
//! the `span_id`), so a log line leads straight to its trace in Jaeger and back.
//!
//! - JSON, for machines ([`LogFormat::Json`]): the keys `tracing-subscriber`'s
//!   JSON format writes (`timestamp`, `level`, `fields`, `target`, and `span`
//!   with the current span's fields and `name`), with `trace_id` and `span_id`
//!   first. A [`JsonObject`](crate::json_text::JsonObject) field is an object.
//! - Text, for people at a terminal ([`LogFormat::Text`]): time, level, the
//!   message and its fields, and the trace id; no span context, so a request
//!   is one short line.
//!
//! Why not `tracing-subscriber`'s own `fmt` layer: its JSON format keeps each
//! span's fields as JSON text and parses them back into a `serde_json::Value`
//! for every event: about 66,000 instructions a line in the service pair,
//! against about 13,000 for this one, trace-id lookup and `write` included
//! (BENCHMARKS.md has the figures).

use std::{cell::RefCell, fmt::Write as _, io::Write as _, sync::OnceLock};

use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use tracing::{
    Event, Subscriber,
    dispatcher::{Dispatch, WeakDispatch},
    field::{Field, Visit},
    span,
};
use tracing_subscriber::{
    fmt::MakeWriter,
    layer::{Context, Layer},
    registry::LookupSpan,
};

use crate::{
    config::LogFormat,
    json_text::{JsonValueWriter, write_json_str},
};

/// Writes each event it sees as one line to `W`'s writer.
#[derive(Debug)]
pub(crate) struct LogLines<W> {
    format: LogFormat,
    make_writer: W,
    /// The subscriber this layer is part of, to read the current span's
    /// OpenTelemetry ids from.
    dispatch: OnceLock<WeakDispatch>,
}

impl<W> LogLines<W> {
    /// Lines in `format`, written to the writers `make_writer` makes.
    pub(crate) fn new(format: LogFormat, make_writer: W) -> Self {
        Self {
            format,
            make_writer,
            dispatch: OnceLock::new(),
        }
    }

    /// The ids of the current span's OpenTelemetry span, as
    /// `tracing-opentelemetry` keeps them, so they are exactly the ids
    /// exported. The current span whatever this layer's filter says, so a
    /// warning at `RUST_LOG=warn` still names its trace. (Context activation
    /// is off, see [`crate::telemetry::subscriber`].)
    fn current_ids(&self) -> Option<(TraceId, SpanId)> {
        let dispatch = self.dispatch.get()?.upgrade()?;
        let id = dispatch.current_span().id()?.clone();
        let cx = tracing_opentelemetry::get_otel_context(&id, &dispatch)?;
        let span = cx.span();
        let ids = span.span_context();
        ids.is_valid().then(|| (ids.trace_id(), ids.span_id()))
    }
}

/// A span's fields as a JSON object's members (`"key":value,…`), rendered
/// once when the span is made, for every JSON line written inside it.
struct SpanFields(String);

impl<S, W> Layer<S> for LogLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        // Text lines carry no span fields, so nothing is kept for them.
        if self.format != LogFormat::Json {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        // Room for a SERVER span's fields, so rendering them does not grow
        // the string step by step.
        let mut fields = String::with_capacity(256);
        attrs.record(&mut JsonFields::new(&mut fields));
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if self.format != LogFormat::Json {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            // Appended: a field recorded twice appears twice, and JSON
            // readers (serde_json, jq) keep the last, the newest value.
            let mut visitor = JsonFields::new(fields);
            visitor.first = visitor.out.is_empty();
            values.record(&mut visitor);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        thread_local! {
            static LINE: RefCell<String> = const { RefCell::new(String::new()) };
        }
        let write = |line: &mut String| {
            line.clear();
            let written = match self.format {
                LogFormat::Json => json_line(line, event, self.current_ids(), &ctx),
                LogFormat::Text => text_line(line, event, self.current_ids()),
            };
            if written.is_ok() {
                // One write a line, so lines from two threads never mix.
                let _ = self.make_writer.make_writer().write_all(line.as_bytes());
            }
        };
        // A field whose formatting logs an event lands here again, with the
        // thread's buffer in use: that line gets a buffer of its own.
        let reused = LINE.try_with(|line| match line.try_borrow_mut() {
            Ok(mut line) => {
                write(&mut line);
                true
            }
            Err(_) => false,
        });
        if reused != Ok(true) {
            write(&mut String::new());
        }
    }
}

/// `{"trace_id":…,"span_id":…,"timestamp":…,"level":…,"fields":{…},"target":…,"span":{…}}`
fn json_line<S>(
    line: &mut String,
    event: &Event<'_>,
    ids: Option<(TraceId, SpanId)>,
    ctx: &Context<'_, S>,
) -> std::fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let meta = event.metadata();
    line.push('{');
    if let Some((trace_id, span_id)) = ids {
        write!(
            line,
            "\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\","
        )?;
    }
    line.push_str("\"timestamp\":\"");
    push_timestamp(line, std::time::SystemTime::now());
    line.push_str("\",\"level\":\"");
    line.push_str(meta.level().as_str());
    line.push_str("\",\"fields\":{");
    event.record(&mut JsonFields::new(line));
    line.push_str("},\"target\":");
    write_json_str(line, meta.target())?;
    if let Some(span) = ctx.event_span(event) {
        line.push_str(",\"span\":{");
        if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>()
            && !fields.is_empty()
        {
            line.push_str(fields);
            line.push(',');
        }
        line.push_str("\"name\":");
        write_json_str(line, span.name())?;
        line.push('}');
    }
    line.push_str("}\n");
    Ok(())
}

/// `HH:MM:SS.mmm LEVEL message key=value… trace_id=…`
fn text_line(
    line: &mut String,
    event: &Event<'_>,
    ids: Option<(TraceId, SpanId)>,
) -> std::fmt::Result {
    let since_midnight = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        % 86_400_000;
    push_digits(line, since_midnight / 3_600_000, 2);
    line.push(':');
    push_digits(line, since_midnight / 60_000 % 60, 2);
    line.push(':');
    push_digits(line, since_midnight / 1000 % 60, 2);
    line.push('.');
    push_digits(line, since_midnight % 1000, 3);
    write!(line, " {:>5} ", event.metadata().level())?;
    event.record(&mut TextFields {
        out: line,
        first: true,
    });
    if let Some((trace_id, _)) = ids {
        write!(line, " trace_id={trace_id}")?;
    }
    line.push('\n');
    Ok(())
}

/// `n`, zero-padded to `width` digits (`n` has at most `width`).
fn push_digits(out: &mut String, n: impl Into<u128>, width: u32) {
    let n: u128 = n.into();
    for place in (0..width).rev() {
        let digit = (n / 10u128.pow(place) % 10) as u8;
        out.push(char::from(b'0' + digit));
    }
}

/// `time` as RFC 3339 in UTC, to the microsecond, as `tracing-subscriber`
/// writes it: `2026-12-07T19:53:39.123456Z`.
pub(crate) fn push_timestamp(out: &mut String, time: std::time::SystemTime) {
    let since_epoch = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    push_digits(out, year, 4);
    out.push('-');
    push_digits(out, month, 2);
    out.push('-');
    push_digits(out, day, 2);
    out.push('T');
    push_digits(out, of_day / 3600, 2);
    out.push(':');
    push_digits(out, of_day / 60 % 60, 2);
    out.push(':');
    push_digits(out, of_day % 60, 2);
    out.push('.');
    push_digits(out, since_epoch.subsec_micros(), 6);
    out.push('Z');
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Writes fields as a JSON object's members (`"key":value,…`).
pub(crate) struct JsonFields<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> JsonFields<'a> {
    pub(crate) fn new(out: &'a mut String) -> Self {
        Self { out, first: true }
    }

    fn key(&mut self, field: &Field) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        let _ = write_json_str(self.out, field_name(field));
        self.out.push(':');
    }
}

/// A field's name, without the `r#` of a raw identifier.
fn field_name(field: &Field) -> &'static str {
    let name = field.name();
    name.strip_prefix("r#").unwrap_or(name)
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        let _ = write_json_str(self.out, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        // `{:?}` is the shortest text that reads back to the same f64, and
        // keeps `.0` on whole numbers; JSON has no NaN or infinity, so they
        // are null, as serde_json writes them.
        if value.is_finite() {
            let _ = write!(self.out, "{value:?}");
        } else {
            self.out.push_str("null");
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &tracing::field::display(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.key(field);
        JsonValueWriter::write(self.out, value);
    }
}

/// Writes fields as `tracing-subscriber`'s default text does: the message
/// as it is, then ` key=value` with strings quoted.
struct TextFields<'a> {
    out: &'a mut String,
    first: bool,
}

impl Visit for TextFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.first {
            self.out.push(' ');
        }
        self.first = false;
        if field.name() != "message" {
            self.out.push_str(field_name(field));
            self.out.push('=');
        }
        let _ = write!(self.out, "{value:?}");
    }
}

#[cfg(test)]
#[path = "log_format_tests.rs"]
mod tests;
