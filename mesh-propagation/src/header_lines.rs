//! The request headers as the propagators read them: every line of a
//! repeated header, not only the first.
//!
//! `opentelemetry-http`'s [`HeaderExtractor`](opentelemetry_http::HeaderExtractor) answers `get` with the first
//! line only and silently skips lines that are not text in `get_all`. RFC
//! 9110 §5.3 says the lines of a list header (`tracestate`, `baggage`) form
//! one comma-separated value, and W3C Trace Context treats two `traceparent`
//! lines as invalid; both need every line, including the unreadable ones.

use std::borrow::Cow;

use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::Extractor;

/// What an unreadable line (bytes outside visible ASCII, space and tab)
/// reads as: a character no propagation grammar allows, so the line still
/// counts and still makes the value invalid.
pub(crate) const UNREADABLE: &str = "\u{fffd}";

/// An [`Extractor`] over a request's headers that keeps every line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderLines<'a>(pub &'a HeaderMap);

impl Extractor for HeaderLines<'_> {
    /// The first line of `key`, as B3 reads its headers ("the first value
    /// wins").
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(text)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }

    /// Every line of `key`, in arrival order, unreadable ones included.
    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let mut lines = self.0.get_all(key).iter().peekable();
        lines.peek()?;
        Some(lines.map(text).collect())
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
        let extractor = HeaderLines(&headers);
        let lines = extractor.get_all("tracestate").unwrap();
        assert_eq!(lines, ["a=1", UNREADABLE, "c=3"]);
        assert_eq!(combined(&lines), format!("a=1,{UNREADABLE},c=3"));
        assert_eq!(HeaderLines(&headers).get("tracestate"), Some("a=1"));
        assert_eq!(HeaderLines(&headers).get_all("baggage"), None);
    }
}
