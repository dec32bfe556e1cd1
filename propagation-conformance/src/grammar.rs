//! The oracle: what may go out, by the specifications' own grammars.
//!
//! Each header's ABNF is transcribed into a regular expression beside the
//! rule it comes from, and the limits are the specifications' numbers. What
//! is judged is what a sender writes, so the normalized forms apply: no
//! optional white space, no empty list members, one line a header.
//!
//! Sources:
//! - W3C Trace Context, §3.2.2 (`traceparent`, version `00`) and §3.3
//!   (`tracestate`; keys as Level 2's editor's draft writes them:
//!   `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`, `keychar` adding `@`);
//! - W3C Baggage, §2 ("Header Content": `baggage-string`, `list-member`,
//!   `property`, `key` as an RFC 9110 `token`, `baggage-octet`), §2.3.3
//!   (a value's percent-encoding of UTF-8) and §3.3.1 (limits: 64
//!   members, 8192 bytes);
//! - openzipkin/b3-propagation, README: the multiple `X-B3-*` headers and
//!   the single `b3` header, with lower-hex ids of 16 or 32 digits.

use std::sync::LazyLock;

use http::HeaderMap;
use regex::Regex;

/// `traceparent` flag `sampled` (TC §3.2.2.5.1).
pub const FLAG_SAMPLED: u8 = 0x01;
/// `traceparent` flag `random-trace-id` (TC Level 2 §3.2.2.5.2).
pub const FLAG_RANDOM_TRACE_ID: u8 = 0x02;
/// At most this many `tracestate` list-members (TC §3.3.1.1).
pub const TRACESTATE_MAX_MEMBERS: usize = 32;
/// At most this many baggage list-members a sender must keep (Baggage §3.3.1).
pub const BAGGAGE_MAX_MEMBERS: usize = 64;
/// At most this many bytes of baggage a sender must keep (Baggage §3.3.1).
pub const BAGGAGE_MAX_BYTES: usize = 8192;

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("the grammar compiles")
}

/// TC §3.2.2: `version "-" trace-id "-" parent-id "-" trace-flags`, with
/// `version = "00"` as a sender writes it, every field `HEXDIGLC`.
static TRACEPARENT: LazyLock<Regex> =
    LazyLock::new(|| regex("^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$"));

/// TC §3.3: `list-member = key "=" value`, where
/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`,
/// `keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`,
/// `value = 0*255(chr) nblk-chr`, `chr = %x20 / nblk-chr`,
/// `nblk-chr = %x21-2B / %x2D-3C / %x3E-7E`.
static TRACESTATE_MEMBER: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^([a-z0-9][a-z0-9_\-*/@]{0,255})=[\x20-\x2B\x2D-\x3C\x3E-\x7E]{0,255}[\x21-\x2B\x2D-\x3C\x3E-\x7E]$",
    )
});

/// Baggage §2: `list-member = key "=" value *( ";" property )` without OWS,
/// `property = key "=" value / key`, `key = token` (RFC 9110 `tchar`),
/// `value = *baggage-octet`,
/// `baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`.
static BAGGAGE_MEMBER: LazyLock<Regex> = LazyLock::new(|| {
    const TOKEN: &str = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+";
    const VALUE: &str = r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*";
    regex(&format!("^({TOKEN})=({VALUE})(?:;{TOKEN}(?:={VALUE})?)*$"))
});

/// B3, single header: `{TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]`,
/// or the sampling state alone.
static B3_SINGLE: LazyLock<Regex> = LazyLock::new(|| {
    regex("^(?:(?:[0-9a-f]{16}|[0-9a-f]{32})-[0-9a-f]{16}(?:-[01d](?:-[0-9a-f]{16})?)?|[01d])$")
});

/// B3 `X-B3-TraceId`: 16 or 32 lower-hex digits.
static B3_TRACE_ID: LazyLock<Regex> = LazyLock::new(|| regex("^(?:[0-9a-f]{16}|[0-9a-f]{32})$"));

/// B3 `X-B3-SpanId` and `X-B3-ParentSpanId`: 16 lower-hex digits.
static B3_SPAN_ID: LazyLock<Regex> = LazyLock::new(|| regex("^[0-9a-f]{16}$"));

/// A `traceparent` as a sender writes it, read by [`traceparent()`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traceparent<'a> {
    /// 32 lower-hex digits, not all zero.
    pub trace_id: &'a str,
    /// 16 lower-hex digits, not all zero.
    pub parent_id: &'a str,
    /// `trace-flags`.
    pub flags: u8,
}

/// `value` read as a version-`00` `traceparent`, or `None` when it breaks
/// the grammar or has an all-zero id (TC §3.2.2.3, §3.2.2.4).
pub fn traceparent(value: &str) -> Option<Traceparent<'_>> {
    let fields = TRACEPARENT.captures(value)?;
    let (trace_id, parent_id, flags) = (
        fields.get(1)?.as_str(),
        fields.get(2)?.as_str(),
        fields.get(3)?.as_str(),
    );
    let zero = |id: &str| id.bytes().all(|b| b == b'0');
    if zero(trace_id) || zero(parent_id) {
        return None;
    }
    Some(Traceparent {
        trace_id,
        parent_id,
        flags: u8::from_str_radix(flags, 16).ok()?,
    })
}

/// Every way a `tracestate` as sent breaks TC §3.3.
pub fn tracestate_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let members: Vec<&str> = value.split(',').collect();
    if members.len() > TRACESTATE_MAX_MEMBERS {
        errors.push(format!("tracestate: {} members", members.len()));
    }
    let mut keys = Vec::new();
    for member in &members {
        match TRACESTATE_MEMBER.captures(member) {
            Some(fields) => keys.push(fields.get(1).map_or("", |k| k.as_str())),
            None => errors.push(format!("tracestate: not a list-member: {member:?}")),
        }
    }
    let before = keys.len();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() != before {
        errors.push(format!("tracestate: a key repeats: {value:?}"));
    }
    errors
}

/// Every way a `baggage` as sent breaks W3C Baggage.
pub fn baggage_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let members: Vec<&str> = value.split(',').collect();
    if value.len() > BAGGAGE_MAX_BYTES || members.len() > BAGGAGE_MAX_MEMBERS {
        errors.push(format!(
            "baggage: {} bytes, {} members",
            value.len(),
            members.len()
        ));
    }
    for member in members {
        let Some(fields) = BAGGAGE_MEMBER.captures(member) else {
            errors.push(format!("baggage: not a list-member: {member:?}"));
            continue;
        };
        let value = fields.get(2).map_or("", |v| v.as_str());
        if percent_decode(value).is_none() {
            errors.push(format!(
                "baggage: value is not percent-encoded UTF-8: {member:?}"
            ));
        }
    }
    errors
}

/// A baggage value percent-decoded (Baggage §2.3.3), or `None` when a `%`
/// is not followed by two hex digits or the bytes are not UTF-8.
pub fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = value.get(index + 1..index + 3)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// The one line of header `name` in `out`, noting a repeated line or a value
/// that is not visible ASCII.
fn one<'a>(out: &'a HeaderMap, name: &str, errors: &mut Vec<String>) -> Option<&'a str> {
    let mut values = out.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        errors.push(format!("{name}: sent more than once"));
    }
    let text = first.to_str().ok();
    if text.is_none() {
        errors.push(format!("{name}: not visible ASCII: {first:?}"));
    }
    text
}

/// Every way the `X-B3-*` headers in `out` break B3's multiple-header form.
fn b3_multi_errors(out: &HeaderMap, errors: &mut Vec<String>) {
    let trace_id = one(out, "x-b3-traceid", errors);
    let span_id = one(out, "x-b3-spanid", errors);
    let parent_id = one(out, "x-b3-parentspanid", errors);
    let sampled = one(out, "x-b3-sampled", errors);
    let flags = one(out, "x-b3-flags", errors);
    if trace_id.is_some() != span_id.is_some() {
        errors.push("x-b3-traceid and x-b3-spanid: one without the other".to_owned());
    }
    if parent_id.is_some() && trace_id.is_none() {
        errors.push("x-b3-parentspanid without ids".to_owned());
    }
    let checks = [
        ("x-b3-traceid", trace_id, &*B3_TRACE_ID),
        ("x-b3-spanid", span_id, &*B3_SPAN_ID),
        ("x-b3-parentspanid", parent_id, &*B3_SPAN_ID),
    ];
    for (name, value, grammar) in checks {
        if let Some(value) = value.filter(|v| !grammar.is_match(v)) {
            errors.push(format!("{name}: {value:?}"));
        }
    }
    if sampled.is_some_and(|s| s != "0" && s != "1") {
        errors.push(format!("x-b3-sampled: {sampled:?} is neither 1 nor 0"));
    }
    if flags.is_some_and(|f| f != "1") {
        errors.push(format!("x-b3-flags: {flags:?} is not 1"));
    }
    if flags.is_some() && sampled.is_some() {
        errors.push("x-b3-sampled sent with the debug flag".to_owned());
    }
}

/// Every way `out` breaks the specifications' grammars or limits, whatever
/// came in: the invariant the conformance table, the property tests and the
/// fuzz target hold every outbound header map to.
pub fn grammar_errors(out: &HeaderMap) -> Vec<String> {
    let mut errors = Vec::new();
    let traceparent_line = one(out, "traceparent", &mut errors);
    if let Some(value) = traceparent_line {
        match traceparent(value) {
            Some(parsed) if parsed.flags & !(FLAG_SAMPLED | FLAG_RANDOM_TRACE_ID) != 0 => {
                errors.push(format!("traceparent: undefined flags set: {value}"));
            }
            Some(_) => {}
            None => errors.push(format!("traceparent: not a version-00 value: {value}")),
        }
    }
    if let Some(value) = one(out, "tracestate", &mut errors) {
        if traceparent_line.is_none() {
            errors.push("tracestate without traceparent".to_owned());
        }
        errors.extend(tracestate_errors(value));
    }
    if let Some(value) = one(out, "baggage", &mut errors) {
        errors.extend(baggage_errors(value));
    }
    if let Some(value) = one(out, "b3", &mut errors)
        && !B3_SINGLE.is_match(value)
    {
        errors.push(format!("b3: not a valid single header: {value}"));
    }
    b3_multi_errors(out, &mut errors);
    errors
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue};

    use super::*;

    fn headers(lines: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in lines {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn well_formed_headers_of_every_format_pass() {
        let out = headers(&[
            ("traceparent", TP),
            (
                "tracestate",
                "rojo=00f067aa0ba902b7,t@vvvvvvvvvvvvvvv=1,1a=x y",
            ),
            (
                "baggage",
                "user-agent=Mozilla%2F4.0%20(Netscape),k=v;p1;p2=x,e=",
            ),
            ("b3", "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1"),
            ("x-b3-traceid", "a3ce929d0e0e4736"),
            ("x-b3-spanid", "b7ad6b7169203331"),
            ("x-b3-parentspanid", "00f067aa0ba902b7"),
            ("x-b3-sampled", "1"),
        ]);
        assert_eq!(grammar_errors(&out), Vec::<String>::new());
        assert_eq!(
            traceparent(TP),
            Some(Traceparent {
                trace_id: "0af7651916cd43dd8448eb211c80319c",
                parent_id: "b7ad6b7169203331",
                flags: 1,
            })
        );
    }

    /// What a parser and its writer that share a bug would send and read
    /// back without complaint; the grammar refuses each.
    #[test]
    fn what_a_bug_shared_by_a_parser_and_its_writer_sends_is_refused() {
        let shared_bugs = [
            (
                "traceparent",
                "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",
            ),
            (
                "traceparent",
                "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            ),
            (
                "traceparent",
                "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-05",
            ),
            ("tracestate", "rojo=1, congo=2"),
            ("tracestate", "Rojo=1"),
            ("tracestate", "rojo=1,rojo=2"),
            ("tracestate", "rojo=1 "),
            ("baggage", "user-agent=Mozilla/4.0 (Netscape)"),
            ("baggage", "k=a,b"),
            ("baggage", "k=%zz"),
            ("baggage", "k=%FF"),
            ("baggage", "k = v"),
            ("b3", "0af7651916cd43dd8448eb211c80319c-B7AD6B7169203331-1"),
            (
                "b3",
                "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-true",
            ),
            ("x-b3-sampled", "true"),
            ("x-b3-flags", "0"),
        ];
        for (name, value) in shared_bugs {
            let mut lines = vec![(name, value)];
            if name == "tracestate" {
                lines.push(("traceparent", TP));
            }
            assert!(
                !grammar_errors(&headers(&lines)).is_empty(),
                "{name}: {value} passed"
            );
        }
    }

    #[test]
    fn the_limits_are_the_specifications_numbers() {
        let members = |n: usize| {
            (0..n)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let tracestate = |n| {
            grammar_errors(&headers(&[
                ("traceparent", TP),
                ("tracestate", &members(n)),
            ]))
        };
        assert!(tracestate(32).is_empty());
        assert!(!tracestate(33).is_empty());
        let baggage = |n| baggage_errors(&members(n));
        assert!(baggage(64).is_empty());
        assert!(!baggage(65).is_empty());
        assert!(baggage_errors(&format!("k={}", "v".repeat(8190))).is_empty());
        assert!(!baggage_errors(&format!("k={}", "v".repeat(8191))).is_empty());
        let key = |n: usize| format!("{}=1", "k".repeat(n));
        assert!(tracestate_errors(&key(256)).is_empty());
        assert!(!tracestate_errors(&key(257)).is_empty());
    }

    #[test]
    fn b3_headers_must_come_as_a_set() {
        let alone = headers(&[("x-b3-traceid", "a3ce929d0e0e4736")]);
        assert!(!grammar_errors(&alone).is_empty());
        let debug = headers(&[
            ("x-b3-traceid", "a3ce929d0e0e4736"),
            ("x-b3-spanid", "b7ad6b7169203331"),
            ("x-b3-flags", "1"),
            ("x-b3-sampled", "1"),
        ]);
        assert_eq!(
            grammar_errors(&debug),
            ["x-b3-sampled sent with the debug flag"]
        );
        assert!(grammar_errors(&headers(&[("x-b3-sampled", "0")])).is_empty());
    }
}
