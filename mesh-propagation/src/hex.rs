//! Ids as lower-case hex, written straight into a header value: the
//! formatting machinery (`{:032x}` on a `u128`) is a measurable share of
//! injecting on every outbound call.

use opentelemetry::trace::{SpanId, TraceId};

/// Whether every byte is a lower-case hex digit, as both W3C Trace Context
/// and B3 require of ids (upper case is invalid in both).
pub(crate) fn is_lower_hex(field: &[u8]) -> bool {
    field.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The number `field` writes in hex; only for fields [`is_lower_hex`]
/// accepted, of at most 32 digits. Quicker than `from_str_radix`, which
/// checks again what was checked.
pub(crate) fn parse_lower_hex(field: &[u8]) -> u128 {
    field.iter().fold(0, |acc, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            _ => b - b'a' + 10,
        };
        (acc << 4) | u128::from(digit)
    })
}

/// Appends `bytes` as hex, two digits a byte from one table lookup:
/// pushing digit by digit onto a `String` costs a UTF-8 encoding step per
/// digit.
fn push<const N: usize>(out: &mut String, bytes: [u8; N]) {
    for b in bytes {
        let at = 2 * usize::from(b);
        out.push_str(&HEX_PAIRS[at..at + 2]);
    }
}

/// Each byte's two lower-case hex digits, byte `b` at `2 * b`.
const HEX_PAIRS: &str = "\
    000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
    202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\
    404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f\
    606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f\
    808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f\
    a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\
    c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf\
    e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

/// Appends `id` as 32 lower-case hex digits.
pub(crate) fn push_trace_id(out: &mut String, id: TraceId) {
    push(out, id.to_bytes());
}

/// Appends `id` as 16 lower-case hex digits.
pub(crate) fn push_span_id(out: &mut String, id: SpanId) {
    push(out, id.to_bytes());
}

/// `id` as 32 lower-case hex digits.
pub(crate) fn trace_id(id: TraceId) -> String {
    let mut out = String::with_capacity(32);
    push_trace_id(&mut out, id);
    out
}

/// `id` as 16 lower-case hex digits.
pub(crate) fn span_id(id: SpanId) -> String {
    let mut out = String::with_capacity(16);
    push_span_id(&mut out, id);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_sdks_own_formatting() {
        for value in [1u128, 0x0af7651916cd43dd8448eb211c80319c, u128::MAX] {
            assert_eq!(
                trace_id(TraceId::from(value)),
                TraceId::from(value).to_string()
            );
            let span = SpanId::from(value as u64);
            assert_eq!(span_id(span), span.to_string());
            assert_eq!(
                parse_lower_hex(trace_id(TraceId::from(value)).as_bytes()),
                value
            );
            assert_eq!(
                parse_lower_hex(span_id(span).as_bytes()),
                u128::from(value as u64)
            );
        }
    }
}
