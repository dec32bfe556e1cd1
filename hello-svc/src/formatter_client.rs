//! The HTTP client for formatter-svc, built once and shared by all requests.
//!
//! hyper-util's pooled client over its `HttpConnector`, which is what reqwest
//! wraps for plain HTTP. reqwest's own layers (redirect and retry policies, a
//! `url::Url` re-parsed from the request's URI on every call) cost several
//! times the call itself, and this client needs none of them.

use std::time::Duration;

use crate::{config::Config, error::AppError, formatter_endpoint::Endpoint};
use axum::http::{HeaderMap, Request, uri};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::{Body as _, Bytes};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use opentelemetry::{Context, trace::Status};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The longest answer read from the formatter, in bytes. A greeting is a few
/// hundred bytes (the name is at most 256); a longer answer is a broken
/// formatter, answered 502 rather than buffered.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// TCP keep-alive probes on pooled connections, as reqwest set them: a peer
/// gone without a FIN is noticed instead of its connection lingering.
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);
const TCP_KEEPALIVE_RETRIES: u32 = 3;
/// Unacknowledged data this old closes the connection (reqwest's value).
#[cfg(target_os = "linux")]
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);
/// An idle pooled connection is closed after this long (reqwest's value).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The formatter answered with more than [`MAX_ANSWER_BYTES`]: the source of
/// [`AppError::FormatterUnreachable`].
#[derive(Debug, thiserror::Error)]
#[error("the formatter's answer is longer than {MAX_ANSWER_BYTES} bytes")]
pub struct AnswerTooLong;

/// Calls `GET {FORMATTER_URL}/formatGreeting?name=`.
#[derive(Debug, Clone)]
pub struct FormatterClient {
    http: Client<HttpConnector, Empty<Bytes>>,
    endpoint: Endpoint,
    /// Bounds the whole call: connect, send, response head and body.
    timeout: Duration,
}

impl FormatterClient {
    /// Builds the client: one connection pool, and the timeout from `config`.
    /// Fails if `FORMATTER_URL` is not a URI an HTTP request can carry.
    pub fn new(config: &Config) -> Result<Self, uri::InvalidUri> {
        let timeout = config.formatter_timeout();
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        // Nagle's algorithm would hold back small writes waiting for ACKs.
        connector.set_nodelay(true);
        connector.set_keepalive(Some(TCP_KEEPALIVE));
        connector.set_keepalive_interval(Some(TCP_KEEPALIVE));
        connector.set_keepalive_retries(Some(TCP_KEEPALIVE_RETRIES));
        #[cfg(target_os = "linux")]
        connector.set_tcp_user_timeout(Some(TCP_USER_TIMEOUT));
        // No proxy, ever: inside a mesh the sidecar is the proxy, and an
        // HTTP_PROXY meant for something else must not capture
        // service-to-service calls. hyper-util's client has no proxy support
        // at all (reqwest needed `.no_proxy()`). Its `HttpConnector` also
        // refuses anything but `http://`, as the configuration does.
        let http = Client::builder(TokioExecutor::new())
            // Without a timer the pool cannot expire idle connections.
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        Ok(Self {
            http,
            endpoint: Endpoint::new(&config.formatter_url)?,
            timeout,
        })
    }

    /// Formats the greeting inside a CLIENT span whose context, with the
    /// baggage in `cx`, is written into the outbound headers; with the SDK
    /// disabled, without a span, writing `cx` itself.
    ///
    /// `cx` is the caller's context: the SERVER span plus any baggage the
    /// handler added. `headers` holds anything else to send (`x-request-id`).
    pub(crate) async fn format_greeting_traced(
        &self,
        name: &str,
        cx: Context,
        mut headers: HeaderMap,
    ) -> Result<String, AppError> {
        let url = self.endpoint.url_for(name);
        if !mesh_telemetry::spans_enabled() {
            // The SDK is disabled: no span, and the caller's context goes
            // out as it came, with the baggage the handler added.
            mesh_propagation::inject(&cx, &mut headers);
            return self.send(&url, headers, None).await;
        }
        let span = tracing::info_span!(
            "http_client",
            otel.name = "GET",
            otel.kind = "client",
            http.request.method = "GET",
            url.full = url.as_str(),
            server.address = self.endpoint.host.as_deref(),
            // i64: semantic conventions type it as an int, and
            // tracing-opentelemetry records unsigned fields as strings.
            server.port = self.endpoint.port,
        );
        // The parent is the caller's context, not the tracing parent: that is
        // how the baggage the handler added reaches this span and the wire.
        // Should that fail (said and marked by `set_parent`), the caller's
        // context goes out instead: the call still continues the trace and
        // carries the baggage that routes it.
        let outbound = if mesh_telemetry::span_parent::set_parent(&span, cx.clone()) {
            span.context()
        } else {
            cx
        };
        mesh_propagation::inject(&outbound, &mut headers);

        // If the server's request timeout drops this future mid-call, the
        // guard still marks the span, so Jaeger does not show a cut call as a
        // slow success.
        let outcome = CallOutcome(Some(span.clone()));
        // Not entered (`instrument`): nothing inside logs or makes spans,
        // and entering on each poll of the call would cost a clock read
        // and two registry updates a poll. The span ends when it closes.
        let result = self.send(&url, headers, Some(&span)).await;
        outcome.finish(result.as_ref().err().map(AppError::error_type));
        result
    }

    /// Formats the greeting sending exactly `headers`, with no span: the
    /// propagation-only path.
    pub async fn format_greeting(
        &self,
        name: &str,
        headers: HeaderMap,
    ) -> Result<String, AppError> {
        self.send(&self.endpoint.url_for(name), headers, None).await
    }

    /// GETs `url` with exactly `headers` (hyper adds `host`), all within the
    /// timeout; the answer's status goes on `span` (the CLIENT span, when
    /// traced).
    async fn send(
        &self,
        url: &str,
        headers: HeaderMap,
        span: Option<&tracing::Span>,
    ) -> Result<String, AppError> {
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = self
            .endpoint
            .uri(url)
            .map_err(|error| AppError::from_transport(error.into()))?;
        *request.headers_mut() = headers;
        tokio::time::timeout(self.timeout, self.call(request, span))
            .await
            .map_err(|_| AppError::FormatterTimeout)?
    }

    /// The call itself: the answer's head, then its body up to the limit.
    async fn call(
        &self,
        request: Request<Empty<Bytes>>,
        span: Option<&tracing::Span>,
    ) -> Result<String, AppError> {
        let response = self
            .http
            .request(request)
            .await
            .map_err(|error| AppError::from_transport(error.into()))?;
        let status = response.status();
        if let Some(span) = span {
            span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
        }
        if !status.is_success() {
            return Err(AppError::FormatterStatus(status));
        }
        // Never buffered past the limit: a longer Content-Length is refused
        // unread, and a longer body (chunked) stops at the frame crossing it.
        if response.body().size_hint().lower() > MAX_ANSWER_BYTES as u64 {
            return Err(AppError::from_transport(AnswerTooLong.into()));
        }
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|error| {
                AppError::from_transport(if error.is::<LengthLimitError>() {
                    AnswerTooLong.into()
                } else {
                    error
                })
            })?
            .to_bytes();
        // As reqwest's `text()` decoded it (without its `charset` feature).
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

/// Marks a CLIENT span with the call's outcome, including the outcome of a
/// call that never finished because its future was dropped.
struct CallOutcome(Option<tracing::Span>);

impl CallOutcome {
    /// Records a finished call: `error_type` when it failed.
    fn finish(mut self, error_type: Option<&'static str>) {
        if let (Some(span), Some(error_type)) = (self.0.take(), error_type) {
            mark_failed(&span, error_type);
        }
    }
}

impl Drop for CallOutcome {
    fn drop(&mut self) {
        if let Some(span) = self.0.take() {
            mark_failed(&span, "cancelled");
        }
    }
}

fn mark_failed(span: &tracing::Span, error_type: &'static str) {
    span.set_status(Status::error(""));
    span.set_attribute("error.type", error_type);
}

#[cfg(test)]
mod tests {
    use opentelemetry::{
        KeyValue,
        baggage::BaggageExt,
        trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A formatter that answers once, writing `answer` piece by piece until
    /// the client hangs up, and hands back the request's head.
    async fn formatter_writing(
        answer: impl Iterator<Item = Vec<u8>> + Send + 'static,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let head = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0];
                stream.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            for piece in answer {
                if stream.write_all(&piece).await.is_err() {
                    break;
                }
            }
            String::from_utf8(head).unwrap().to_ascii_lowercase()
        });
        (url, head)
    }

    /// A formatter that answers `body` once, with its length.
    async fn formatter(body: &str) -> (String, tokio::task::JoinHandle<String>) {
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        formatter_writing(std::iter::once(answer.into_bytes())).await
    }

    fn client_for(url: &str) -> FormatterClient {
        let config: Config =
            mesh_telemetry::config::parse_ignoring_env(&["hello-svc", "--formatter-url", url])
                .unwrap();
        FormatterClient::new(&config).unwrap()
    }

    #[tokio::test]
    async fn when_the_client_span_cannot_be_parented_the_callers_trace_and_baggage_still_go_out() {
        let (url, head) = formatter("Hello").await;
        let client = client_for(&url);
        let caller = Context::new()
            .with_remote_span_context(SpanContext::new(
                TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
                SpanId::from(0x00f0_67aa_0ba9_02b7),
                TraceFlags::SAMPLED,
                true,
                TraceState::NONE,
            ))
            .with_baggage([KeyValue::new("user-agent", "Netscape")]);
        // No subscriber: the CLIENT span is disabled, and `set_parent` fails.
        let _none = tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
        let greeting = client
            .format_greeting_traced("Brian", caller, HeaderMap::new())
            .await
            .unwrap();
        assert_eq!(greeting, "Hello");
        let head = head.await.unwrap();
        assert!(
            head.contains("\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"),
            "{head}"
        );
        assert!(
            head.contains("\r\nbaggage: user-agent=netscape\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn the_name_goes_out_in_the_query_as_url_encodes_a_pair() {
        let (url, head) = formatter("Hello").await;
        let greeting = client_for(&url)
            .format_greeting("Zoë & co=1+1#?", HeaderMap::new())
            .await
            .unwrap();
        assert_eq!(greeting, "Hello");
        let head = head.await.unwrap();
        assert!(
            head.starts_with("get /formatgreeting?name=zo%c3%ab+%26+co%3d1%2b1%23%3f http/1.1\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn an_answer_of_the_limit_is_read() {
        let body = "a".repeat(MAX_ANSWER_BYTES);
        let (url, _head) = formatter(&body).await;
        let greeting = client_for(&url)
            .format_greeting("Brian", HeaderMap::new())
            .await;
        assert_eq!(greeting.unwrap(), body);
    }

    fn assert_too_long(result: Result<String, AppError>) {
        match result {
            Err(AppError::FormatterUnreachable(cause)) => {
                assert!(cause.is::<AnswerTooLong>(), "{cause:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_answer_over_the_limit_is_a_formatter_failure() {
        let (url, _head) = formatter(&"a".repeat(MAX_ANSWER_BYTES + 1)).await;
        assert_too_long(
            client_for(&url)
                .format_greeting("Brian", HeaderMap::new())
                .await,
        );
    }

    #[tokio::test]
    async fn an_endless_chunked_answer_is_cut_at_the_limit() {
        let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        let chunk = format!("400\r\n{}\r\n", "a".repeat(0x400)).into_bytes();
        let (url, _head) =
            formatter_writing(std::iter::once(head).chain(std::iter::repeat(chunk))).await;
        assert_too_long(
            client_for(&url)
                .format_greeting("Brian", HeaderMap::new())
                .await,
        );
    }
}
