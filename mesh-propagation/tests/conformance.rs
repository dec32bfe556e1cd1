//! The conformance table (`propagation_conformance`) against the
//! composite propagator with the default `OTEL_PROPAGATORS`: each case's
//! headers extracted, then injected at once, so the caller's span passes
//! through and what goes out is exactly what the specifications keep.

use mesh_propagation::{DEFAULT_PROPAGATORS, composite};
use propagation_conformance::{CASES, Mode, judge};

#[test]
fn every_conformance_case_passes_through_the_composite_propagator() {
    let propagator = composite(&DEFAULT_PROPAGATORS);
    let results = CASES.iter().map(|case| {
        let mut out = http::HeaderMap::new();
        propagator.inject(&propagator.extract(&case.headers()), &mut out);
        (case, out)
    });
    let judged = judge(Mode::PassThrough, results).unwrap_or_else(|report| panic!("{report}"));
    assert_eq!(judged, CASES.len());
}

#[test]
fn case_names_are_unique() {
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before);
}
