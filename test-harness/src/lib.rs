//! The harness the end-to-end tests and the benchmark share: the real
//! service binaries as child processes, a real OTLP receiver (plain or
//! TLS, with a [`throwaway_pki::ThrowawayPki`]), a fake formatter that
//! records what hello-svc sends it, and [`TestApp`], which starts them
//! together.

pub mod fake_formatter;
pub mod otlp_receiver;
pub mod service_process;
mod test_app;
pub mod throwaway_pki;

pub use test_app::{Formatter, TestApp, TestAppBuilder};

/// The trace id in a response's `traceresponse` header
/// (`00-<trace id>-<span id>-<flags>`), as both services send it.
pub fn traceresponse_trace_id(headers: &reqwest::header::HeaderMap) -> String {
    let value = headers
        .get("traceresponse")
        .and_then(|v| v.to_str().ok())
        .expect("the response carries a traceresponse header");
    value
        .split('-')
        .nth(1)
        .expect("traceresponse has a trace id")
        .to_owned()
}

/// Says, where the test runner shows it, that `what` was skipped and why:
/// the harness captures `println!`, so this writes to stderr directly.
pub fn skipped(what: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {what}: {why}");
}

/// Whether this run is CI: `CI=true` (or `1`), as GitHub Actions and most
/// CI systems set it.
pub(crate) fn in_ci() -> bool {
    is_ci(std::env::var("CI").ok().as_deref())
}

fn is_ci(value: Option<&str>) -> bool {
    matches!(value, Some("true" | "1"))
}

/// [`skipped`] on a developer's machine; under CI (`CI=true` or `1`) a panic, for
/// tests CI must run: there a dependency that failed to install is a
/// failure, never a quietly green run.
pub fn skipped_unless_ci(what: &str, why: &str) {
    if let Some(failure) = ci_failure(in_ci(), what, why) {
        panic!("{failure}");
    }
    skipped(what, why);
}

/// What a test that cannot run says when `ci` holds; `None` elsewhere.
fn ci_failure(ci: bool, what: &str, why: &str) -> Option<String> {
    ci.then(|| format!("{what} cannot run under CI=true: {why}"))
}

/// Polls `done` every 10 ms until it holds, or panics naming `what` after
/// five seconds: how a test waits on a condition instead of sleeping.
pub async fn eventually(what: &str, done: impl Fn() -> bool) {
    if poll_for(|| done().then_some(())).await.is_none() {
        panic!("timed out waiting for {what}");
    }
}

/// Polls `found` every 10 ms until it gives a value, for up to five
/// seconds; `None` if it never did. [`eventually`] and
/// [`ServiceProcess::log_line`](service_process::ServiceProcess::log_line)
/// wait with it.
pub(crate) async fn poll_for<T>(mut found: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Some(value) = found() {
            return Some(value);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_that_cannot_run_fails_under_ci_and_is_skipped_elsewhere() {
        assert!(is_ci(Some("true")) && is_ci(Some("1")));
        assert!(!is_ci(None) && !is_ci(Some("false")) && !is_ci(Some("")));
        assert_eq!(
            ci_failure(true, "interop with the node peer", "not installed").as_deref(),
            Some("interop with the node peer cannot run under CI=true: not installed")
        );
        assert_eq!(
            ci_failure(false, "interop with the node peer", "not installed"),
            None
        );
    }
}
