//! When an export is tried again, for both exporters: the delays, the
//! jitter, and the rule that a wait ending past the export's time is not
//! taken.

use std::{
    hash::{BuildHasher, RandomState},
    time::{Duration, Instant},
};

/// Retries after a retryable failure: two, 50 and then 100 ms apart (plus
/// up to [`MAX_JITTER`]). Two quick retries ride out a collector's brief
/// 429/503; with no collector at all, a shutdown still ends in well under a
/// second.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(50), Duration::from_millis(100)];
const MAX_JITTER: Duration = Duration::from_millis(25);

/// One export's retries: what is left of its time, and the waits still to
/// take.
pub(crate) struct Retries {
    delays: std::slice::Iter<'static, Duration>,
    started: Instant,
    timeout: Duration,
}

impl Retries {
    /// The retries of an export that starts now and may take `timeout`.
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            delays: RETRY_DELAYS.iter(),
            started: Instant::now(),
            timeout,
        }
    }

    /// What is left of the export's time, for the next try.
    pub(crate) fn left(&self) -> Duration {
        self.timeout.saturating_sub(self.started.elapsed())
    }

    /// The wait before the next try, after a retryable failure: the next
    /// delay, lengthened (never shortened) by a server's `Retry-After`,
    /// plus jitter. `None` when no retry is left, or the wait would end past
    /// the export's time, where it could only end in the export's failure.
    pub(crate) fn next_wait(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        let delay = retry_after.unwrap_or_default().max(*self.delays.next()?) + jitter();
        (self.started.elapsed() + delay < self.timeout).then_some(delay)
    }
}

/// Up to [`MAX_JITTER`], so services that lost the same collector do not
/// retry in step.
fn jitter() -> Duration {
    let max_ms = MAX_JITTER.as_millis() as u64;
    Duration::from_millis(RandomState::new().hash_one(Instant::now()) % (max_ms + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_retries_then_none() {
        let mut retries = Retries::new(Duration::from_secs(10));
        let first = retries.next_wait(None).unwrap();
        assert!(first >= RETRY_DELAYS[0] && first <= RETRY_DELAYS[0] + MAX_JITTER);
        let second = retries.next_wait(None).unwrap();
        assert!(second >= RETRY_DELAYS[1] && second <= RETRY_DELAYS[1] + MAX_JITTER);
        assert_eq!(retries.next_wait(None), None);
    }

    #[test]
    fn retry_after_lengthens_a_wait_and_a_wait_past_the_timeout_is_not_taken() {
        let mut retries = Retries::new(Duration::from_secs(10));
        let wait = retries.next_wait(Some(Duration::from_secs(2))).unwrap();
        assert!(wait >= Duration::from_secs(2), "{wait:?}");
        assert_eq!(retries.next_wait(Some(Duration::from_secs(60))), None);
    }
}
