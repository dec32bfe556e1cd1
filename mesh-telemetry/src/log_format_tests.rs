//! The log layer's lines, read back by a real JSON parser.

use std::time::{Duration, UNIX_EPOCH};

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use proptest::prelude::*;
use serde_json::{Value, json};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{Registry, layer::SubscriberExt};

use super::*;
use crate::{
    json_text::{JsonEntries, JsonObject},
    test_support::Captured,
};

/// Runs `f` with only the log layer installed, and returns its lines.
fn logged(format: LogFormat, f: impl FnOnce()) -> Vec<String> {
    let captured = Captured::default();
    let subscriber = Registry::default().with(LogLines::new(format, captured.clone()));
    tracing::subscriber::with_default(subscriber, f);
    captured.lines()
}

/// Runs `f` with the log layer and an OpenTelemetry layer installed, so
/// spans have ids; returns what `f` returned and the lines.
fn logged_in_traces<R>(format: LogFormat, f: impl FnOnce() -> R) -> (R, Vec<String>) {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let captured = Captured::default();
    let subscriber = Registry::default()
        .with(LogLines::new(format, captured.clone()))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let result = tracing::subscriber::with_default(subscriber, f);
    (result, captured.lines())
}

struct Pairs(Vec<(String, String)>);

impl JsonEntries for Pairs {
    fn for_each_entry(&self, entry: &mut dyn FnMut(&str, &str)) {
        for (key, value) in &self.0 {
            entry(key, value);
        }
    }
}

/// Any text: arbitrary Unicode (control characters included), or arbitrary
/// bytes converted lossily, as header values are.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        "[\\x00-\\x1f\"\\\\\\x7f]{0,12}",
    ]
}

proptest! {
    #[test]
    fn every_json_line_reads_back_to_the_values_logged(
        span_text in text(),
        value in text(),
        shown in text(),
        message in text(),
        pairs in proptest::collection::vec((text(), text()), 0..4),
        float in any::<f64>(),
        unsigned in any::<u64>(),
        signed in any::<i64>(),
        flag in any::<bool>(),
    ) {
        let lines = logged(LogFormat::Json, || {
            let span = tracing::info_span!("request_span", path = span_text.as_str(), n = signed);
            let _entered = span.enter();
            tracing::info!(
                value = value.as_str(),
                shown = %shown,
                float,
                unsigned,
                signed,
                flag,
                headers = %JsonObject(Pairs(pairs.clone())),
                "{message}"
            );
        });
        prop_assert_eq!(lines.len(), 1);
        let line: Value = serde_json::from_str(&lines[0]).expect("one JSON object a line");
        let fields = &line["fields"];
        prop_assert_eq!(&fields["message"], &json!(message));
        prop_assert_eq!(&fields["value"], &json!(value));
        prop_assert_eq!(&fields["shown"], &json!(shown));
        let float = if float.is_finite() { json!(float) } else { Value::Null };
        prop_assert_eq!(&fields["float"], &float);
        prop_assert_eq!(&fields["unsigned"], &json!(unsigned));
        prop_assert_eq!(&fields["signed"], &json!(signed));
        prop_assert_eq!(&fields["flag"], &json!(flag));
        // An object, keys and values intact; a repeated key keeps its last.
        let headers: serde_json::Map<String, Value> =
            pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        prop_assert_eq!(&fields["headers"], &Value::Object(headers));
        prop_assert_eq!(
            &line["span"],
            &json!({"path": span_text, "n": signed, "name": "request_span"})
        );
        prop_assert_eq!(&line["level"], &json!("INFO"));
        prop_assert_eq!(&line["target"], &json!(module_path!()));
    }
}

#[test]
fn a_line_outside_a_trace_has_every_key_but_the_ids() {
    let lines = logged(LogFormat::Json, || {
        tracing::warn!(status = 503_u16, latency_ms = 2.0, "request");
    });
    let line: Value = serde_json::from_str(&lines[0]).unwrap();
    let keys: Vec<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "{line}");
    for key in ["timestamp", "level", "fields", "target"] {
        assert!(keys.contains(&key), "{key} in {line}");
    }
    assert_eq!(
        line["fields"],
        json!({"message": "request", "status": 503, "latency_ms": 2.0})
    );
    assert!(line["fields"]["latency_ms"].is_f64(), "{line}");
    let timestamp = line["timestamp"].as_str().unwrap();
    assert_eq!(
        timestamp.len(),
        "2026-12-07T19:53:39.123456Z".len(),
        "{line}"
    );
}

#[test]
fn a_field_recorded_later_joins_the_span_and_the_newest_value_is_read() {
    let lines = logged(LogFormat::Json, || {
        let span = tracing::info_span!("work", late = tracing::field::Empty, k = 1);
        span.record("late", "yes");
        span.record("k", 2);
        let _entered = span.enter();
        tracing::info!("inside");
    });
    let line: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["span"], json!({"k": 2, "late": "yes", "name": "work"}));
}

#[test]
fn inside_a_trace_the_line_names_the_exported_ids() {
    let (ids, lines) = logged_in_traces(LogFormat::Json, || {
        let span = tracing::info_span!("request_span");
        let _entered = span.enter();
        tracing::info!("inside");
        let cx = span.context();
        let ids = cx.span().span_context().clone();
        (ids.trace_id().to_string(), ids.span_id().to_string())
    });
    let line: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["trace_id"], json!(ids.0));
    assert_eq!(line["span_id"], json!(ids.1));
    assert_eq!(line["span"], json!({"name": "request_span"}));
}

#[test]
fn text_lines_are_short_and_quote_only_strings() {
    let lines = logged(LogFormat::Text, || {
        let span = tracing::info_span!("request_span", ignored = "not in the line");
        let _entered = span.enter();
        tracing::info!(method = %"GET", route = "/sayHello/{name}", status = 200, "request");
    });
    assert_eq!(lines.len(), 1);
    let (time, rest) = lines[0].split_at(12);
    assert!(
        time.bytes()
            .enumerate()
            .all(|(i, b)| matches!((i, b), (2 | 5, b':') | (8, b'.') | (_, b'0'..=b'9'))),
        "{time}"
    );
    assert_eq!(
        rest,
        r#"  INFO request method=GET route="/sayHello/{name}" status=200"#
    );
}

#[test]
fn timestamps_are_rfc_3339_in_utc_to_the_microsecond() {
    for (since_epoch, written) in [
        (Duration::ZERO, "1970-01-01T00:00:00.000000Z"),
        // A leap day, and the last microsecond of a leap year.
        (
            Duration::from_secs(951_782_400),
            "2000-02-29T00:00:00.000000Z",
        ),
        (
            Duration::from_micros(1_735_689_599_999_999),
            "2024-12-31T23:59:59.999999Z",
        ),
        (
            Duration::from_micros(1_796_672_019_123_456),
            "2026-12-07T19:33:39.123456Z",
        ),
    ] {
        let mut out = String::new();
        push_timestamp(&mut out, UNIX_EPOCH + since_epoch);
        assert_eq!(out, written);
    }
}

#[test]
fn an_access_line_has_exactly_these_fields() {
    let lines = logged(LogFormat::Json, || {
        let method = http::Method::GET;
        tracing::info!(%method, route = %"/sayHello/{name}", status = 200_u16, latency_ms = 0.12, "request");
        tracing::error!(n = i64::MIN, m = u64::MAX, z = 0_u64, x = 1e300, "extremes");
    });
    assert!(
        lines[0].contains(
            r#""fields":{"message":"request","method":"GET","route":"/sayHello/{name}","status":200,"latency_ms":0.12},"#
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(&format!(
            r#""fields":{{"message":"extremes","n":-9223372036854775808,"m":18446744073709551615,"z":0,"x":{:?}}},"#,
            1e300
        )),
        "{}",
        lines[1]
    );
}

#[test]
fn whole_thousandths_are_written_as_debug_writes_them() {
    let written = |value: f64| {
        let mut out = String::new();
        push_f64(&mut out, value);
        out
    };
    for value in [
        0.0,
        -0.0,
        0.001,
        0.0005,
        0.01,
        0.1,
        0.12,
        0.123,
        1.0,
        2.5,
        10.0,
        1000.0,
        1234.5,
        7_999_999_999.999,
        8e9,
        8e9 + 0.001,
        1e15,
        1e16,
        1e-5,
        -1.5,
        0.000_123_4,
    ] {
        assert_eq!(written(value), format!("{value:?}"));
    }
}

proptest! {
    #[test]
    fn any_thousandths_and_any_float_are_written_as_debug_writes_them(
        thousandths in 0_u64..9_000_000_000_000,
        float in any::<f64>().prop_filter("finite", |f| f.is_finite()),
    ) {
        for value in [thousandths as f64 / 1000.0, float] {
            let mut out = String::new();
            push_f64(&mut out, value);
            prop_assert_eq!(out, format!("{value:?}"));
        }
    }
}

#[test]
fn each_span_keeps_its_own_ids_line_after_line() {
    let ids = |span: &tracing::Span| {
        let cx = span.context();
        let ids = cx.span().span_context().clone();
        json!([ids.trace_id().to_string(), ids.span_id().to_string()])
    };
    let (expected, lines) = logged_in_traces(LogFormat::Json, || {
        let outer = tracing::info_span!("outer");
        let _outer = outer.enter();
        tracing::info!("one");
        let inner = tracing::info_span!("inner");
        {
            let _inner = inner.enter();
            tracing::info!("two");
        }
        tracing::info!("three");
        [ids(&outer), ids(&inner), ids(&outer)]
    });
    assert_eq!(lines.len(), 3);
    for (line, expected) in lines.iter().zip(expected) {
        let line: Value = serde_json::from_str(line).unwrap();
        assert_eq!(json!([line["trace_id"], line["span_id"]]), expected);
    }
}

#[test]
fn text_lines_pad_the_level_and_end_with_the_trace_id() {
    let (trace_id, lines) = logged_in_traces(LogFormat::Text, || {
        let span = tracing::info_span!("request_span");
        let _entered = span.enter();
        tracing::warn!(status = 503, "request");
        tracing::error!("failed");
        span.context().span().span_context().trace_id().to_string()
    });
    assert_eq!(
        lines[0][12..],
        format!("  WARN request status=503 trace_id={trace_id}")
    );
    assert_eq!(lines[1][12..], format!(" ERROR failed trace_id={trace_id}"));
}
