//! Why an export did not reach the collector, read from the error's source
//! chain, and whether trying again could help.
//!
//! The log line an outage writes ([`crate::export_health`]) says which of
//! these it was, so an operator sees "the collector's certificate is not
//! trusted" rather than "cannot connect". Only the cause's kind is printed:
//! never a header, a certificate or a key.

use std::{error::Error, fmt, io};

use http::StatusCode;
use rustls::{AlertDescription, CertificateError};

/// A transport failure, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TransportFailure {
    /// The collector's certificate failed verification: its issuer is not
    /// trusted, it expired, it names another host, ...
    Untrusted(&'static str),
    /// The collector ended the TLS handshake with an alert, for example
    /// because it requires a client certificate.
    HandshakeRefused(AlertDescription),
    /// Another TLS failure (no common protocol version, a malformed
    /// message, ...).
    Tls(String),
    /// Nothing listens at the collector's address.
    ConnectionRefused,
    /// The connection was reset or closed before the answer.
    ConnectionLost,
    /// The collector did not answer in time.
    TimedOut,
}

impl TransportFailure {
    /// The first failure the chain from `error` down explains, if any.
    ///
    /// An [`io::Error`] hides the error it wraps from [`Error::source`] (it
    /// returns that error's own source), so each one is opened with
    /// [`io::Error::get_ref`]: that is where tokio-rustls puts the
    /// [`rustls::Error`].
    pub(crate) fn of(error: &(dyn Error + 'static)) -> Option<Self> {
        let mut next = Some(error);
        while let Some(error) = next {
            if let Some(tls) = error.downcast_ref::<rustls::Error>() {
                return Some(Self::from_tls(tls));
            }
            // The peer closed the connection before answering: no I/O
            // error, just an end the HTTP client did not expect.
            if error
                .downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_incomplete_message)
            {
                return Some(Self::ConnectionLost);
            }
            if let Some(io) = error.downcast_ref::<io::Error>() {
                if let Some(found) = io.get_ref().and_then(|inner| Self::of(inner)) {
                    return Some(found);
                }
                if let Some(found) = Self::from_io_kind(io.kind()) {
                    return Some(found);
                }
            }
            next = error.source();
        }
        None
    }

    fn from_tls(error: &rustls::Error) -> Self {
        match error {
            rustls::Error::InvalidCertificate(certificate) => Self::Untrusted(match certificate {
                CertificateError::UnknownIssuer => "unknown issuer",
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired",
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "not valid yet"
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    "not issued for the collector's host name"
                }
                CertificateError::Revoked => "revoked",
                CertificateError::BadSignature => "bad signature",
                CertificateError::BadEncoding => "malformed",
                _ => "rejected by verification",
            }),
            rustls::Error::AlertReceived(alert) => Self::HandshakeRefused(*alert),
            other => Self::Tls(other.to_string()),
        }
    }

    fn from_io_kind(kind: io::ErrorKind) -> Option<Self> {
        match kind {
            io::ErrorKind::ConnectionRefused => Some(Self::ConnectionRefused),
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => Some(Self::ConnectionLost),
            io::ErrorKind::TimedOut => Some(Self::TimedOut),
            _ => None,
        }
    }

    /// Whether another try could succeed. A certificate that is not trusted
    /// or a handshake the collector refuses fails the same way every time,
    /// until someone changes a setting: retrying only delays the batch
    /// behind it.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Self::Untrusted(_) | Self::HandshakeRefused(_) | Self::Tls(_) => false,
            Self::ConnectionRefused | Self::ConnectionLost | Self::TimedOut => true,
        }
    }
}

impl fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Untrusted(why) => write!(f, "the collector's certificate is not trusted ({why})"),
            Self::HandshakeRefused(AlertDescription::CertificateRequired) => f.write_str(
                "the collector refused the TLS handshake: it requires a client certificate",
            ),
            Self::HandshakeRefused(
                alert @ (AlertDescription::UnknownCA
                | AlertDescription::BadCertificate
                | AlertDescription::CertificateUnknown),
            ) => write!(
                f,
                "the collector refused the TLS handshake: it does not accept the client \
                 certificate (alert {alert:?})"
            ),
            Self::HandshakeRefused(alert) => {
                write!(
                    f,
                    "the collector refused the TLS handshake (alert {alert:?})"
                )
            }
            Self::Tls(why) => write!(f, "the TLS handshake failed: {why}"),
            Self::ConnectionRefused => f.write_str("connection refused"),
            Self::ConnectionLost => f.write_str("the connection was lost"),
            Self::TimedOut => f.write_str("timed out"),
        }
    }
}

/// Whether an OTLP/HTTP answer with `status` is worth another try: 429,
/// 502, 503 and 504, the statuses the OTLP specification calls retryable
/// (opentelemetry-proto `docs/specification.md`, "Failures"). Every other
/// failure, every 4xx but 429 among them, fails the same way again.
pub(crate) fn http_status_is_retryable(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

/// Whether a failed OTLP/gRPC export is worth another try, from the gRPC
/// code in the exporter's message: the codes the OTLP specification calls
/// retryable (Cancelled, DeadlineExceeded, Aborted, OutOfRange, Unavailable,
/// DataLoss). RESOURCE_EXHAUSTED is retryable there only with a server's
/// `RetryInfo`, which the message does not carry, so it is not retried.
///
/// opentelemetry-otlp 0.33.1 writes the message as
/// `TonicTracesClient export failed with gRPC code: {code:?}` then the
/// cause (`src/exporter/tonic/mod.rs`, `handle_tonic_export_error!`).
pub(crate) fn grpc_failure_is_retryable(message: &str) -> bool {
    let code = message
        .split_once("gRPC code: ")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_alphanumeric()).next());
    matches!(
        code,
        Some(
            "Cancelled"
                | "DeadlineExceeded"
                | "Aborted"
                | "OutOfRange"
                | "Unavailable"
                | "DataLoss"
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose source is `inner`, as hyper and reqwest wrap theirs.
    #[derive(Debug)]
    struct Wrapped(Box<dyn Error + Send + Sync>);

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("client error (Connect)")
        }
    }

    impl Error for Wrapped {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&*self.0)
        }
    }

    /// `tls` as tokio-rustls reports it: inside an `io::Error`, itself
    /// inside a client's error.
    fn as_from_a_client(tls: rustls::Error) -> Wrapped {
        Wrapped(Box::new(io::Error::new(io::ErrorKind::InvalidData, tls)))
    }

    #[test]
    fn an_unknown_issuer_inside_an_io_error_is_found_and_not_retried() {
        let error = as_from_a_client(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        let failure = TransportFailure::of(&error).unwrap();
        assert_eq!(failure, TransportFailure::Untrusted("unknown issuer"));
        assert!(!failure.is_retryable());
        assert_eq!(
            failure.to_string(),
            "the collector's certificate is not trusted (unknown issuer)"
        );
    }

    #[test]
    fn a_collector_that_requires_a_client_certificate_says_so_and_is_not_retried() {
        let error = as_from_a_client(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired,
        ));
        let failure = TransportFailure::of(&error).unwrap();
        assert!(!failure.is_retryable());
        assert_eq!(
            failure.to_string(),
            "the collector refused the TLS handshake: it requires a client certificate"
        );
        let refused = as_from_a_client(rustls::Error::AlertReceived(AlertDescription::UnknownCA));
        assert!(
            TransportFailure::of(&refused)
                .unwrap()
                .to_string()
                .contains("does not accept the client certificate (alert UnknownCA)")
        );
    }

    #[test]
    fn socket_failures_are_named_and_retried() {
        for (kind, expected) in [
            (io::ErrorKind::ConnectionRefused, "connection refused"),
            (io::ErrorKind::ConnectionReset, "the connection was lost"),
            (io::ErrorKind::TimedOut, "timed out"),
        ] {
            let error = Wrapped(Box::new(io::Error::from(kind)));
            let failure = TransportFailure::of(&error).unwrap();
            assert_eq!(failure.to_string(), expected);
            assert!(failure.is_retryable(), "{kind:?}");
        }
    }

    #[test]
    fn a_chain_that_says_nothing_known_is_not_classified() {
        let error = Wrapped(Box::new(io::Error::other("dns error")));
        assert_eq!(TransportFailure::of(&error), None);
    }

    #[test]
    fn only_429_502_503_and_504_are_retried_among_http_statuses() {
        let retried: Vec<u16> = (100..600)
            .filter(|&code| http_status_is_retryable(StatusCode::from_u16(code).unwrap()))
            .collect();
        assert_eq!(retried, [429, 502, 503, 504]);
    }

    #[test]
    fn grpc_codes_are_retried_as_the_otlp_specification_says() {
        let message = |code: &str| {
            format!("TonicTracesClient export failed with gRPC code: {code}: transport error")
        };
        for code in [
            "Cancelled",
            "DeadlineExceeded",
            "Aborted",
            "OutOfRange",
            "Unavailable",
            "DataLoss",
        ] {
            assert!(grpc_failure_is_retryable(&message(code)), "{code}");
        }
        for code in [
            "Unknown",
            "InvalidArgument",
            "NotFound",
            "AlreadyExists",
            "PermissionDenied",
            "ResourceExhausted",
            "FailedPrecondition",
            "Unimplemented",
            "Internal",
            "Unauthenticated",
        ] {
            assert!(!grpc_failure_is_retryable(&message(code)), "{code}");
        }
        assert!(!grpc_failure_is_retryable("exporter already shutdown"));
    }
}
