//! Ids as lower-case hex, written straight into a header value: the
//! formatting machinery (`{:032x}` on a `u128`) is a measurable share of
//! injecting on every outbound call.

use opentelemetry::trace::{SpanId, TraceId};

/// Each byte's value as a lower-case hex digit, or 0xff: upper case is
/// invalid in both W3C Trace Context and B3.
static DIGITS: [u8; 256] = {
    let mut digits = [0xff; 256];
    let mut i = 0;
    while i < 16 {
        digits[b"0123456789abcdef"[i] as usize] = i as u8;
        i += 1;
    }
    digits
};

/// The number `field` writes in lower-case hex, or `None` when a byte is
/// anything else; at most 16 digits. One pass, no branch a digit: checking
/// and then converting each digit (or a `u128` accumulator) costs several
/// times as much on every id of every request.
pub(crate) fn parse_u64(field: &[u8]) -> Option<u64> {
    debug_assert!(field.len() <= 16);
    let mut value = 0u64;
    // A valid digit is at most 0x0f; any high bit here means an invalid byte.
    let mut invalid = 0u8;
    for &b in field {
        let digit = DIGITS[usize::from(b)];
        invalid |= digit;
        value = value << 4 | u64::from(digit & 0x0f);
    }
    (invalid & 0xf0 == 0).then_some(value)
}

/// [`parse_u64`] for 17 to 32 digits (the high part first).
pub(crate) fn parse_u128(field: &[u8]) -> Option<u128> {
    debug_assert!(field.len() > 16 && field.len() <= 32);
    let (high, low) = field.split_at(field.len() - 16);
    Some(u128::from(parse_u64(high)?) << 64 | u128::from(parse_u64(low)?))
}

/// Appends `bytes` as hex, two digits a byte from one table lookup, into a
/// buffer appended at once: pushing digit by digit onto a `String` costs a
/// UTF-8 encoding step per digit, and pair by pair a copy call per pair.
fn push<const N: usize>(out: &mut String, bytes: [u8; N]) {
    let mut digits = [[0u8; 2]; N];
    for (pair, b) in digits.iter_mut().zip(bytes) {
        let at = 2 * usize::from(b);
        *pair = [HEX_PAIRS[at], HEX_PAIRS[at + 1]];
    }
    // Hex digits are ASCII: this never fails.
    if let Ok(digits) = std::str::from_utf8(digits.as_flattened()) {
        out.push_str(digits);
    }
}

/// Each byte's two lower-case hex digits, byte `b` at `2 * b`.
const HEX_PAIRS: &[u8] = b"\
    000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
    202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\
    404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f\
    606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f\
    808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f\
    a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\
    c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf\
    e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

/// Appends `id` as 32 lower-case hex digits, as W3C Trace Context and
/// OpenTelemetry write trace ids.
pub fn push_trace_id(out: &mut String, id: TraceId) {
    push(out, id.to_bytes());
}

/// Appends `id` as 16 lower-case hex digits, as W3C Trace Context and
/// OpenTelemetry write span ids.
pub fn push_span_id(out: &mut String, id: SpanId) {
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
                parse_u128(trace_id(TraceId::from(value)).as_bytes()),
                Some(value)
            );
            assert_eq!(parse_u64(span_id(span).as_bytes()), Some(value as u64));
        }
    }

    #[test]
    fn only_lower_case_hex_digits_parse() {
        assert_eq!(parse_u64(b"09af"), Some(0x09af));
        assert_eq!(parse_u64(b""), Some(0));
        for bad in [
            &b"0A"[..],
            b"g0",
            b"0/",
            b"0:",
            b"`0",
            b"-1",
            b" 1",
            b"\xff",
        ] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
        let mut id = *b"0af7651916cd43dd8448eb211c80319c";
        assert_eq!(parse_u128(&id), Some(0x0af7651916cd43dd8448eb211c80319c));
        // An invalid digit in either half, at either end of it.
        for at in [0, 15, 16, 31] {
            let digit = id[at];
            id[at] = b'F';
            assert_eq!(parse_u128(&id), None, "upper case at {at}");
            id[at] = digit;
        }
    }
}
