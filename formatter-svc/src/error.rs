//! Every way a formatter request can fail, and the response each one gets.

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

use hello_contract::MAX_NAME_BYTES;

/// A request the formatter refuses. Each variant's doc names its status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    /// 400: the `name` query parameter is absent or empty.
    #[error("query parameter `name` is required")]
    MissingName,
    /// 400: the name is longer than [`MAX_NAME_BYTES`].
    #[error("name is longer than {MAX_NAME_BYTES} bytes")]
    NameTooLong,
    /// 400: the query string could not be decoded.
    #[error("malformed query string")]
    MalformedQuery,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{self}\n"),
        )
            .into_response()
    }
}
