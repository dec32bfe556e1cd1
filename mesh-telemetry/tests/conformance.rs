//! The conformance table (`mesh_telemetry::conformance`) against the
//! composite propagator with the default `OTEL_PROPAGATORS`: each case's
//! headers extracted, then injected at once, so the caller's span passes
//! through and what goes out is exactly what the specifications keep.

use mesh_telemetry::{
    conformance::{CASES, Mode, mismatches},
    propagation::{DEFAULT_PROPAGATORS, composite},
};

#[test]
fn every_conformance_case_passes_through_the_composite_propagator() {
    let propagator = composite(&DEFAULT_PROPAGATORS);
    let mut failures = Vec::new();
    for case in CASES {
        let cx = propagator.extract(&case.headers());
        let mut out = http::HeaderMap::new();
        propagator.inject(&cx, &mut out);
        let errors = mismatches(case, Mode::PassThrough, &out);
        if !errors.is_empty() {
            failures.push(format!(
                "{} ({}): {errors:?}\n  sent {out:?}",
                case.name, case.spec
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn case_names_are_unique() {
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before);
}
