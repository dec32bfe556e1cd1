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
//! against about 10,000 for this one, trace-id lookup, the span's fields and
//! `write` included (BENCHMARKS.md has the figures).

use std::{
    cell::RefCell,
    fmt::{self, Write as _},
    io::Write as _,
    sync::OnceLock,
};

use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use tracing::{
    Event, Level, Subscriber,
    dispatcher::{Dispatch, WeakDispatch},
    field::{Field, Visit},
    span,
};
use tracing_subscriber::{
    fmt::MakeWriter,
    layer::{Context, Layer},
    registry::{LookupSpan, SpanRef},
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
        otel_ids(&id, &dispatch)
    }

    /// [`Self::current_ids`] for `current`, the current span, which this
    /// layer sees: read once a span and kept with its fields, since
    /// `get_otel_context` locks and clones the span's context each time.
    /// Once read, the span has started and its ids can no longer change.
    fn cached_ids<S>(&self, current: &SpanRef<'_, S>) -> Option<(TraceId, SpanId)>
    where
        S: for<'a> LookupSpan<'a>,
    {
        if let Some(ids) = current
            .extensions()
            .get::<SpanFields>()
            .and_then(|fields| fields.ids.get())
        {
            return Some(*ids);
        }
        // No lock on the span's extensions is held here: the lookup takes one.
        let ids = self.current_ids()?;
        if let Some(fields) = current.extensions().get::<SpanFields>() {
            let _ = fields.ids.set(ids);
        }
        Some(ids)
    }
}

/// The valid ids of span `id`'s OpenTelemetry span.
fn otel_ids(id: &span::Id, dispatch: &Dispatch) -> Option<(TraceId, SpanId)> {
    let cx = tracing_opentelemetry::get_otel_context(id, dispatch)?;
    let span = cx.span();
    let ids = span.span_context();
    ids.is_valid().then(|| (ids.trace_id(), ids.span_id()))
}

/// A span's fields as a JSON object's members (`"key":value,…`), rendered
/// once when the span is made, for every JSON line written inside it; and
/// its OpenTelemetry ids, once a line has read them.
struct SpanFields {
    json: String,
    ids: OnceLock<(TraceId, SpanId)>,
}

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
        span.extensions_mut().insert(SpanFields {
            json: fields,
            ids: OnceLock::new(),
        });
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if self.format != LogFormat::Json {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields { json: fields, .. }) = extensions.get_mut::<SpanFields>() {
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
                LogFormat::Json => self.json_line(line, event, &ctx),
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

impl<W> LogLines<W> {
    /// `{"trace_id":…,"span_id":…,"timestamp":…,"level":…,"fields":{…},"target":…,"span":{…}}`
    fn json_line<S>(
        &self,
        line: &mut String,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
    ) -> fmt::Result
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        // The current span, when this layer sees it (the usual case), is the
        // event's span too, and keeps its ids; otherwise each is looked up.
        let current = ctx.current_span().id().and_then(|id| ctx.span(id));
        let ids = match &current {
            Some(current) => self.cached_ids(current),
            None => self.current_ids(),
        };
        let span = match current {
            Some(current) if event.is_contextual() => Some(current),
            _ => ctx.event_span(event),
        };
        let meta = event.metadata();
        line.push('{');
        if let Some((trace_id, span_id)) = ids {
            line.push_str("\"trace_id\":\"");
            mesh_propagation::push_trace_id(line, trace_id);
            line.push_str("\",\"span_id\":\"");
            mesh_propagation::push_span_id(line, span_id);
            line.push_str("\",");
        }
        line.push_str("\"timestamp\":\"");
        push_timestamp(line, std::time::SystemTime::now());
        line.push_str("\",\"level\":\"");
        line.push_str(meta.level().as_str());
        line.push_str("\",\"fields\":{");
        event.record(&mut JsonFields::new(line));
        line.push_str("},\"target\":");
        write_json_str(line, meta.target())?;
        if let Some(span) = span {
            line.push_str(",\"span\":{");
            if let Some(SpanFields { json, .. }) = span.extensions().get::<SpanFields>()
                && !json.is_empty()
            {
                line.push_str(json);
                line.push(',');
            }
            line.push_str("\"name\":");
            write_json_str(line, span.name())?;
            line.push('}');
        }
        line.push_str("}\n");
        Ok(())
    }
}

/// `HH:MM:SS.mmm LEVEL message key=value… trace_id=…`
fn text_line(line: &mut String, event: &Event<'_>, ids: Option<(TraceId, SpanId)>) -> fmt::Result {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let of_day = (since_epoch.as_secs() % 86_400) as u32;
    push_digits(line, of_day / 3600, 2);
    line.push(':');
    push_digits(line, of_day / 60 % 60, 2);
    line.push(':');
    push_digits(line, of_day % 60, 2);
    line.push('.');
    push_digits(line, since_epoch.subsec_millis(), 3);
    // The level right-aligned in five columns, as `{:>5}` would write it.
    line.push_str(match *event.metadata().level() {
        Level::TRACE => " TRACE ",
        Level::DEBUG => " DEBUG ",
        Level::INFO => "  INFO ",
        Level::WARN => "  WARN ",
        Level::ERROR => " ERROR ",
    });
    event.record(&mut TextFields {
        out: line,
        first: true,
    });
    if let Some((trace_id, _)) = ids {
        line.push_str(" trace_id=");
        mesh_propagation::push_trace_id(line, trace_id);
    }
    line.push('\n');
    Ok(())
}

/// `n`, zero-padded to `width` digits (`n` has at most `width`, at most
/// 10). In `u32`, dividing by constants: `u128` division is a library call.
fn push_digits(out: &mut String, n: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut rest = n;
    for digit in digits[..width].iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    for &digit in &digits[..width] {
        out.push(char::from(digit));
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
    // Years past 9999 lose their high digits, as they did before: four
    // columns. The rest fit a u32 by construction.
    let (year, month, day) = ((year % 10_000) as u32, month as u32, day as u32);
    let of_day = (secs % 86_400) as u32;
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

/// `n` in decimal, as `{n}` writes it, without `fmt`'s machinery.
fn push_u64(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &digit in &digits[start..] {
        out.push(char::from(digit));
    }
}

/// `value` as `{:?}` writes it: the shortest text that reads back to the
/// same f64, keeping `.0` on whole numbers.
///
/// Latencies are whole thousandths of a millisecond, and those are written
/// here without `fmt`'s float machinery: below 8·10⁹ two distinct
/// thousandths are more than an f64's step apart, so the decimal
/// `n / 1000`, trailing zeros dropped, is the shortest text that reads back
/// to `value`, the very one `{:?}` writes. Any other value goes to `{:?}`.
pub(crate) fn push_f64(out: &mut String, value: f64) {
    let thousandths = (value * 1000.0).round();
    if !(value.is_sign_positive() && thousandths < 8e9 * 1000.0 && thousandths / 1000.0 == value) {
        let _ = write!(out, "{value:?}");
        return;
    }
    // Exact: a whole number below 2^53.
    let n = thousandths as u64;
    push_u64(out, n / 1000);
    out.push('.');
    let fraction = (n % 1000) as u32;
    match fraction {
        0 => out.push('0'),
        _ if fraction.is_multiple_of(100) => push_digits(out, fraction / 100, 1),
        _ if fraction.is_multiple_of(10) => push_digits(out, fraction / 10, 2),
        _ => push_digits(out, fraction, 3),
    }
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
        if value < 0 {
            self.out.push('-');
        }
        push_u64(self.out, value.unsigned_abs());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        push_u64(self.out, value);
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
        // JSON has no NaN or infinity, so they are null, as serde_json
        // writes them.
        if value.is_finite() {
            push_f64(self.out, value);
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
