//! The request stack: one tower service, read top to bottom in
//! [`RequestService::call`] and [`Serving::poll`].
//!
//! One hand-written layer, not a stack of `from_fn`, `TraceLayer` and
//! `timeout` layers: each layer axum adds to a router clones and boxes the
//! whole stack below it, and boxes its future, per request; `TraceLayer`
//! also wraps the body and enters the span on each of its frames. This
//! one clones two `Arc`s and returns its own future, which axum boxes once.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::{Router, extract::Request, response::Response};
use http::StatusCode;
use pin_project_lite::pin_project;
use tokio::{sync::OwnedSemaphorePermit, time::Sleep};
use tower::{Layer, Service};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    access_log::AccessLog,
    config::RequestLimits,
    responses::plain,
    server_span::{record_response, server_span},
    shed::{Shedder, shed},
};

/// Wraps `traced` and `untraced` routes in the request stack. Every
/// request meets, in order:
///
/// 1. **load shedding**: past `MAX_CONCURRENT_REQUESTS` in flight, an
///    immediate 503, logged with a running count but not traced,
///    so an overload costs no spans;
/// 2. **the SERVER span** (`traced` routes only, and only while the SDK is
///    enabled; `untraced` ones propagate without spans, as the book's
///    `/sayHello2` does);
/// 3. **the header-size guard** (431) and **the request timeout** (503),
///    inside the span;
/// 4. the handler, polled inside the span;
/// 5. on the response: its status and the headers that name the span
///    (traced), then **the log line**, inside the span so it carries the
///    trace id.
///
/// Every response but a shed one therefore has its span (when traced) with
/// its status, its log line, and the headers that name the span.
pub fn request_stack<S>(traced: Router<S>, untraced: Router<S>, limits: &RequestLimits) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let shared = Arc::new(Shared {
        shedder: Shedder::new(limits.max_concurrent_requests as usize),
        timeout: limits.request_timeout(),
        max_header_bytes: limits.max_request_header_bytes as usize,
    });
    let layer = |traced| RequestLayer {
        shared: shared.clone(),
        traced,
    };
    traced
        .layer(layer(true))
        .merge(untraced.layer(layer(false)))
}

/// What every route's copy of the stack shares: one shedder bounds the
/// process, not each route.
#[derive(Debug)]
struct Shared {
    shedder: Shedder,
    timeout: Duration,
    max_header_bytes: usize,
}

/// The stack as a tower layer, for `Router::layer`.
#[derive(Debug, Clone)]
struct RequestLayer {
    shared: Arc<Shared>,
    /// Whether the routes get SERVER spans.
    traced: bool,
}

impl<S> Layer<S> for RequestLayer {
    type Service = RequestService<S>;

    fn layer(&self, inner: S) -> RequestService<S> {
        RequestService {
            inner,
            shared: self.shared.clone(),
            traced: self.traced,
        }
    }
}

/// A route behind the request stack.
#[derive(Debug, Clone)]
struct RequestService<S> {
    inner: S,
    shared: Arc<Shared>,
    traced: bool,
}

impl<S> Service<Request> for RequestService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Serving<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Some(permit) = self.shared.shedder.admit() else {
            return Serving::Answered {
                response: Some(shed()),
            };
        };
        let span = (self.traced && mesh_telemetry::spans_enabled()).then(|| server_span(&request));
        let log = AccessLog::begin(&request);
        if header_bytes(&request) > self.shared.max_header_bytes {
            let response = plain(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request headers too large\n",
            );
            return Serving::Answered {
                response: Some(finish(span, log, response)),
            };
        }
        Serving::Running {
            // Not entered: axum's route only builds the handler's future
            // here; the handler runs when it is polled, inside the span.
            inner: Some(self.inner.call(request)),
            deadline: tokio::time::sleep(self.shared.timeout),
            span,
            log: Some(log),
            _permit: permit,
        }
    }
}

/// The size the header guard measures: every header's name and value.
fn header_bytes(request: &Request) -> usize {
    request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}

pin_project! {
    /// The response future of [`RequestService`].
    #[project = ServingProjection]
    enum Serving<F> {
        /// Answered without the handler: shed, or over the header limit.
        Answered { response: Option<Response> },
        /// The handler at work, inside its span, until the deadline.
        Running {
            #[pin]
            inner: Option<F>,
            #[pin]
            deadline: Sleep,
            span: Option<Span>,
            log: Option<AccessLog>,
            // Held until the response is ready, as tower's concurrency
            // limit held it.
            _permit: OwnedSemaphorePermit,
        },
    }
}

impl<F> Future for Serving<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (mut inner, deadline, span, log) = match self.project() {
            ServingProjection::Answered { response } => {
                return Poll::Ready(Ok(response.take().expect("polled after completion")));
            }
            ServingProjection::Running {
                inner,
                deadline,
                span,
                log,
                ..
            } => (inner, deadline, span, log),
        };
        // One entry a poll: the handler, and on the last poll the response's
        // record and log line, all inside the span.
        let entered = span.as_ref().map(Span::enter);
        let Some(running) = inner.as_mut().as_pin_mut() else {
            panic!("polled after completion");
        };
        let mut response = match running.poll(cx) {
            Poll::Ready(Ok(response)) => response,
            Poll::Pending => {
                ready!(deadline.poll(cx));
                // Cancelled inside the span, so what the handler marks as
                // it is dropped (its CLIENT span) is in the trace.
                inner.set(None);
                if let Some(span) = span.as_ref() {
                    span.set_attribute("error.type", "timeout");
                }
                plain(StatusCode::SERVICE_UNAVAILABLE, "request timed out\n")
            }
        };
        let log = log.take().expect("polled after completion");
        record_and_log(span.as_ref(), log, &mut response);
        drop(entered);
        // The span closes here, ending when it was last exited.
        *span = None;
        Poll::Ready(Ok(response))
    }
}

/// Records `response` on the request's span, if it has one, and writes its
/// log line inside it: for a request answered without its handler.
fn finish(span: Option<Span>, log: AccessLog, mut response: Response) -> Response {
    let _entered = span.as_ref().map(Span::enter);
    record_and_log(span.as_ref(), log, &mut response);
    response
}

/// Records `response` on `span` and writes the request's log line; the
/// caller has entered the span.
fn record_and_log(span: Option<&Span>, log: AccessLog, response: &mut Response) {
    if let Some(span) = span {
        record_response(span, response);
    }
    log.finish(response);
}
