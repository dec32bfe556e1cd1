//! A case's outbound headers judged against what it expects, with the
//! oracle of [`crate::grammar`] reading them.

use http::HeaderMap;

use crate::{
    cases::{Case, Sampling, Trace},
    grammar::{FLAG_RANDOM_TRACE_ID, FLAG_SAMPLED, grammar_errors, traceparent},
};

/// How the outbound headers were produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Extracted, then injected at once: the caller's span passes through.
    PassThrough,
    /// Through hello-svc (`parentbased_always_on`, no User-Agent header):
    /// its CLIENT span is the parent, deferred decisions are made (sampled),
    /// a restarted trace is a new random one, and hello vouches for the
    /// baggage `user-agent` member, removing the caller's.
    HelloSvc,
}

fn header<'a>(out: &'a HeaderMap, name: &str) -> Option<&'a str> {
    out.get(name).and_then(|v| v.to_str().ok())
}

/// Every way `out` (the headers sent on for `case`, produced as `mode`
/// says) differs from what the case expects.
fn mismatches(case: &Case, mode: Mode, out: &HeaderMap) -> Vec<String> {
    let mut errors = grammar_errors(out);
    let expect = &case.expect;
    let sent_parent = header(out, "traceparent").and_then(traceparent);
    let b3_sampled = header(out, "x-b3-sampled");
    let b3_debug = header(out, "x-b3-flags") == Some("1");
    // What the B3 headers and the W3C flags must say.
    let sampling = match (mode, expect.sampling) {
        (Mode::HelloSvc, Sampling::Defer) => Sampling::Accept,
        (_, sampling) => sampling,
    };
    let b3_expected = match sampling {
        Sampling::Accept => (Some("1"), false),
        Sampling::Deny => (Some("0"), false),
        Sampling::Debug => (None, true),
        Sampling::Defer => (None, false),
    };
    match (expect.trace, mode, sent_parent) {
        (Trace::Continued { trace_id, span_id }, _, Some(parent)) => {
            if parent.trace_id != trace_id {
                errors.push(format!("trace id {} is not {trace_id}", parent.trace_id));
            }
            let is_callers = parent.parent_id == span_id;
            if is_callers != (mode == Mode::PassThrough) {
                errors.push(format!("parent id {}", parent.parent_id));
            }
            if (parent.flags & FLAG_RANDOM_TRACE_ID != 0) != expect.random {
                errors.push(format!("random-trace-id flag: {:02x}", parent.flags));
            }
            if (parent.flags & FLAG_SAMPLED != 0) != sampling.is_sampled() {
                errors.push(format!("sampled flag: {:02x}", parent.flags));
            }
            if header(out, "x-b3-traceid") != Some(trace_id)
                || header(out, "x-b3-spanid") != Some(parent.parent_id)
            {
                errors.push("x-b3-* ids differ from traceparent".to_owned());
            }
            if (b3_sampled, b3_debug) != b3_expected {
                errors.push(format!("B3 sampling {b3_sampled:?}, debug {b3_debug}"));
            }
        }
        (Trace::Restarted, Mode::PassThrough, None) => {
            if header(out, "x-b3-traceid").is_some() {
                errors.push("a restarted trace sent B3 ids".to_owned());
            }
            if expect.sampling != Sampling::Defer && (b3_sampled, b3_debug) != b3_expected {
                errors.push(format!("the decision sent alone: {b3_sampled:?}"));
            }
        }
        (Trace::Restarted, Mode::HelloSvc, Some(parent)) => {
            let id = parent.trace_id;
            let seen = case
                .incoming
                .iter()
                .any(|(_, value)| value.contains(id) || value.contains(&id[16..]));
            if seen {
                errors.push(format!("trace {id} was taken from the request"));
            }
            if parent.flags & FLAG_RANDOM_TRACE_ID == 0 {
                errors.push("a trace started here must say its id is random".to_owned());
            }
            let sampled = expect.sampling != Sampling::Deny;
            if (parent.flags & FLAG_SAMPLED != 0) != sampled {
                errors.push(format!("sampled flag: {:02x}", parent.flags));
            }
        }
        (_, _, parent) => errors.push(format!("traceparent out: {parent:?}")),
    }
    if header(out, "tracestate") != expect.tracestate {
        errors.push(format!(
            "tracestate {:?}, expected {:?}",
            header(out, "tracestate"),
            expect.tracestate
        ));
    }
    let mut sent: Vec<&str> = header(out, "baggage")
        .map(|b| b.split(',').collect())
        .unwrap_or_default();
    sent.sort_unstable();
    let mut expected: Vec<&str> = expect
        .baggage
        .iter()
        .copied()
        .filter(|m| mode == Mode::PassThrough || !m.starts_with("user-agent="))
        .collect();
    expected.sort_unstable();
    if sent != expected {
        errors.push(format!("baggage {sent:?}, expected {expected:?}"));
    }
    errors
}

/// Judges every case's outbound headers, produced as `mode` says; `Err`
/// lists each failing case with its section and what was sent.
pub fn judge<'a>(
    mode: Mode,
    results: impl IntoIterator<Item = (&'a Case, HeaderMap)>,
) -> Result<usize, String> {
    let mut failures = Vec::new();
    let mut count = 0;
    for (case, out) in results {
        count += 1;
        let errors = mismatches(case, mode, &out);
        if !errors.is_empty() {
            failures.push(format!(
                "{} ({}): {errors:?}\n  sent {out:?}",
                case.name, case.spec
            ));
        }
    }
    if failures.is_empty() {
        Ok(count)
    } else {
        Err(format!(
            "{} of {count} cases fail:\n{}",
            failures.len(),
            failures.join("\n")
        ))
    }
}
