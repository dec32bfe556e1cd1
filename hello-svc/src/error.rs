//! Every way a hello request can fail, and the response each one gets.

use std::{error::Error, io};

use tracing_opentelemetry::OpenTelemetrySpanExt;

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

use hello_contract::MAX_NAME_BYTES;

/// A failed hello request. Each variant's doc names its status. The body is
/// the `Display` text alone: causes are logged, never sent to the caller.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the path segment is not valid percent-encoded UTF-8.
    #[error("name must be percent-encoded UTF-8")]
    InvalidName,
    /// 400: the decoded name is longer than [`MAX_NAME_BYTES`].
    #[error("name is longer than {MAX_NAME_BYTES} bytes")]
    NameTooLong,
    /// 502: formatter-svc could not be reached, broke off the answer, or
    /// answered more than
    /// [`MAX_ANSWER_BYTES`](crate::formatter_client::MAX_ANSWER_BYTES). The
    /// cause is hyper-util's, hyper's, or
    /// [`AnswerTooLong`](crate::formatter_client::AnswerTooLong).
    #[error("formatter unavailable")]
    FormatterUnreachable(#[source] Box<dyn Error + Send + Sync>),
    /// 504: formatter-svc did not answer within `FORMATTER_TIMEOUT_MS`.
    #[error("formatter timed out")]
    FormatterTimeout,
    /// 502: formatter-svc answered with a non-2xx status (named in the log
    /// and on the CLIENT span, not in the body).
    #[error("formatter failed")]
    FormatterStatus(StatusCode),
}

impl AppError {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidName | Self::NameTooLong => StatusCode::BAD_REQUEST,
            Self::FormatterUnreachable(_) | Self::FormatterStatus(_) => StatusCode::BAD_GATEWAY,
            Self::FormatterTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// A low-cardinality `error.type` for spans, per the semantic conventions.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidName | Self::NameTooLong => "invalid_name",
            Self::FormatterUnreachable(_) => "formatter_unreachable",
            Self::FormatterTimeout => "timeout",
            Self::FormatterStatus(_) => "formatter_status",
        }
    }

    /// Sorts a failed call into a timeout or an unreachable formatter. The
    /// call's own deadline is [`Self::FormatterTimeout`] already; this finds
    /// the timeouts below it (the connect timeout, the kernel's), as reqwest
    /// sorted them.
    pub(crate) fn from_transport(error: Box<dyn Error + Send + Sync>) -> Self {
        let mut chain =
            std::iter::successors(Some(&*error as &(dyn Error + 'static)), |e| (*e).source());
        let timed_out = chain.any(|e| {
            e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::TimedOut)
                || e.downcast_ref::<hyper::Error>()
                    .is_some_and(hyper::Error::is_timeout)
        });
        if timed_out {
            Self::FormatterTimeout
        } else {
            Self::FormatterUnreachable(error)
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The full cause chain goes to the log and the span, not the body.
            let cause = std::error::Error::source(&self).map(|source| format!("{source:?}"));
            let upstream_status = match &self {
                Self::FormatterStatus(status) => Some(status.as_u16()),
                _ => None,
            };
            tracing::Span::current().set_attribute("error.type", self.error_type());
            tracing::warn!(error = %self, cause, upstream_status, "request failed");
        }
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{self}\n"),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the connection failed")]
    struct Wrapper(#[source] io::Error);

    fn cause(kind: io::ErrorKind) -> Box<dyn Error + Send + Sync> {
        Box::new(Wrapper(io::Error::from(kind)))
    }

    #[test]
    fn a_timeout_anywhere_in_the_cause_chain_is_a_504_and_anything_else_a_502() {
        let timeout = AppError::from_transport(cause(io::ErrorKind::TimedOut));
        assert!(matches!(timeout, AppError::FormatterTimeout), "{timeout:?}");
        let refused = AppError::from_transport(cause(io::ErrorKind::ConnectionRefused));
        assert!(
            matches!(&refused, AppError::FormatterUnreachable(e) if e.is::<Wrapper>()),
            "{refused:?}"
        );
        assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
    }
}
