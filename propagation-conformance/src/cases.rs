//! The conformance table: incoming header lines and what must go out, one
//! case a line, each citing the section of its specification.

use http::{HeaderMap, HeaderName, HeaderValue};

/// The caller's sampling decision, as a case expects it to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// Record the trace (W3C `sampled` set, B3 `1`).
    Accept,
    /// Do not record it (W3C `sampled` unset, B3 `0`).
    Deny,
    /// No decision: the receiver decides (B3 with no sampling state).
    Defer,
    /// Record it, and mark it for debugging (B3 `d`, `X-B3-Flags: 1`).
    Debug,
}

impl Sampling {
    /// Whether a trace under this decision is recorded (`Defer` is not, until decided).
    pub fn is_sampled(self) -> bool {
        matches!(self, Self::Accept | Self::Debug)
    }
}

/// What should become of the caller's trace.
#[derive(Debug, Clone, Copy)]
pub enum Trace {
    /// It continues: this trace id, with this span as the parent.
    Continued {
        /// 32 lower-hex digits (a 64-bit B3 id zero-padded on the left).
        trace_id: &'static str,
        /// The caller's span id.
        span_id: &'static str,
    },
    /// It restarts: nothing of it is continued or sent on.
    Restarted,
}

/// What the outbound headers must say.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// The trace.
    pub trace: Trace,
    /// The caller's sampling decision as read (for a restarted trace, any
    /// decision the caller sent alone, else `Defer`).
    pub sampling: Sampling,
    /// The Level 2 random-trace-id flag the caller vouched for.
    pub random: bool,
    /// The exact `tracestate` sent on, or `None` for none.
    pub tracestate: Option<&'static str>,
    /// The `baggage` members sent on, in any order; empty for no header.
    pub baggage: &'static [&'static str],
}

/// One conformance case.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// A short, unique name.
    pub name: &'static str,
    /// The specification and section the expectation comes from.
    pub spec: &'static str,
    /// The request's header lines, in order (a name may repeat).
    pub incoming: &'static [(&'static str, &'static str)],
    /// What must go out.
    pub expect: Expect,
}

impl Case {
    /// The incoming lines as a header map, repeated names appended.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in self.incoming {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("a valid name"),
                HeaderValue::from_str(value).expect("a valid value"),
            );
        }
        headers
    }
}

const T: &str = "12345678901234567890123456789012";
const P: &str = "1234567890123456";
const TP: &str = "00-12345678901234567890123456789012-1234567890123456-01";
const TP_UNSAMPLED: &str = "00-12345678901234567890123456789012-1234567890123456-00";
const B3T: &str = "80f198ee56343ba864fe8b2a57d3eff7";
const B3S: &str = "e457b5a2e4d86bd1";

const CONTINUED: Trace = Trace::Continued {
    trace_id: T,
    span_id: P,
};
const B3_CONTINUED: Trace = Trace::Continued {
    trace_id: B3T,
    span_id: B3S,
};

const fn continued(sampling: Sampling) -> Expect {
    Expect {
        trace: CONTINUED,
        sampling,
        random: false,
        tracestate: None,
        baggage: &[],
    }
}

const ACCEPTED: Expect = continued(Sampling::Accept);
const DENIED: Expect = continued(Sampling::Deny);
const RESTARTED: Expect = Expect {
    trace: Trace::Restarted,
    sampling: Sampling::Defer,
    random: false,
    tracestate: None,
    baggage: &[],
};
const fn with_tracestate(tracestate: &'static str) -> Expect {
    Expect {
        tracestate: Some(tracestate),
        ..DENIED
    }
}
const fn restarted_with_baggage(baggage: &'static [&'static str]) -> Expect {
    Expect {
        baggage,
        ..RESTARTED
    }
}
const fn b3(sampling: Sampling) -> Expect {
    Expect {
        trace: B3_CONTINUED,
        ..continued(sampling)
    }
}

macro_rules! case {
    ($name:literal, $spec:literal, [$($header:expr),* $(,)?], $expect:expr) => {
        Case { name: $name, spec: $spec, incoming: &[$($header),*], expect: $expect }
    };
}

/// Every case, one a line.
#[rustfmt::skip]
pub const CASES: &[Case] = &[
    // --- W3C Trace Context: traceparent (§3.2) ---
    case!("tp-valid", "TC §3.2.2", [("traceparent", TP)], ACCEPTED),
    case!("tp-unsampled", "TC §3.2.2.5 sampled", [("traceparent", TP_UNSAMPLED)], DENIED),
    case!("tp-header-name-case", "TC §3.2.1", [("TraceParent", TP)], ACCEPTED),
    case!("tp-ows", "TC §3.2 (RFC 9110 OWS)", [("traceparent", " \t00-12345678901234567890123456789012-1234567890123456-01\t ")], ACCEPTED),
    case!("tp-duplicated", "TC §3.2 (one traceparent)", [("traceparent", TP), ("traceparent", "00-12345678901234567890123456789011-1234567890123456-01")], RESTARTED),
    case!("tp-wrong-name", "TC §3.2.1", [("trace-parent", TP)], RESTARTED),
    case!("tp-version-00-trailing-data", "TC §3.2.2.1 version 00", [("traceparent", "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like")], RESTARTED),
    case!("tp-trailing-dash", "TC §3.2.2.1 version 00", [("traceparent", "00-12345678901234567890123456789012-1234567890123456-01-")], RESTARTED),
    case!("tp-trailing-dot", "TC §3.2.2.1 version 00", [("traceparent", "00-12345678901234567890123456789012-1234567890123456-01.")], RESTARTED),
    case!("tp-future-version", "TC §4.3 versioning", [("traceparent", "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like")], ACCEPTED),
    case!("tp-future-version-bad-delimiter", "TC §4.3 versioning", [("traceparent", "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like")], RESTARTED),
    case!("tp-version-ff", "TC §3.2.2.1 version ff forbidden", [("traceparent", "ff-12345678901234567890123456789012-1234567890123456-01")], RESTARTED),
    case!("tp-version-3-digits", "TC §3.2.2.1 2HEXDIGLC", [("traceparent", "000-12345678901234567890123456789012-1234567890123456-01")], RESTARTED),
    case!("tp-version-1-digit", "TC §3.2.2.1 2HEXDIGLC", [("traceparent", "0-12345678901234567890123456789012-1234567890123456-01")], RESTARTED),
    case!("tp-version-not-hex", "TC §3.2.2.1 2HEXDIGLC", [("traceparent", ".0-12345678901234567890123456789012-1234567890123456-01")], RESTARTED),
    case!("tp-trace-id-zero", "TC §3.2.2.3 all zeroes forbidden", [("traceparent", "00-00000000000000000000000000000000-1234567890123456-01")], RESTARTED),
    case!("tp-trace-id-31-digits", "TC §3.2.2.3 32HEXDIGLC", [("traceparent", "00-1234567890123456789012345678901-1234567890123456-01")], RESTARTED),
    case!("tp-trace-id-33-digits", "TC §3.2.2.3 32HEXDIGLC", [("traceparent", "00-123456789012345678901234567890123-1234567890123456-01")], RESTARTED),
    case!("tp-trace-id-upper-case", "TC §3.2.2.3 HEXDIGLC", [("traceparent", "00-1234567890123456789012345678901A-1234567890123456-01")], RESTARTED),
    case!("tp-parent-id-zero", "TC §3.2.2.4 all zeroes forbidden", [("traceparent", "00-12345678901234567890123456789012-0000000000000000-01")], RESTARTED),
    case!("tp-parent-id-15-digits", "TC §3.2.2.4 16HEXDIGLC", [("traceparent", "00-12345678901234567890123456789012-123456789012345-01")], RESTARTED),
    case!("tp-parent-id-17-digits", "TC §3.2.2.4 16HEXDIGLC", [("traceparent", "00-12345678901234567890123456789012-12345678901234567-01")], RESTARTED),
    case!("tp-parent-id-not-hex", "TC §3.2.2.4 16HEXDIGLC", [("traceparent", "00-12345678901234567890123456789012-123456789012345.-01")], RESTARTED),
    case!("tp-flags-1-digit", "TC §3.2.2.5 2HEXDIGLC", [("traceparent", "00-12345678901234567890123456789012-1234567890123456-1")], RESTARTED),
    case!("tp-flags-3-digits", "TC §3.2.2.5 2HEXDIGLC", [("traceparent", "00-12345678901234567890123456789012-1234567890123456-001")], RESTARTED),
    case!("tp-flags-plus-sign", "TC §3.2.2.5 2HEXDIGLC", [("traceparent", "00-12345678901234567890123456789012-1234567890123456-+1")], RESTARTED),
    case!("tp-random-flag-kept", "TC L2 §3.2.2.5.2 random-trace-id", [("traceparent", "00-12345678901234567890123456789012-1234567890123456-03")], Expect { random: true, ..ACCEPTED }),
    case!("tp-unknown-flags-zeroed", "TC §3.2.2.5.3 other flags", [("traceparent", "00-12345678901234567890123456789012-1234567890123456-ff")], Expect { random: true, ..ACCEPTED }),
    // --- tracestate (§3.3): every tracestate test of w3c/trace-context's
    // test/test.py at acab820b, whose key tests follow the editor's draft ---
    case!("ts-kept", "TC §3.3.1; harness tracestate_included_traceparent_included", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1,bar=2")], with_tracestate("foo=1,bar=2")),
    case!("ts-without-traceparent", "TC §3.3.1.1 read only with a traceparent; harness tracestate_included_traceparent_missing", [("tracestate", "foo=1")], RESTARTED),
    case!("ts-header-name-wrong", "TC §3.3.1 header name; harness tracestate_header_name", [("traceparent", TP_UNSAMPLED), ("trace-state", "foo=1")], DENIED),
    case!("ts-header-name-wrong-dot", "TC §3.3.1 header name; harness tracestate_header_name", [("traceparent", TP_UNSAMPLED), ("trace.state", "foo=1")], DENIED),
    case!("ts-header-name-case", "TC §3.3.1 any case; harness tracestate_header_name_valid_casing", [("traceparent", TP_UNSAMPLED), ("TrAcEsTaTe", "foo=1")], with_tracestate("foo=1")),
    case!("ts-empty-not-sent", "TC §3.3.1.1 SHOULD avoid sending empty; harness tracestate_empty_header", [("traceparent", TP_UNSAMPLED), ("tracestate", "")], DENIED),
    case!("ts-empty-members", "TC §3.3.1.1 empty members allowed; harness tracestate_empty_header", [("traceparent", TP_UNSAMPLED), ("tracestate", ""), ("tracestate", "foo=1,,")], with_tracestate("foo=1")),
    case!("ts-empty-line-after", "TC §3.3.1.1 empty members allowed; harness tracestate_empty_header", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1"), ("tracestate", "")], with_tracestate("foo=1")),
    case!("ts-lines-combined", "TC §3.3.1.1 (RFC 9110 §5.3); harness tracestate_multiple_headers_different_keys", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1,bar=2"), ("tracestate", "rojo=1,congo=2"), ("tracestate", "baz=3")], with_tracestate("foo=1,bar=2,rojo=1,congo=2,baz=3")),
    case!("ts-duplicate-same", "TC ED: one entry per key, duplicates MAY be discarded; harness tracestate_duplicated_keys", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1,foo=1")], with_tracestate("foo=1")),
    case!("ts-duplicate-key", "TC ED: one entry per key, duplicates MAY be discarded; harness tracestate_duplicated_keys", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1,foo=2")], with_tracestate("foo=1")),
    case!("ts-duplicate-lines-same", "TC ED: one entry per key, duplicates MAY be discarded; harness tracestate_duplicated_keys", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1"), ("tracestate", "foo=1")], with_tracestate("foo=1")),
    case!("ts-duplicate-lines", "TC ED: one entry per key, duplicates MAY be discarded; harness tracestate_duplicated_keys", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1"), ("tracestate", "foo=2")], with_tracestate("foo=1")),
    case!("ts-all-allowed-characters", "TC §3.3.1.3; harness tracestate_all_allowed_characters", [("traceparent", TP_UNSAMPLED), ("tracestate", "abcdefghijklmnopqrstuvwxyz0123456789_-*/= !\"#$%&'()*+-./0123456789:;<>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~")], with_tracestate("abcdefghijklmnopqrstuvwxyz0123456789_-*/= !\"#$%&'()*+-./0123456789:;<>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~")),
    case!("ts-all-allowed-characters-at", "TC §3.3.1.3; harness tracestate_all_allowed_characters", [("traceparent", TP_UNSAMPLED), ("tracestate", "abcdefghijklmnopqrstuvwxyz0123456789_-*/@a-z0-9_-*/= !\"#$%&'()*+-./0123456789:;<>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~")], with_tracestate("abcdefghijklmnopqrstuvwxyz0123456789_-*/@a-z0-9_-*/= !\"#$%&'()*+-./0123456789:;<>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~")),
    case!("ts-ows", "TC §3.3.1.1 OWS; harness tracestate_ows_handling", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1 \t , \t bar=2, \t baz=3")], with_tracestate("foo=1,bar=2,baz=3")),
    case!("ts-ows-tabs", "TC §3.3.1.1 OWS; harness tracestate_ows_handling", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1\t \t,\t \tbar=2,\t \tbaz=3")], with_tracestate("foo=1,bar=2,baz=3")),
    case!("ts-ows-around-1", "TC §3.3.1.1 OWS; harness tracestate_ows_handling", [("traceparent", TP_UNSAMPLED), ("tracestate", " foo=1")], with_tracestate("foo=1")),
    case!("ts-ows-around-2", "TC §3.3.1.1 OWS; harness tracestate_ows_handling", [("traceparent", TP_UNSAMPLED), ("tracestate", "\tfoo=1")], with_tracestate("foo=1")),
    case!("ts-ows-around-3", "TC §3.3.1.1 OWS; harness tracestate_ows_handling", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1 ")], with_tracestate("foo=1")),
    case!("ts-ows-around-4", "TC §3.3.1.1 OWS; harness tracestate_ows_handling", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1\t")], with_tracestate("foo=1")),
    case!("ts-ows-around-5", "TC §3.3.1.1 OWS; harness tracestate_ows_handling", [("traceparent", TP_UNSAMPLED), ("tracestate", "\t foo=1 \t")], with_tracestate("foo=1")),
    case!("ts-key-space", "TC ED §3.3.2.2.1 key; harness tracestate_key_illegal_characters", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo =1")], DENIED),
    case!("ts-key-upper-case", "TC ED §3.3.2.2.1 key; harness tracestate_key_illegal_characters", [("traceparent", TP_UNSAMPLED), ("tracestate", "FOO=1")], DENIED),
    case!("ts-key-dot", "TC ED §3.3.2.2.1 key; harness tracestate_key_illegal_characters", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo.bar=1")], DENIED),
    case!("ts-key-at-last", "TC ED §3.3.2.2.1 key: @ is a keychar; harness tracestate_key_illegal_vendor_format", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo@=1,bar=2")], with_tracestate("foo@=1,bar=2")),
    case!("ts-key-at-first", "TC ED §3.3.2.2.1 key: @ is a keychar; harness tracestate_key_illegal_vendor_format", [("traceparent", TP_UNSAMPLED), ("tracestate", "@foo=1,bar=2")], DENIED),
    case!("ts-key-double-at", "TC ED §3.3.2.2.1 key: @ is a keychar; harness tracestate_key_illegal_vendor_format", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo@@bar=1,bar=2")], with_tracestate("foo@@bar=1,bar=2")),
    case!("ts-key-two-ats", "TC ED §3.3.2.2.1 key: @ is a keychar; harness tracestate_key_illegal_vendor_format", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo@bar@baz=1,bar=2")], with_tracestate("foo@bar@baz=1,bar=2")),
    case!("ts-32-members", "TC §3.3.1.1 32 list-members; harness tracestate_member_count_limit", [("traceparent", TP_UNSAMPLED), ("tracestate", "a1=1,a2=2,a3=3,a4=4,a5=5,a6=6,a7=7,a8=8,a9=9,a10=10,a11=11,a12=12,a13=13,a14=14,a15=15,a16=16"), ("tracestate", "a17=17,a18=18,a19=19,a20=20,a21=21,a22=22,a23=23,a24=24,a25=25,a26=26,a27=27,a28=28,a29=29,a30=30,a31=31,a32=32")], with_tracestate("a1=1,a2=2,a3=3,a4=4,a5=5,a6=6,a7=7,a8=8,a9=9,a10=10,a11=11,a12=12,a13=13,a14=14,a15=15,a16=16,a17=17,a18=18,a19=19,a20=20,a21=21,a22=22,a23=23,a24=24,a25=25,a26=26,a27=27,a28=28,a29=29,a30=30,a31=31,a32=32")),
    case!("ts-33-members", "TC §3.3.1.1 32 list-members; harness tracestate_member_count_limit", [("traceparent", TP_UNSAMPLED), ("tracestate", "a1=1,a2=2,a3=3,a4=4,a5=5,a6=6,a7=7,a8=8,a9=9,a10=10,a11=11,a12=12,a13=13,a14=14,a15=15,a16=16"), ("tracestate", "a17=17,a18=18,a19=19,a20=20,a21=21,a22=22,a23=23,a24=24,a25=25,a26=26,a27=27,a28=28,a29=29,a30=30,a31=31,a32=32,a33=33")], DENIED),
    case!("ts-key-256", "TC ED §3.3.2.2.1 key: 1 to 256 characters; harness tracestate_key_length_limit", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1"), ("tracestate", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz=1")], with_tracestate("foo=1,zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz=1")),
    case!("ts-key-257", "TC ED §3.3.2.2.1 key: 1 to 256 characters; harness tracestate_key_length_limit", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1"), ("tracestate", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz=1")], DENIED),
    case!("ts-key-241-at-14", "TC ED §3.3.2.2.1 key: 1 to 256 characters; harness tracestate_key_length_limit", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1"), ("tracestate", "ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt@vvvvvvvvvvvvvv=1")], with_tracestate("foo=1,ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt@vvvvvvvvvvvvvv=1")),
    case!("ts-key-242-at-1", "TC ED §3.3.2.2.1 key: 1 to 256 characters; harness tracestate_key_length_limit", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1"), ("tracestate", "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt@v=1")], with_tracestate("foo=1,tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt@v=1")),
    case!("ts-key-1-at-15", "TC ED §3.3.2.2.1 key: 1 to 256 characters; harness tracestate_key_length_limit", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1"), ("tracestate", "t@vvvvvvvvvvvvvvv=1")], with_tracestate("foo=1,t@vvvvvvvvvvvvvvv=1")),
    case!("ts-key-level-1-multi-tenant", "TC §3.3.1.3.1 (Level 1) keys stay valid: TC ED §3.3.2.2.1 key", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=1"), ("tracestate", "tenant@vvvvvvvvvvvvvv=1")], with_tracestate("foo=1,tenant@vvvvvvvvvvvvvv=1")),
    case!("ts-empty-value", "TC §3.3.1.3.2 value; harness tracestate_value_illegal_characters", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=,bar=3")], DENIED),
    case!("ts-value-with-equals", "TC §3.3.1.3.2 value; harness tracestate_value_illegal_characters", [("traceparent", TP_UNSAMPLED), ("tracestate", "foo=bar=baz")], DENIED),
    // --- W3C Baggage ---
    case!("bg-kept", "Baggage §2.3", [("baggage", "tenant=blue,region=eu-west-1")], restarted_with_baggage(&["region=eu-west-1", "tenant=blue"])),
    case!("bg-lines-combined", "Baggage §2 (RFC 9110 §5.3)", [("baggage", "a=1"), ("baggage", "b=2,c=3")], restarted_with_baggage(&["a=1", "b=2", "c=3"])),
    case!("bg-ows", "Baggage §2.3.1 OWS trimmed", [("baggage", " a = 1 ,\tb=2\t")], restarted_with_baggage(&["a=1", "b=2"])),
    case!("bg-percent-decoded-and-re-encoded", "Baggage §2.3.3 value", [("baggage", "ua=Mozilla%2F4.0%20(compatible%3B%20Netscape),pct=100%25")], restarted_with_baggage(&["pct=100%25", "ua=Mozilla/4.0%20(compatible%3B%20Netscape)"])),
    case!("bg-plus-is-literal", "Baggage §2.3.3 value (not a form encoding)", [("baggage", "q=a+b")], restarted_with_baggage(&["q=a+b"])),
    case!("bg-invalid-member-dropped", "Baggage §3 mutating: an unreadable entry MAY be removed", [("baggage", "good=1,bad key=2,also=%zz,utf8=%FF,quote=\"x\",fine=2")], restarted_with_baggage(&["fine=2", "good=1"])),
    case!("bg-properties-kept", "Baggage §2.3.4 property", [("baggage", "k=v; p1 ; p2 = x ,other=1")], restarted_with_baggage(&["k=v;p1;p2=x", "other=1"])),
    case!("bg-bad-property-drops-member", "Baggage §2.3.4 property", [("baggage", "k=v;p=\"x\",other=1")], restarted_with_baggage(&["other=1"])),
    case!("bg-duplicate-keeps-first", "Baggage §3 mutating: dedup", [("baggage", "k=first,k=second")], restarted_with_baggage(&["k=first"])),
    case!("bg-caller-user-agent", "Baggage §2.3 (hello vouches for user-agent)", [("baggage", "user-agent=Netscape,tenant=blue")], restarted_with_baggage(&["tenant=blue", "user-agent=Netscape"])),
    // --- B3 ---
    case!("b3-multi-accept", "B3 multiple headers", [("x-b3-traceid", B3T), ("x-b3-spanid", B3S), ("x-b3-sampled", "1")], b3(Sampling::Accept)),
    case!("b3-multi-deny", "B3 sampling state", [("x-b3-traceid", B3T), ("x-b3-spanid", B3S), ("x-b3-sampled", "0")], b3(Sampling::Deny)),
    case!("b3-multi-defer", "B3 sampling state: absent means defer", [("x-b3-traceid", B3T), ("x-b3-spanid", B3S)], b3(Sampling::Defer)),
    case!("b3-multi-debug", "B3 debug flag", [("x-b3-traceid", B3T), ("x-b3-spanid", B3S), ("x-b3-flags", "1")], b3(Sampling::Debug)),
    case!("b3-multi-true", "B3 sampling state (true/false accepted)", [("x-b3-traceid", B3T), ("x-b3-spanid", B3S), ("x-b3-sampled", "true")], b3(Sampling::Accept)),
    case!("b3-multi-64-bit", "B3 TraceId: 16 lower-hex", [("x-b3-traceid", "a3ce929d0e0e4736"), ("x-b3-spanid", B3S), ("x-b3-sampled", "1")], Expect { trace: Trace::Continued { trace_id: "0000000000000000a3ce929d0e0e4736", span_id: B3S }, ..b3(Sampling::Accept) }),
    case!("b3-multi-first-line-wins", "B3 multiple headers: the first value wins", [("x-b3-traceid", B3T), ("x-b3-traceid", "0af7651916cd43dd8448eb211c80319c"), ("x-b3-spanid", B3S), ("x-b3-sampled", "1")], b3(Sampling::Accept)),
    case!("b3-multi-upper-case", "B3 TraceId: lower-hex", [("x-b3-traceid", "80F198EE56343BA864FE8B2A57D3EFF7"), ("x-b3-spanid", B3S)], RESTARTED),
    case!("b3-multi-bad-parent", "B3 ParentSpanId: 16 lower-hex", [("x-b3-traceid", B3T), ("x-b3-spanid", B3S), ("x-b3-parentspanid", "xyz"), ("x-b3-sampled", "1")], RESTARTED),
    case!("b3-multi-deny-alone", "B3 sampling state sent alone", [("x-b3-sampled", "0")], Expect { sampling: Sampling::Deny, ..RESTARTED }),
    case!("b3-single", "B3 single header", [("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")], b3(Sampling::Accept)),
    case!("b3-single-defer", "B3 single header: sampling state omitted", [("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1")], b3(Sampling::Defer)),
    case!("b3-single-debug", "B3 single header: d", [("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d")], b3(Sampling::Debug)),
    case!("b3-single-deny-alone", "B3 single header: b3: 0", [("b3", "0")], Expect { sampling: Sampling::Deny, ..RESTARTED }),
    case!("b3-single-precedence", "B3: the single header takes precedence", [("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0"), ("x-b3-traceid", "0af7651916cd43dd8448eb211c80319c"), ("x-b3-spanid", "b7ad6b7169203331"), ("x-b3-sampled", "1")], b3(Sampling::Deny)),
    case!("b3-single-bad-state", "B3 single header: 1, 0 or d", [("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-true")], RESTARTED),
    // --- Which context wins (last listed: b3multi,tracecontext,baggage) ---
    case!("mix-traceparent-wins-over-b3", "docs/propagation.md: the last listed propagator wins", [("traceparent", TP), ("x-b3-traceid", B3T), ("x-b3-spanid", B3S), ("x-b3-sampled", "0")], ACCEPTED),
    case!("mix-invalid-b3-keeps-traceparent", "docs/propagation.md: only a valid context replaces", [("traceparent", TP), ("x-b3-traceid", "zzz"), ("x-b3-spanid", B3S)], ACCEPTED),
    case!("mix-invalid-traceparent-keeps-b3", "docs/propagation.md: only a valid context replaces", [("traceparent", "00-zzz-1234567890123456-01"), ("x-b3-traceid", B3T), ("x-b3-spanid", B3S), ("x-b3-sampled", "1")], b3(Sampling::Accept)),
];
