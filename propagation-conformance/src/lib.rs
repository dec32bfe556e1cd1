//! Conformance for trace-context propagation, judged from outside.
//!
//! - [`cases`]: the table of incoming headers and what must go out, each
//!   case citing the section it comes from;
//! - [`grammar`]: the oracle. The ABNF of W3C Trace Context and W3C Baggage
//!   and B3's header formats, written here as regular expressions, decide
//!   whether what went out is well-formed and within the limits;
//! - [`mod@judge`]: a case's outbound headers against its expectation.
//!
//! This crate shares no code with `mesh-propagation`, the crate it judges:
//! no parser or writer of it is used to grade its own output, so a bug that
//! a parser and its writer share (an upper-case hex digit written and read
//! back, a baggage byte left unencoded and accepted) fails here.
//!
//! The same table runs twice: `mesh-propagation/tests/conformance.rs`
//! against the composite propagator, and `tests/tests/conformance.rs`
//! against the real hello-svc binary. The property tests and the fuzz target
//! hold every output to [`grammar::grammar_errors`].
//!
//! Specifications, as the cases cite them:
//! - "TC": W3C Trace Context Level 1 (Recommendation, 2021) and Level 2 as
//!   its editor's draft writes it;
//! - "Baggage": W3C Baggage;
//! - "B3": openzipkin/b3-propagation.

pub mod cases;
pub mod grammar;
pub mod judge;

pub use cases::{CASES, Case, Expect, Sampling, Trace};
pub use judge::{Mode, judge};
