//! W3C Trace Context, Level 1 (Recommendation) and Level 2: `traceparent`
//! and `tracestate`, parsed exactly as the specification's grammar and
//! processing model say.
//!
//! It replaces the SDK's `TraceContextPropagator`, which (in 0.33) accepts
//! fields of the wrong length and flags like `+1`, zero-pads a short trace
//! id, reads only the first `tracestate` line, loses the whole `tracestate`
//! to optional whitespace, re-emits invalid members, rejects valid
//! multi-tenant keys, and clears the Level 2 random-trace-id flag.
//!
//! `tracestate` keys follow the current editor's draft (Level 2), whose key
//! grammar replaced Level 1's simple and multi-tenant keys with one rule
//! that accepts all of them and more; see [`is_tracestate_key`].

use std::sync::{Arc, LazyLock};

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
    trace::{SpanContext, SpanId, TraceContextExt, TraceId},
};

use super::{
    caller_trace::{
        CallerTrace, Sampling, outbound_random_trace_id, outbound_sampling, outbound_tracestate,
    },
    header_lines::{Field, Fields, Sink, Value, trim_ows},
    hex,
};

const TRACEPARENT: Field = Field::Traceparent;
const TRACESTATE: Field = Field::Tracestate;
static FIELDS: LazyLock<[String; 2]> =
    LazyLock::new(|| [TRACEPARENT.name().to_owned(), TRACESTATE.name().to_owned()]);

/// Trace flag bit 0: the caller may have recorded the trace.
pub(crate) const FLAG_SAMPLED: u8 = 0x01;
/// Trace flag bit 1 (Level 2): at least the right-most 7 bytes of the trace
/// id are random.
pub(crate) const FLAG_RANDOM_TRACE_ID: u8 = 0x02;

/// At most this many `tracestate` list-members (§3.3.1.1).
pub(crate) const MAX_TRACESTATE_MEMBERS: usize = 32;

/// The W3C Trace Context propagator.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct W3cTraceContext;

/// A parsed `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Traceparent {
    /// The trace id (never all zeros).
    pub trace_id: TraceId,
    /// The caller's span id, `parent-id` (never all zeros).
    pub parent_id: SpanId,
    /// The flags as received, all eight bits.
    pub flags: u8,
}

/// Where each field of a `traceparent` starts (§3.2.2):
/// `version "-" trace-id "-" parent-id "-" trace-flags`, of 2, 32, 16 and 2
/// hex digits.
mod layout {
    /// `version`, 2 digits.
    pub(super) const VERSION: usize = 0;
    /// `trace-id`, 32 digits, after the `-` that ends the version.
    pub(super) const TRACE_ID: usize = VERSION + 2 + 1;
    /// `parent-id`, 16 digits.
    pub(super) const PARENT_ID: usize = TRACE_ID + 32 + 1;
    /// `trace-flags`, 2 digits.
    pub(super) const FLAGS: usize = PARENT_ID + 16 + 1;
    /// The `-` after each of the first three fields.
    pub(super) const DELIMITERS: [usize; 3] = [TRACE_ID - 1, PARENT_ID - 1, FLAGS - 1];
}

/// The length of a version-00 `traceparent`: where its flags end.
pub(crate) const TRACEPARENT_LEN: usize = layout::FLAGS + 2;

/// The `N` lower-hex digits at `at`.
fn hex_field<const N: usize>(value: &[u8], at: usize) -> Option<&[u8]> {
    value.get(at..at + N)
}

/// Parses a `traceparent` value (§3.2), after the optional whitespace around
/// it: version `00` must be exactly [`TRACEPARENT_LEN`] characters; a higher
/// version at least that, with a `-` after the flags if longer (§4.3, "Versioning"); `ff` and
/// upper-case hex are invalid; all-zero ids are invalid.
pub(crate) fn parse_traceparent(value: &str) -> Option<Traceparent> {
    let value = trim_ows(value).as_bytes();
    let version = hex_field::<2>(value, layout::VERSION)?;
    hex::parse_u64(version)?;
    let len = value.len();
    match version {
        b"ff" => return None,
        b"00" if len != TRACEPARENT_LEN => return None,
        // A later version may append fields, each after a `-` (§4.3).
        _ if len < TRACEPARENT_LEN || (len > TRACEPARENT_LEN && value[TRACEPARENT_LEN] != b'-') => {
            return None;
        }
        _ => {}
    }
    if layout::DELIMITERS.iter().any(|&at| value[at] != b'-') {
        return None;
    }
    let trace_id = hex::parse_u128(hex_field::<32>(value, layout::TRACE_ID)?)?;
    let parent_id = hex::parse_u64(hex_field::<16>(value, layout::PARENT_ID)?)?;
    // Two digits: at most 0xff.
    let flags = hex::parse_u64(hex_field::<2>(value, layout::FLAGS)?)? as u8;
    (trace_id != 0 && parent_id != 0).then(|| Traceparent {
        trace_id: TraceId::from(trace_id),
        parent_id: SpanId::from(parent_id),
        flags,
    })
}

/// The characters allowed after the first in a key: `keychar`.
fn key_char(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@')
}

/// A `tracestate` key, as the current editor's draft writes it ("Key",
/// §3.3.2.2.1 of Level 2): `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`,
/// where `keychar` is `lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`: 1 to
/// 256 characters, starting with a lower-case letter or a digit, `@`
/// allowed anywhere after that. Every key of the Level 1 grammar (a simple
/// key, or `tenant@system` with at most 241 and 14 characters) is one of
/// these, so no vendor's Level 1 member is lost.
pub(crate) fn is_tracestate_key(key: &str) -> bool {
    let key = key.as_bytes();
    (1..=256).contains(&key.len())
        && (key[0].is_ascii_lowercase() || key[0].is_ascii_digit())
        && key.iter().all(|&b| key_char(b))
}

/// A `tracestate` value (§3.3.1.3.2): 1 to 256 printable ASCII characters
/// other than `,` and `=`, not ending in a space.
pub(crate) fn is_tracestate_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    (1..=256).contains(&bytes.len())
        && bytes
            .iter()
            .all(|&b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && bytes.last() != Some(&b' ')
}

/// Parses a combined `tracestate` (§3.3.1): list-members separated by
/// commas with optional whitespace around them; empty members are allowed
/// and skipped. A key seen again keeps its first (left-most, most recent)
/// entry and the later ones are dropped: the draft allows one entry per key
/// and lets a vendor "discard duplicate keys that were not generated by
/// them". Returns the normalized header, `Some("")` when there is no member,
/// or `None` when it must be discarded as a whole: a member the grammar
/// rejects, or more than 32 members as received.
pub(crate) fn parse_tracestate(combined: &str) -> Option<String> {
    let mut normalized = String::with_capacity(combined.len());
    let mut keys: Vec<&str> = Vec::new();
    let mut members = 0;
    for member in combined.split(',').map(trim_ows) {
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        if !is_tracestate_key(key) || !is_tracestate_value(value) {
            return None;
        }
        members += 1;
        if members > MAX_TRACESTATE_MEMBERS {
            return None;
        }
        if keys.contains(&key) {
            continue;
        }
        keys.push(key);
        if !normalized.is_empty() {
            normalized.push(',');
        }
        normalized.push_str(member);
    }
    Some(normalized)
}

/// The caller's `traceparent`, when exactly one valid line came: two lines
/// are invalid (and combine into a value the grammar rejects), so the trace
/// restarts.
pub(crate) fn read_traceparent(extractor: &(impl Fields + ?Sized)) -> Option<Traceparent> {
    extractor.only(TRACEPARENT).and_then(parse_traceparent)
}

/// The caller's `tracestate`, its lines combined and normalized; `None`
/// when it is absent, invalid or empty. Read it only beside a valid
/// `traceparent` (§3.3.1.1).
pub(crate) fn read_tracestate(extractor: &(impl Fields + ?Sized)) -> Option<String> {
    extractor
        .combined(TRACESTATE)
        .and_then(|combined| parse_tracestate(&combined))
        .filter(|normalized| !normalized.is_empty())
}

/// The `traceparent` value for `span` in `cx`: version 00, the sampled flag,
/// and the Level 2 random-trace-id flag (see
/// [`outbound_random_trace_id`]). Other flag bits are always zero, as §3.2.2.5
/// requires of flags this version does not define.
pub(crate) fn traceparent_value(cx: &Context, span: &SpanContext) -> String {
    let mut value = String::with_capacity(TRACEPARENT_LEN);
    push_traceparent_value(&mut value, cx, span);
    value
}

/// [`traceparent_value`], appended to `out`.
pub(crate) fn push_traceparent_value(out: &mut String, cx: &Context, span: &SpanContext) {
    let mut flags = 0;
    if outbound_sampling(cx, span).is_sampled() {
        flags |= FLAG_SAMPLED;
    }
    if outbound_random_trace_id(cx, span) {
        flags |= FLAG_RANDOM_TRACE_ID;
    }
    push_traceparent(out, span.trace_id(), span.span_id(), flags);
}

/// A version-00 `traceparent`. Of `flags`, only the two this version
/// defines are written (§3.2.2.5: the others MUST be zero).
pub(crate) fn format_traceparent(trace_id: TraceId, parent_id: SpanId, flags: u8) -> String {
    let mut value = String::with_capacity(TRACEPARENT_LEN);
    push_traceparent(&mut value, trace_id, parent_id, flags);
    value
}

fn push_traceparent(out: &mut String, trace_id: TraceId, parent_id: SpanId, flags: u8) {
    let flags = flags & (FLAG_SAMPLED | FLAG_RANDOM_TRACE_ID);
    out.push_str("00-");
    hex::push_trace_id(out, trace_id);
    out.push('-');
    hex::push_span_id(out, parent_id);
    // With only the defined flags, the byte is 00 to 03.
    out.push_str("-0");
    out.push(char::from(b'0' + flags));
}

/// What the request's `traceparent` and `tracestate` say, when there is a
/// valid `traceparent`.
pub(crate) fn read(extractor: &(impl Fields + ?Sized)) -> Option<CallerTrace> {
    let parent = read_traceparent(extractor)?;
    // `tracestate` is read only with a valid `traceparent` (§3.3.1.1).
    let tracestate = read_tracestate(extractor).map(Arc::from);
    Some(CallerTrace {
        ids: Some((parent.trace_id, parent.parent_id)),
        sampling: if parent.flags & FLAG_SAMPLED != 0 {
            Sampling::Accept
        } else {
            Sampling::Deny
        },
        random_trace_id: parent.flags & FLAG_RANDOM_TRACE_ID != 0,
        tracestate,
    })
}

/// Writes `cx`'s span as `traceparent` and `tracestate`.
pub(crate) fn write(cx: &Context, out: &mut (impl Sink + ?Sized)) {
    let span = cx.span();
    let span = span.span_context();
    if !span.is_valid() {
        return;
    }
    out.put(TRACEPARENT, Value::Owned(traceparent_value(cx, span)));
    // An empty `tracestate` is allowed but SHOULD NOT be sent (§3.3.1.1).
    if let Some(tracestate) = outbound_tracestate(cx, span).filter(|t| !t.is_empty()) {
        out.put(TRACESTATE, Value::Owned(tracestate));
    }
}

impl TextMapPropagator for W3cTraceContext {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        write(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match read(extractor) {
            Some(caller) => caller.continued_in(cx),
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

    const VALID: &str = "00-12345678901234567890123456789012-1234567890123456-01";

    #[test]
    fn parses_the_fields_of_a_valid_traceparent() {
        let parent = parse_traceparent(VALID).unwrap();
        assert_eq!(
            parent.trace_id.to_string(),
            "12345678901234567890123456789012"
        );
        assert_eq!(parent.parent_id.to_string(), "1234567890123456");
        assert_eq!(parent.flags, 1);
    }

    #[test]
    fn a_future_version_is_read_up_to_its_flags() {
        let future = "cc-12345678901234567890123456789012-1234567890123456-03-more";
        assert_eq!(parse_traceparent(future).unwrap().flags, 3);
        assert_eq!(
            parse_traceparent(&future.replace("-more", ".more")),
            None,
            "the flags must end the value or be followed by '-'"
        );
    }

    #[test]
    fn key_lengths_follow_the_grammar() {
        assert!(is_tracestate_key(&"z".repeat(256)));
        assert!(!is_tracestate_key(&"z".repeat(257)));
        assert!(!is_tracestate_key(""));
        // Level 1's multi-tenant limits, and past them: 256 characters in all.
        assert!(is_tracestate_key(&format!(
            "{}@{}",
            "t".repeat(241),
            "v".repeat(14)
        )));
        assert!(is_tracestate_key(&format!("{}@v", "t".repeat(242))));
        assert!(is_tracestate_key(&format!("t@{}", "v".repeat(15))));
        assert!(!is_tracestate_key(&format!("{}@v", "t".repeat(255))));
    }

    #[test]
    fn at_signs_may_follow_the_first_character() {
        for key in ["foo@", "foo@@bar", "foo@bar@baz", "0tenant@sys", "0simple"] {
            assert!(is_tracestate_key(key), "{key}");
        }
        for key in ["@foo", "Foo", "foo.bar", "foo bar", "_foo"] {
            assert!(!is_tracestate_key(key), "{key}");
        }
    }

    #[test]
    fn a_repeated_key_keeps_its_first_entry() {
        assert_eq!(parse_tracestate("foo=1,foo=1").as_deref(), Some("foo=1"));
        assert_eq!(
            parse_tracestate("foo=1,bar=2,foo=3").as_deref(),
            Some("foo=1,bar=2")
        );
        // 33 members as received are too many, repeated or not.
        let members: Vec<String> = (0..33).map(|i| format!("k{}=1", i % 2)).collect();
        assert_eq!(parse_tracestate(&members.join(",")), None);
    }
}
