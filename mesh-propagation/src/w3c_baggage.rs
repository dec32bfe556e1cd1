//! W3C Baggage: the `baggage` header, parsed and written exactly as the
//! specification's grammar says, within limits we document and enforce.
//!
//! It replaces the SDK's `BaggagePropagator`, which (in 0.33) reads only
//! the first `baggage` line, writes `%` and `\` unencoded, percent-decodes
//! properties but writes them back raw, and bounds decoded sizes rather
//! than the header it sends.

use std::{borrow::Cow, sync::LazyLock};

use opentelemetry::{
    Context,
    baggage::{Baggage, BaggageExt, BaggageMetadata},
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
};

use super::header_lines::{Field, Fields, Sink, Value, trim_ows};

const BAGGAGE: Field = Field::Baggage;
static FIELDS: LazyLock<[String; 1]> = LazyLock::new(|| [BAGGAGE.name().to_owned()]);

/// At most this many members are read or sent. The specification's grammar
/// allows 180, and a platform MUST propagate at least 64; 64 is also the
/// SDK's `Baggage` limit.
pub(crate) const MAX_MEMBERS: usize = 64;
/// At most this many bytes of `baggage` header are sent (the specification's
/// minimum, and its recommended bound).
pub const MAX_BYTES: usize = 8192;
/// At most this many bytes for one member, key, value and properties as
/// sent: a member larger than this is dropped whole.
pub const MAX_MEMBER_BYTES: usize = 4096;

/// The W3C Baggage propagator.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct W3cBaggage;

/// `tchar` (RFC 9110 §5.6.2): what a `token` key is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A `key`: a non-empty `token`.
pub(crate) fn is_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(is_tchar)
}

/// `baggage-octet`: printable ASCII except space, `"`, `,`, `;` and `\`.
pub(crate) fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

/// Decodes a `value`: `baggage-octet`s with `%XX` escapes, which must decode
/// to UTF-8. `+` is a literal plus (the specification is not a form
/// encoding). `None` when the value is malformed.
pub fn decode_value(value: &str) -> Option<String> {
    decode(value).map(Cow::into_owned)
}

/// [`decode_value`], borrowing `value` when it has no escape (the usual
/// case), so that it is copied once, into the [`Baggage`], not twice.
fn decode(value: &str) -> Option<Cow<'_, str>> {
    let bytes = value.as_bytes();
    let Some(first_escape) = bytes.iter().position(|&b| b == b'%') else {
        return bytes
            .iter()
            .all(|&b| is_baggage_octet(b))
            .then_some(Cow::Borrowed(value));
    };
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = first_escape;
    decoded.extend_from_slice(&bytes[..i]);
    if !decoded.iter().all(|&b| is_baggage_octet(b)) {
        return None;
    }
    while i < bytes.len() {
        let b = bytes[i];
        if !is_baggage_octet(b) {
            return None;
        }
        if b == b'%' {
            let high = hex_digit(*bytes.get(i + 1)?)?;
            let low = hex_digit(*bytes.get(i + 2)?)?;
            decoded.push(high << 4 | low);
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    String::from_utf8(decoded).ok().map(Cow::Owned)
}

/// Encodes a value: every byte outside `baggage-octet`, and `%` itself, as
/// `%XX`, so that [`decode_value`] gives back exactly `value`. Runs of bytes
/// that need no escape are copied whole, and escapes come from a table,
/// not the formatting machinery: a browser's User-Agent has a dozen.
pub(crate) fn encode_value(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut run_start = 0;
    for (i, &b) in value.as_bytes().iter().enumerate() {
        if is_baggage_octet(b) && b != b'%' {
            continue;
        }
        // A run of kept bytes is ASCII and follows an ASCII byte or the
        // start, so its ends are character boundaries; an empty run may
        // start inside a character, and `get` then gives `None`.
        if let Some(run) = value.get(run_start..i) {
            out.push_str(run);
        }
        out.push('%');
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
        run_start = i + 1;
    }
    if let Some(run) = value.get(run_start..) {
        out.push_str(run);
    }
}

/// Normalizes a member's properties (`;k=v;k2`): each a `token` key, with an
/// optional `baggage-octet` value, OWS trimmed. They are opaque to the
/// specification, so values are kept as written, not decoded. `None` when
/// one is malformed.
fn normalize_properties<'a>(properties: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut normalized = String::new();
    for property in properties {
        let (key, value) = match property.split_once('=') {
            Some((key, value)) => (trim_ows(key), Some(trim_ows(value))),
            None => (trim_ows(property), None),
        };
        if !is_key(key) || !value.is_none_or(|v| v.bytes().all(is_baggage_octet)) {
            return None;
        }
        if !normalized.is_empty() {
            normalized.push(';');
        }
        normalized.push_str(key);
        if let Some(value) = value {
            normalized.push('=');
            normalized.push_str(value);
        }
    }
    Some(normalized)
}

/// One member parsed from a `list-member`: `None` when it is malformed.
fn parse_member(member: &str) -> Option<(&str, Cow<'_, str>, String)> {
    let mut parts = member.split(';');
    let (key, value) = parts.next()?.split_once('=')?;
    let key = trim_ows(key);
    if !is_key(key) {
        return None;
    }
    let value = decode(trim_ows(value))?;
    Some((key, value, normalize_properties(parts)?))
}

/// Bytes of one member as [`W3cBaggage`] writes it.
pub(crate) fn member_len(key: &str, value: &str, properties: &str) -> usize {
    let value_len: usize = value
        .bytes()
        .map(|b| {
            if is_baggage_octet(b) && b != b'%' {
                1
            } else {
                3
            }
        })
        .sum();
    let properties_len = if properties.is_empty() {
        0
    } else {
        1 + properties.len()
    };
    key.len() + 1 + value_len + properties_len
}

/// Adds members to a [`Baggage`] while the header they make stays within
/// [`MAX_MEMBERS`], [`MAX_BYTES`] and [`MAX_MEMBER_BYTES`]; a member that
/// does not fit is left out whole, never truncated.
#[derive(Debug, Default)]
pub(crate) struct BaggageBuilder {
    baggage: Baggage,
    bytes: usize,
}

impl BaggageBuilder {
    /// Adds `key=value;properties` if it fits and `key` is not there yet;
    /// says whether it was added.
    pub(crate) fn push(&mut self, key: &str, value: Cow<'_, str>, properties: &str) -> bool {
        let len = member_len(key, &value, properties);
        let with_comma = len + usize::from(!self.baggage.is_empty());
        if len > MAX_MEMBER_BYTES
            || self.baggage.len() == MAX_MEMBERS
            || self.bytes + with_comma > MAX_BYTES
            || self.baggage.get(key).is_some()
            || !is_key(key)
        {
            return false;
        }
        self.bytes += with_comma;
        let _ = self.baggage.insert_with_metadata(
            key.to_owned(),
            value.into_owned(),
            BaggageMetadata::from(properties),
        );
        true
    }

    /// The baggage built so far.
    pub(crate) fn build(self) -> Baggage {
        self.baggage
    }
}

/// Parses a combined `baggage` value: malformed and empty members are
/// dropped, not the whole header (the specification allows removing an
/// entry it cannot read); a repeated key keeps its first value; members
/// past the limits are dropped whole.
pub(crate) fn parse_baggage(combined: &str) -> Baggage {
    let mut builder = BaggageBuilder::default();
    for member in combined.split(',').map(trim_ows) {
        if let Some((key, value, properties)) = parse_member(member) {
            builder.push(key, value, &properties);
        }
    }
    builder.build()
}

/// The member [`with_member_first`] was asked to put first, left out
/// because on its own it is over [`MAX_MEMBER_BYTES`]: a member is never
/// truncated, since a partial value would say something the caller never
/// sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeftOut {
    /// The member's size as it would be sent: key, `=` and encoded value.
    pub bytes: usize,
}

/// `baggage` with `key` set to `value` ahead of every other member, or
/// removed when `value` is `None`. The other members are kept, in key
/// order, as long as the header stays within the limits, so they yield to
/// the member this service vouches for. That member is only left out when
/// it is over [`MAX_MEMBER_BYTES`] on its own; the caller's member under
/// `key` is then removed all the same, and [`LeftOut`] says so, for the
/// caller to log.
pub fn with_member_first(
    baggage: &Baggage,
    key: &str,
    value: Option<&str>,
) -> (Baggage, Option<LeftOut>) {
    let mut builder = BaggageBuilder::default();
    let left_out = value.and_then(|value| {
        (!builder.push(key, Cow::Borrowed(value), "")).then(|| LeftOut {
            bytes: member_len(key, value, ""),
        })
    });
    for_each_sorted(baggage, |(other, (value, metadata))| {
        if other != key {
            builder.push(other, Cow::Borrowed(value.as_str()), metadata.as_str());
        }
    });
    (builder.build(), left_out)
}

type Entry<'a> = (&'a str, &'a (opentelemetry::StringValue, BaggageMetadata));

/// Calls `f` with the members in key order, so the header is the same on
/// every run. One member (the user agent alone, the usual case) has no
/// order to establish, and is passed without building a list.
fn for_each_sorted<'a>(baggage: &'a Baggage, mut f: impl FnMut(Entry<'a>)) {
    let entry = |(key, value): (&'a opentelemetry::Key, _)| (key.as_str(), value);
    if baggage.len() <= 1 {
        baggage.iter().map(entry).for_each(f);
        return;
    }
    let mut members: Vec<Entry<'_>> = baggage.iter().map(entry).collect();
    members.sort_unstable_by_key(|(key, _)| *key);
    members.into_iter().for_each(&mut f);
}

/// The `baggage` header for `baggage`: members in key order, values encoded,
/// within the limits (members that do not fit are left out whole). `None`
/// when there is nothing to send.
pub fn baggage_header(baggage: &Baggage) -> Option<String> {
    let mut header = String::new();
    let mut count = 0;
    for_each_sorted(baggage, |(key, (value, metadata))| {
        let properties = metadata.as_str();
        if count == MAX_MEMBERS || !is_key(key) || !properties_are_normalized(properties) {
            return;
        }
        let len = member_len(key, value.as_str(), properties);
        let comma = usize::from(count > 0);
        if len > MAX_MEMBER_BYTES || header.len() + len + comma > MAX_BYTES {
            return;
        }
        // The member's exact size: one allocation for one member, rather
        // than one for each push that outgrows the last.
        header.reserve(comma + len);
        if count > 0 {
            header.push(',');
        }
        header.push_str(key);
        header.push('=');
        encode_value(value.as_str(), &mut header);
        if !properties.is_empty() {
            header.push(';');
            header.push_str(properties);
        }
        count += 1;
    });
    (count > 0).then_some(header)
}

/// Whether `properties` are as [`normalize_properties`] writes them, so
/// that they may be sent as they are.
fn properties_are_normalized(properties: &str) -> bool {
    properties.is_empty()
        || normalize_properties(properties.split(';').filter(|p| !p.is_empty())).as_deref()
            == Some(properties)
}

/// What the request's `baggage` lines say, when there is one.
pub(crate) fn read(extractor: &(impl Fields + ?Sized)) -> Option<Baggage> {
    extractor
        .combined(BAGGAGE)
        .map(|combined| parse_baggage(&combined))
}

/// Writes `cx`'s baggage, when there is any to send.
pub(crate) fn write(cx: &Context, out: &mut (impl Sink + ?Sized)) {
    if let Some(header) = baggage_header(cx.baggage()) {
        out.put(BAGGAGE, Value::Owned(header));
    }
}

impl TextMapPropagator for W3cBaggage {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        write(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match read(extractor) {
            Some(baggage) => cx.with_baggage(baggage),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(FIELDS.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_encoding_whatever_their_bytes() {
        for value in [
            "Mozilla/4.0 (compatible; Netscape)",
            "50%",
            "a\\b",
            "Zoë \"q\"",
            "+",
        ] {
            let mut encoded = String::new();
            encode_value(value, &mut encoded);
            assert!(encoded.bytes().all(is_baggage_octet), "{encoded}");
            assert_eq!(decode_value(&encoded).as_deref(), Some(value));
        }
    }

    #[test]
    fn values_encode_exactly_whatever_their_bytes() {
        for (value, encoded) in [
            ("oha/1.16.0", "oha/1.16.0"),
            ("", ""),
            ("Zoë \"q\"", "Zo%C3%AB%20%22q%22"),
            ("é", "%C3%A9"),
            ("éa", "%C3%A9a"),
            ("a é", "a%20%C3%A9"),
            ("%%", "%25%25"),
            ("a,b;c\\", "a%2Cb%3Bc%5C"),
            ("\u{1F600}x", "%F0%9F%98%80x"),
            ("x\u{7f}", "x%7F"),
        ] {
            let mut out = String::from("k=");
            encode_value(value, &mut out);
            assert_eq!(out, format!("k={encoded}"), "{value:?}");
        }
    }

    #[test]
    fn a_value_without_escapes_is_borrowed_and_checked_all_the_same() {
        assert!(matches!(
            decode("oha/1.16.0"),
            Some(Cow::Borrowed("oha/1.16.0"))
        ));
        assert!(matches!(decode(""), Some(Cow::Borrowed(""))));
        assert_eq!(decode("a b"), None);
        assert_eq!(decode("ab\\"), None);
        assert_eq!(decode("é"), None, "not a baggage-octet");
        // With an escape: decoded, and bytes either side of it checked.
        assert_eq!(decode("a%2Cb").as_deref(), Some("a,b"));
        assert_eq!(decode("%C3%A9t%C3%A9").as_deref(), Some("été"));
        assert_eq!(decode("a c%20"), None, "before the first escape");
        assert_eq!(decode("a%20b c"), None, "after it");
        assert_eq!(decode("a%20b\""), None);
    }

    #[test]
    fn malformed_escapes_and_non_utf8_are_rejected() {
        assert_eq!(decode_value("%4"), None);
        assert_eq!(decode_value("%zz"), None);
        assert_eq!(decode_value("%FF"), None, "not UTF-8");
        assert_eq!(decode_value("a b"), None, "space is not a baggage-octet");
    }

    #[test]
    fn a_vouched_member_over_the_member_limit_is_left_out_whole_and_said_so() {
        let caller = parse_baggage("user-agent=Netscape,tenant=blue");
        // Each space encodes as `%20`: 1,400 of them make 4,200 bytes.
        let long = format!("Netscape{}", " ".repeat(1_400));
        let (baggage, left_out) = with_member_first(&caller, "user-agent", Some(&long));
        assert_eq!(
            left_out,
            Some(LeftOut {
                bytes: "user-agent=Netscape".len() + 3 * 1_400
            })
        );
        assert_eq!(baggage_header(&baggage).as_deref(), Some("tenant=blue"));

        // At the limit exactly it goes out.
        let fits = "a".repeat(MAX_MEMBER_BYTES - "user-agent=".len());
        let (baggage, left_out) = with_member_first(&caller, "user-agent", Some(&fits));
        assert_eq!(left_out, None);
        assert_eq!(
            baggage.get("user-agent").map(|v| v.as_str().len()),
            Some(fits.len())
        );
    }
}
