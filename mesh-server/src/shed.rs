//! Load shedding: past `MAX_CONCURRENT_REQUESTS` in flight, an immediate
//! 503 instead of a queue.
//!
//! One semaphore and a `try_acquire`, instead of tower's `load_shed`, its
//! global concurrency limit and axum's `HandleErrorLayer`: those clone the
//! stack below them, allocate a semaphore future for each clone and box the
//! response future, per request.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use axum::response::Response;
use http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::responses::plain;

/// Requests this process has shed with 503 since it started, for the
/// running count in each `request shed` line.
static SHED: AtomicU64 = AtomicU64::new(0);

/// Admits at most `max` requests at once. One for all routes: each route
/// gets its own copy of the request stack, and a per-route limit would not
/// bound the process.
#[derive(Debug, Clone)]
pub(crate) struct Shedder {
    permits: Arc<Semaphore>,
}

impl Shedder {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
        }
    }

    /// A permit to hold until the response is ready, or none with `max`
    /// requests in flight: then answer [`shed`].
    pub(crate) fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }
}

/// Logs the shed request with the running count and answers 503.
pub(crate) fn shed() -> Response {
    let shed_total = SHED.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::warn!(
        status = 503,
        shed_total,
        "request shed: MAX_CONCURRENT_REQUESTS in flight"
    );
    plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "server busy, retry later\n",
    )
}
