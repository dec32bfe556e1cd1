//! The OTLP/HTTP endpoint every receiver here serves, `POST /v1/traces`
//! with protobuf bodies (gzip-compressed or not), written once: the test
//! receiver, the benchmark's counting sinks and the trace viewer differ only
//! in what they do with each export, their [`ExportSink`].

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};

use crate::{DecodeError, http_body_protobuf};

/// What a receiver does with each export request.
pub trait ExportSink: Send + Sync + 'static {
    /// Takes one export's protobuf, already decompressed and within the
    /// size limit; `gzipped` says how it arrived. `Err` when it is not an
    /// [`ExportTraceServiceRequest`](crate::ExportTraceServiceRequest) (answered 400).
    fn accept(&self, protobuf: &[u8], gzipped: bool) -> Result<(), DecodeError>;
}

/// `POST /v1/traces` into `sink`, with bodies of at most `max_body_bytes`,
/// compressed or decompressed: 200 with an empty
/// `ExportTraceServiceResponse`, 413 past the limit, 400 for a body that is
/// not OTLP, each error a short `text/plain` line.
pub fn router<S: ExportSink>(sink: Arc<S>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/traces", post(export::<S>))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state((sink, max_body_bytes as u64))
}

async fn export<S: ExportSink>(
    State((sink, max)): State<(Arc<S>, u64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|e| e == "gzip");
    let accepted = http_body_protobuf(&body, gzipped, max)
        .and_then(|protobuf| sink.accept(&protobuf, gzipped));
    match accepted {
        // An empty ExportTraceServiceResponse encodes as no bytes at all.
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Vec::new(),
        )
            .into_response(),
        Err(error) => {
            let status = match error {
                DecodeError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                DecodeError::Gzip | DecodeError::Protobuf => StatusCode::BAD_REQUEST,
            };
            (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{error}\n"),
            )
                .into_response()
        }
    }
}
