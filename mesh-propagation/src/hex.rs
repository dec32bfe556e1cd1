//! Ids as lower-case hex, written straight into a header value: the
//! formatting machinery (`{:032x}` on a `u128`) is a measurable share of
//! injecting on every outbound call.

use opentelemetry::trace::{SpanId, TraceId};

const DIGITS: &[u8; 16] = b"0123456789abcdef";

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

/// Appends `bytes` as hex, written into a stack buffer first: pushing
/// digit by digit onto a `String` costs a UTF-8 encoding step per digit.
fn push<const N: usize, const DIGIT_COUNT: usize>(out: &mut String, bytes: [u8; N]) {
    let mut digits = [0u8; DIGIT_COUNT];
    for (pair, b) in digits.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
    // Always ASCII: every byte is one of DIGITS.
    if let Ok(digits) = std::str::from_utf8(&digits) {
        out.push_str(digits);
    }
}

/// Appends `id` as 32 lower-case hex digits.
pub(crate) fn push_trace_id(out: &mut String, id: TraceId) {
    push::<16, 32>(out, id.to_bytes());
}

/// Appends `id` as 16 lower-case hex digits.
pub(crate) fn push_span_id(out: &mut String, id: SpanId) {
    push::<8, 16>(out, id.to_bytes());
}

/// `id` as 32 lower-case hex digits.
pub fn trace_id(id: TraceId) -> String {
    let mut out = String::with_capacity(32);
    push_trace_id(&mut out, id);
    out
}

/// `id` as 16 lower-case hex digits.
pub fn span_id(id: SpanId) -> String {
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
