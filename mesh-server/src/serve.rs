//! Accepting connections and serving HTTP/1 on them, held to
//! [`ConnectionLimits`]: a bound on open connections, a header-read timeout
//! and an idle keep-alive timeout, then a graceful shutdown that lets every
//! accepted request finish.
//!
//! `axum::serve` sets no timer on hyper, so none of hyper's timeouts can
//! fire: a client that never finishes its headers holds its connection, and
//! its file descriptor, forever. This loop is the same hyper connection with
//! a timer and the limits.

use std::{
    future::Future,
    io,
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Body};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::TcpListener,
    sync::{Semaphore, watch},
    time::Instant,
};
use tower::ServiceExt;

use crate::{config::ConnectionLimits, parse_rejection};

/// A service bound to its address, with its router and connection limits:
/// built by each service's `startup::build`, run by
/// [`lifecycle::run`](crate::lifecycle::run).
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
}

impl Application {
    /// Binds `address` (port 0 picks a free port); the error names it.
    pub async fn bind(
        address: std::net::SocketAddr,
        router: Router,
        limits: ConnectionLimits,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(address).await.map_err(|error| {
            io::Error::new(error.kind(), format!("cannot listen on {address}: {error}"))
        })?;
        Ok(Self {
            listener,
            router,
            limits,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub(crate) async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        serve(self.listener, self.router, self.limits, shutdown).await
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting, lets each connection finish the request it is serving, and
/// returns once every connection is closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let max = limits.max_connections;
    let open = Arc::new(Semaphore::new(max as usize));
    // One HTTP/1 configuration for every connection.
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout())
        .keep_alive(true);
    let idle = limits.idle_timeout();
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a little rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (router, http1, stopping) = (router.clone(), http1.clone(), stopping.clone());
        tokio::spawn(async move {
            serve_connection(stream, router, &http1, idle, stopping).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection task holds a permit until it ends.
    let _all_closed = open.acquire_many(max).await;
    Ok(())
}

/// When the connection last finished a request, and how many it is serving.
#[derive(Debug)]
struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    last_done_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
        }
    }

    /// Completes once no request has been in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let wait = if self.in_flight.load(Ordering::Relaxed) > 0 {
                // Busy: look again one idle period from now.
                idle
            } else {
                let quiet_since =
                    self.started + Duration::from_millis(self.last_done_ms.load(Ordering::Relaxed));
                match (quiet_since + idle).checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return,
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Counts a request in flight until its response is ready.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let elapsed = self.0.started.elapsed().as_millis() as u64;
        self.0.last_done_ms.store(elapsed, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    http1: &hyper::server::conn::http1::Builder,
    idle: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let tracked = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        tracked.in_flight.fetch_add(1, Ordering::Relaxed);
        let guard = InFlight(tracked.clone());
        let router = router.clone();
        async move {
            let response = router.oneshot(request.map(Body::new)).await;
            drop(guard);
            response
        }
    });
    let mut connection = pin!(http1.serve_connection(TokioIo::new(stream), service));
    let mut closing = false;
    loop {
        tokio::select! {
            // Errors are the client's doing (a reset, a header timeout, a
            // request hyper could not parse). What hyper answered itself
            // never reached the router, so it is recorded here.
            served = connection.as_mut() => {
                if let Err(error) = served {
                    match parse_rejection::automatic_status(&error) {
                        Some(status) => parse_rejection::record(status, &error.to_string()),
                        None => tracing::debug!(%error, "connection closed"),
                    }
                }
                return;
            }
            _ = stopping.changed(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = activity.idle_for(idle), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}
