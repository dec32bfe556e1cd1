//! The request headers as the propagators read them: every line of a
//! repeated header, not only the first.
//!
//! `opentelemetry-http`'s `HeaderExtractor` answers `get` with the first
//! line only and silently skips lines that are not text in `get_all`. RFC
//! 9110 §5.3 says the lines of a list header (`tracestate`, `baggage`) form
//! one comma-separated value, and W3C Trace Context treats two `traceparent`
//! lines as invalid; both need every line, including the unreadable ones.
//!
//! [`HeaderWriter`] is the other way: the headers the propagators write on
//! an outbound call, under names made once, not parsed from text per call.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};

/// What an unreadable line (bytes outside visible ASCII, space and tab)
/// reads as: a character no propagation grammar allows, so the line still
/// counts and still makes the value invalid.
pub(crate) const UNREADABLE: &str = "\u{fffd}";

/// The headers the propagators read and write.
const KNOWN: [&str; 9] = [
    "traceparent",
    "tracestate",
    "baggage",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
];

/// [`KNOWN`] as header names.
static KNOWN_NAMES: [HeaderName; KNOWN.len()] = [
    HeaderName::from_static(KNOWN[0]),
    HeaderName::from_static(KNOWN[1]),
    HeaderName::from_static(KNOWN[2]),
    HeaderName::from_static(KNOWN[3]),
    HeaderName::from_static(KNOWN[4]),
    HeaderName::from_static(KNOWN[5]),
    HeaderName::from_static(KNOWN[6]),
    HeaderName::from_static(KNOWN[7]),
    HeaderName::from_static(KNOWN[8]),
];

/// The index of `key` in [`KNOWN`].
fn known(key: &str) -> Option<usize> {
    KNOWN.iter().position(|name| *name == key)
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
    present: [Option<Present<'a>>; KNOWN.len()],
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
        let mut present: [Option<Present<'a>>; KNOWN.len()] = [None; KNOWN.len()];
        // `iter` yields each name's lines in order, its first line first.
        for (name, value) in headers {
            if let Some(i) = known(name.as_str()) {
                match &mut present[i] {
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

impl Extractor for HeaderLines<'_> {
    /// The first line of `key`, as B3 reads its headers ("the first value
    /// wins").
    fn get(&self, key: &str) -> Option<&str> {
        match known(key) {
            Some(i) => self.present[i].map(|found| found.first),
            None => self.headers.get(key),
        }
        .map(text)
    }

    fn keys(&self) -> Vec<&str> {
        self.headers.keys().map(|name| name.as_str()).collect()
    }

    /// Every line of `key`, in arrival order, unreadable ones included.
    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let found = match known(key) {
            Some(i) => self.present[i]?,
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

/// An [`Injector`] into outbound headers, as `opentelemetry-http`'s
/// `HeaderInjector` is (each `set` replaces the header's lines; a name or
/// value that cannot be a header is skipped), without parsing the
/// propagators' own header names or copying the values.
#[derive(Debug)]
pub(crate) struct HeaderWriter<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        let name = match known(key) {
            Some(i) => KNOWN_NAMES[i].clone(),
            None => match HeaderName::from_bytes(key.as_bytes()) {
                Ok(name) => name,
                Err(_) => return,
            },
        };
        if let Ok(value) = HeaderValue::try_from(value) {
            self.0.insert(name, value);
        }
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
    text.trim_matches([' ', '\t'])
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
}
