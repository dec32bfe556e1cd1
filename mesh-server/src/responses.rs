//! The short `text/plain` answers both services give outside their own
//! handlers: the limits' errors, the liveness probe and unknown paths.

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};

/// `body` with `status`, as `text/plain; charset=utf-8`: the one shape of
/// every error body here.
pub fn plain(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `GET /healthz`: `ok`, outside the request limits, so an overloaded pod
/// is not also killed by its liveness probe.
pub async fn healthz() -> Response {
    plain(StatusCode::OK, "ok\n")
}

/// Any path no route matches: 404 `not found`.
pub async fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "not found\n")
}
