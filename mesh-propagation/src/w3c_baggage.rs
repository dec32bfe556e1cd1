//! W3C Baggage: the `baggage` header, parsed and written exactly as the
//! specification's grammar says, within limits we document and enforce.
//!
//! It replaces the SDK's `BaggagePropagator`, which (in 0.33) reads only
//! the first `baggage` line, writes `%` and `\` unencoded, percent-decodes
//! properties but writes them back raw, and bounds decoded sizes rather
//! than the header it sends.

use std::{fmt::Write as _, sync::LazyLock};

use opentelemetry::{
    Context,
    baggage::{Baggage, BaggageExt, BaggageMetadata},
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
};

use super::header_lines::{combined, trim_ows};

const BAGGAGE: &str = "baggage";
static FIELDS: LazyLock<[String; 1]> = LazyLock::new(|| [BAGGAGE.to_owned()]);

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
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
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
    String::from_utf8(decoded).ok()
}

/// Encodes a value: every byte outside `baggage-octet`, and `%` itself, as
/// `%XX`, so that [`decode_value`] gives back exactly `value`.
pub(crate) fn encode_value(value: &str, out: &mut String) {
    for &b in value.as_bytes() {
        if is_baggage_octet(b) && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
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
fn parse_member(member: &str) -> Option<(&str, String, String)> {
    let mut parts = member.split(';');
    let (key, value) = parts.next()?.split_once('=')?;
    let key = trim_ows(key);
    if !is_key(key) {
        return None;
    }
    let value = decode_value(trim_ows(value))?;
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
    pub(crate) fn push(&mut self, key: &str, value: &str, properties: &str) -> bool {
        let len = member_len(key, value, properties);
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
            value.to_owned(),
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
            builder.push(key, &value, &properties);
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
        (!builder.push(key, value, "")).then(|| LeftOut {
            bytes: member_len(key, value, ""),
        })
    });
    for (other, (value, metadata)) in sorted(baggage) {
        if other != key {
            builder.push(other, value.as_str(), metadata.as_str());
        }
    }
    (builder.build(), left_out)
}

type Entry<'a> = (&'a str, &'a (opentelemetry::StringValue, BaggageMetadata));

/// The members in key order, so the header is the same on every run.
fn sorted(baggage: &Baggage) -> Vec<Entry<'_>> {
    let mut members: Vec<Entry<'_>> = baggage.iter().map(|(k, v)| (k.as_str(), v)).collect();
    members.sort_unstable_by_key(|(key, _)| *key);
    members
}

/// The `baggage` header for `baggage`: members in key order, values encoded,
/// within the limits (members that do not fit are left out whole). `None`
/// when there is nothing to send.
pub fn baggage_header(baggage: &Baggage) -> Option<String> {
    let mut header = String::new();
    let mut count = 0;
    for (key, (value, metadata)) in sorted(baggage) {
        let properties = metadata.as_str();
        if count == MAX_MEMBERS
            || !is_key(key)
            || normalize_properties(properties.split(';').filter(|p| !p.is_empty())).as_deref()
                != Some(properties)
        {
            continue;
        }
        let len = member_len(key, value.as_str(), properties);
        if len > MAX_MEMBER_BYTES || header.len() + len + usize::from(count > 0) > MAX_BYTES {
            continue;
        }
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
    }
    (count > 0).then_some(header)
}

impl TextMapPropagator for W3cBaggage {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        if let Some(header) = baggage_header(cx.baggage()) {
            injector.set(BAGGAGE, header);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extractor.get_all(BAGGAGE) {
            Some(lines) => cx.with_baggage(parse_baggage(&combined(&lines))),
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
