//! Load shedding: past `MAX_CONCURRENT_REQUESTS` in flight, an immediate
//! 503 instead of a queue.
//!
//! One layer with one semaphore, instead of tower's `load_shed`, its global
//! concurrency limit and axum's `HandleErrorLayer`: those clone the stack
//! below them, allocate a semaphore future for each clone and box the
//! response future, per request. A `try_acquire` answers the same question.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use axum::{extract::Request, response::Response};
use http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

use crate::responses::plain;

/// Requests this process has shed with 503 since it started, for the
/// running count in each `request shed` line.
static SHED: AtomicU64 = AtomicU64::new(0);

/// Sheds requests past `max` in flight. One semaphore for all routes:
/// `Router::layer` wraps each route separately, and a per-route limit would
/// not bound the process.
#[derive(Debug, Clone)]
pub(crate) struct ShedLayer {
    permits: Arc<Semaphore>,
}

impl ShedLayer {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Shed<S> {
        Shed {
            inner,
            permits: self.permits.clone(),
        }
    }
}

/// A route behind [`ShedLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Shed<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S> Service<Request> for Shed<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    // axum's route futures are; requiring it spares a pin projection.
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Admitted<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.permits.clone().try_acquire_owned() {
            // The permit is held until the response is ready, as tower's
            // concurrency limit held it.
            Ok(permit) => Admitted::Served(self.inner.call(request), permit),
            Err(_) => Admitted::Shed(Some(shed())),
        }
    }
}

/// The response future of [`Shed`]: the route's, holding its permit, or
/// the 503 of a shed request.
#[derive(Debug)]
pub(crate) enum Admitted<F> {
    Served(F, OwnedSemaphorePermit),
    Shed(Option<Response>),
}

impl<F> Future for Admitted<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Admitted::Served(future, _permit) => Pin::new(future).poll(cx),
            Admitted::Shed(response) => {
                Poll::Ready(Ok(response.take().expect("a shed response is polled once")))
            }
        }
    }
}

/// Logs the shed request with the running count and answers 503.
fn shed() -> Response {
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
