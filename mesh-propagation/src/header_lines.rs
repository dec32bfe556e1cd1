//! The request headers as the propagators read them: every line of a
//! repeated header, not only the first.
//!
//! `opentelemetry-http`'s `HeaderExtractor` answers `get` with the first
//! line only and silently skips lines that are not text in `get_all`. RFC
//! 9110 §5.3 says the lines of a list header (`tracestate`, `baggage`) form
//! one comma-separated value, and W3C Trace Context treats two `traceparent`
//! lines as invalid; both need every line, including the unreadable ones.
//!
//! [`Sink`] is the other way: the headers the propagators write on an
//! outbound call, straight into its `HeaderMap` under names made once, not
//! parsed from text per call.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};

/// What an unreadable line (bytes outside visible ASCII, space and tab)
/// reads as: a character no propagation grammar allows, so the line still
/// counts and still makes the value invalid.
pub(crate) const UNREADABLE: &str = "\u{fffd}";

/// The headers the propagators read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Traceparent,
    Tracestate,
    Baggage,
    B3,
    B3TraceId,
    B3SpanId,
    B3ParentSpanId,
    B3Sampled,
    B3Flags,
}

const FIELDS: usize = 9;

impl Field {
    /// Every field, in declaration order (`ALL[f as usize] == f`).
    #[cfg(test)]
    const ALL: [Self; FIELDS] = [
        Self::Traceparent,
        Self::Tracestate,
        Self::Baggage,
        Self::B3,
        Self::B3TraceId,
        Self::B3SpanId,
        Self::B3ParentSpanId,
        Self::B3Sampled,
        Self::B3Flags,
    ];

    /// The field's header name, as the propagators' `fields()` list it.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Traceparent => "traceparent",
            Self::Tracestate => "tracestate",
            Self::Baggage => "baggage",
            Self::B3 => "b3",
            Self::B3TraceId => "x-b3-traceid",
            Self::B3SpanId => "x-b3-spanid",
            Self::B3ParentSpanId => "x-b3-parentspanid",
            Self::B3Sampled => "x-b3-sampled",
            Self::B3Flags => "x-b3-flags",
        }
    }

    /// The field named `key` (a lower-case header name). A `match` on the
    /// text compares lengths before bytes, so the request's other headers
    /// cost almost nothing.
    pub(crate) fn from_name(key: &str) -> Option<Self> {
        Some(match key {
            "traceparent" => Self::Traceparent,
            "tracestate" => Self::Tracestate,
            "baggage" => Self::Baggage,
            "b3" => Self::B3,
            "x-b3-traceid" => Self::B3TraceId,
            "x-b3-spanid" => Self::B3SpanId,
            "x-b3-parentspanid" => Self::B3ParentSpanId,
            "x-b3-sampled" => Self::B3Sampled,
            "x-b3-flags" => Self::B3Flags,
            _ => return None,
        })
    }

    /// The field's header name, made once.
    fn header_name(self) -> HeaderName {
        static NAMES: [HeaderName; FIELDS] = [
            HeaderName::from_static(Field::Traceparent.name()),
            HeaderName::from_static(Field::Tracestate.name()),
            HeaderName::from_static(Field::Baggage.name()),
            HeaderName::from_static(Field::B3.name()),
            HeaderName::from_static(Field::B3TraceId.name()),
            HeaderName::from_static(Field::B3SpanId.name()),
            HeaderName::from_static(Field::B3ParentSpanId.name()),
            HeaderName::from_static(Field::B3Sampled.name()),
            HeaderName::from_static(Field::B3Flags.name()),
        ];
        NAMES[self as usize].clone()
    }
}

/// How the formats read their fields: from any [`Extractor`] (the
/// [`opentelemetry::propagation::TextMapPropagator`] path), or from
/// [`HeaderLines`] directly, without the `Vec` that `get_all` returns.
pub(crate) trait Fields {
    /// The first line of `field`.
    fn first(&self, field: Field) -> Option<&str>;
    /// The line of `field` when exactly one came.
    fn only(&self, field: Field) -> Option<&str>;
    /// Every line of `field`, [`combined`].
    fn combined(&self, field: Field) -> Option<Cow<'_, str>>;
}

impl Fields for dyn Extractor + '_ {
    fn first(&self, field: Field) -> Option<&str> {
        self.get(field.name())
    }

    fn only(&self, field: Field) -> Option<&str> {
        match self.get_all(field.name()).as_deref() {
            Some(&[line]) => Some(line),
            _ => None,
        }
    }

    fn combined(&self, field: Field) -> Option<Cow<'_, str>> {
        self.get_all(field.name()).map(|lines| combined(&lines))
    }
}

/// An [`Extractor`] over a request's headers that keeps every line.
///
/// One pass over the request's headers, made up front, finds each of the
/// propagators' headers that is there, with its first line and how many
/// lines it has: asking for one that is absent costs nothing, and one that
/// is present is answered without hashing its name again. A request carries
/// most of the formats' headers absent, and every propagator asks for each
/// of its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderLines<'a> {
    headers: &'a HeaderMap,
    present: [Option<Present<'a>>; FIELDS],
}

/// A known header found in the request.
#[derive(Debug, Clone, Copy)]
struct Present<'a> {
    name: &'a HeaderName,
    first: &'a HeaderValue,
    lines: usize,
}

impl<'a> HeaderLines<'a> {
    /// The lines of `headers`.
    pub(crate) fn new(headers: &'a HeaderMap) -> Self {
        let mut present: [Option<Present<'a>>; FIELDS] = [None; FIELDS];
        // `iter` yields each name's lines in order, its first line first.
        for (name, value) in headers {
            if let Some(field) = Field::from_name(name.as_str()) {
                match &mut present[field as usize] {
                    Some(found) => found.lines += 1,
                    slot => {
                        *slot = Some(Present {
                            name,
                            first: value,
                            lines: 1,
                        });
                    }
                }
            }
        }
        Self { headers, present }
    }
}

impl Fields for HeaderLines<'_> {
    fn first(&self, field: Field) -> Option<&str> {
        self.present[field as usize].map(|found| text(found.first))
    }

    fn only(&self, field: Field) -> Option<&str> {
        self.present[field as usize]
            .filter(|found| found.lines == 1)
            .map(|found| text(found.first))
    }

    fn combined(&self, field: Field) -> Option<Cow<'_, str>> {
        let found = self.present[field as usize]?;
        if found.lines == 1 {
            return Some(Cow::Borrowed(text(found.first)));
        }
        lines(self.headers.get_all(found.name)).map(|lines| combined(&lines))
    }
}

impl Extractor for HeaderLines<'_> {
    /// The first line of `key`, as B3 reads its headers ("the first value
    /// wins").
    fn get(&self, key: &str) -> Option<&str> {
        match Field::from_name(key) {
            Some(field) => self.first(field),
            None => self.headers.get(key).map(text),
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.headers.keys().map(|name| name.as_str()).collect()
    }

    /// Every line of `key`, in arrival order, unreadable ones included.
    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let found = match Field::from_name(key) {
            Some(field) => self.present[field as usize]?,
            None => return lines(self.headers.get_all(key)),
        };
        if found.lines == 1 {
            return Some(vec![text(found.first)]);
        }
        lines(self.headers.get_all(found.name))
    }
}

fn lines<'a>(values: http::header::GetAll<'a, HeaderValue>) -> Option<Vec<&'a str>> {
    let mut lines = values.iter().peekable();
    lines.peek()?;
    Some(lines.map(text).collect())
}

/// A header value a format writes: most are built per call, a few (B3's
/// sampling states) are constants that need no copy and no check.
#[derive(Debug)]
pub(crate) enum Value {
    Static(&'static str),
    Owned(String),
}

/// Where the formats write their fields: any [`Injector`] (the
/// [`opentelemetry::propagation::TextMapPropagator`] path), or a
/// [`HeaderMap`] directly, under names made once.
pub(crate) trait Sink {
    /// Sets `field` to `value`, replacing what it held.
    fn put(&mut self, field: Field, value: Value);
}

impl Sink for dyn Injector + '_ {
    fn put(&mut self, field: Field, value: Value) {
        let value = match value {
            Value::Static(value) => value.to_owned(),
            Value::Owned(value) => value,
        };
        self.set(field.name(), value);
    }
}

/// As `opentelemetry-http`'s `HeaderInjector` writes: each field replaces
/// the header's lines, and a value that cannot be a header is skipped.
impl Sink for HeaderMap {
    fn put(&mut self, field: Field, value: Value) {
        let value = match value {
            Value::Static(value) => HeaderValue::from_static(value),
            Value::Owned(value) => match HeaderValue::try_from(value) {
                Ok(value) => value,
                Err(_) => return,
            },
        };
        self.insert(field.header_name(), value);
    }
}

fn text(value: &HeaderValue) -> &str {
    value.to_str().unwrap_or(UNREADABLE)
}

/// The lines of a list header combined into one value, as RFC 9110 §5.3
/// says: joined with commas, in order. One line is borrowed as it is.
pub(crate) fn combined<'a>(lines: &[&'a str]) -> Cow<'a, str> {
    match lines {
        [one] => Cow::Borrowed(one),
        many => Cow::Owned(many.join(",")),
    }
}

/// Optional whitespace (RFC 9110 §5.6.3): spaces and horizontal tabs.
pub(crate) fn trim_ows(text: &str) -> &str {
    // On bytes: `trim_matches` decodes each character to compare it. Both
    // are ASCII, so where they end is a character boundary.
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let bytes = text.as_bytes();
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    text.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_kept_in_order_and_an_unreadable_one_still_counts() {
        let mut headers = HeaderMap::new();
        headers.append("tracestate", HeaderValue::from_static("a=1"));
        headers.append("tracestate", HeaderValue::from_bytes(b"b=\xff").unwrap());
        headers.append("tracestate", HeaderValue::from_static("c=3"));
        let extractor = HeaderLines::new(&headers);
        let lines = extractor.get_all("tracestate").unwrap();
        assert_eq!(lines, ["a=1", UNREADABLE, "c=3"]);
        assert_eq!(combined(&lines), format!("a=1,{UNREADABLE},c=3"));
        assert_eq!(HeaderLines::new(&headers).get("tracestate"), Some("a=1"));
        assert_eq!(HeaderLines::new(&headers).get_all("baggage"), None);
    }

    #[test]
    fn only_spaces_and_tabs_are_trimmed() {
        assert_eq!(trim_ows(" \t a b\t \t"), "a b");
        assert_eq!(trim_ows("\u{a0}é\u{a0}"), "\u{a0}é\u{a0}");
        assert_eq!(trim_ows(" é "), "é");
        assert_eq!(trim_ows(" \t "), "");
        assert_eq!(trim_ows(""), "");
        assert_eq!(trim_ows("\na\r"), "\na\r");
    }

    #[test]
    fn both_readers_see_the_same_lines() {
        let mut headers = HeaderMap::new();
        headers.append("baggage", HeaderValue::from_static("a=1"));
        headers.append("baggage", HeaderValue::from_bytes(b"b=\xff").unwrap());
        headers.append("baggage", HeaderValue::from_static("c=3"));
        headers.append("traceparent", HeaderValue::from_static("x"));
        headers.append("traceparent", HeaderValue::from_static("y"));
        headers.append("tracestate", HeaderValue::from_static("s=1"));
        headers.append("x-b3-sampled", HeaderValue::from_static("1"));
        headers.append("x-b3-sampled", HeaderValue::from_static("0"));
        let lines = HeaderLines::new(&headers);
        let many = format!("a=1,{UNREADABLE},c=3");
        type Read = (Option<String>, Option<String>, Option<String>);
        fn read(reader: &(impl Fields + ?Sized), field: Field) -> Read {
            (
                reader.first(field).map(str::to_owned),
                reader.only(field).map(str::to_owned),
                reader.combined(field).map(Cow::into_owned),
            )
        }
        let some = |text: &str| Some(text.to_owned());
        let check = |reader: &dyn Fn(Field) -> Read| {
            let baggage = reader(Field::Baggage);
            assert_eq!(baggage, (some("a=1"), None, some(&many)));
            let traceparent = reader(Field::Traceparent);
            assert_eq!(traceparent, (some("x"), None, some("x,y")), "two lines");
            let tracestate = reader(Field::Tracestate);
            assert_eq!(tracestate, (some("s=1"), some("s=1"), some("s=1")));
            assert_eq!(reader(Field::B3Sampled).0, some("1"));
            assert_eq!(reader(Field::B3), (None, None, None));
        };
        check(&|field| read(&lines, field));
        let general: &dyn Extractor = &lines;
        check(&|field| read(general, field));
    }

    #[test]
    fn field_names_round_trip() {
        for (at, field) in Field::ALL.into_iter().enumerate() {
            assert_eq!(field as usize, at, "ALL is in declaration order");
            assert_eq!(Field::from_name(field.name()), Some(field));
            assert_eq!(field.header_name().as_str(), field.name());
        }
        assert_eq!(
            Field::from_name("Traceparent"),
            None,
            "names are lower case"
        );
        assert_eq!(Field::from_name("x-b3-trace"), None);
    }
}
