//! The HTTP client for formatter-svc, built once and shared by all requests.

use axum::http::HeaderMap;
use opentelemetry::{Context, trace::Status};
use reqwest::Url;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{config::Config, error::AppError};

/// Calls `GET {FORMATTER_URL}/formatGreeting?name=`.
#[derive(Debug, Clone)]
pub struct FormatterClient {
    http: reqwest::Client,
    endpoint: Url,
}

impl FormatterClient {
    /// Builds the client: one connection pool, and the timeout from `config`.
    pub fn new(config: &Config) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.formatter_timeout())
            .connect_timeout(config.formatter_timeout())
            // Inside a mesh the sidecar is the proxy; an HTTP_PROXY meant for
            // something else must not capture service-to-service calls.
            .no_proxy()
            .build()?;
        let mut endpoint = config.formatter_url.clone();
        // An http(s) URL with a host (checked when parsing) always has a path.
        if let Ok(mut path) = endpoint.path_segments_mut() {
            path.pop_if_empty().push("formatGreeting");
        }
        Ok(Self { http, endpoint })
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
        let url = self.url_for(name);
        if !mesh_telemetry::spans_enabled() {
            // The SDK is disabled: no span, and the caller's context goes
            // out as it came, with the baggage the handler added.
            mesh_propagation::inject(&cx, &mut headers);
            return self.send(url, headers, None).await;
        }
        let span = tracing::info_span!(
            "http_client",
            otel.name = "GET",
            otel.kind = "client",
            http.request.method = "GET",
            url.full = url.as_str(),
            server.address = url.host_str(),
            // i64: semantic conventions type it as an int, and
            // tracing-opentelemetry records unsigned fields as strings.
            server.port = url.port_or_known_default().map(i64::from),
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
        let result = self.send(url, headers, Some(&span)).await;
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
        self.send(self.url_for(name), headers, None).await
    }

    fn url_for(&self, name: &str) -> Url {
        let mut url = self.endpoint.clone();
        // Query-encoded, so `&`, `=`, `+`, `#` and spaces arrive as sent.
        url.query_pairs_mut().append_pair("name", name);
        url
    }

    /// GETs `url`; the answer's status goes on `span` (the CLIENT span, when
    /// traced).
    async fn send(
        &self,
        url: Url,
        headers: HeaderMap,
        span: Option<&tracing::Span>,
    ) -> Result<String, AppError> {
        let response = self
            .http
            .get(url)
            .headers(headers)
            .send()
            .await
            .map_err(AppError::from_transport)?;
        let status = response.status();
        if let Some(span) = span {
            span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
        }
        if !status.is_success() {
            return Err(AppError::FormatterStatus(status));
        }
        response.text().await.map_err(AppError::from_transport)
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

    /// A formatter that answers once, and hands back the request's head.
    async fn formatter() -> (String, tokio::task::JoinHandle<String>) {
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
            let answer = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nHello";
            stream.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8(head).unwrap().to_ascii_lowercase()
        });
        (url, head)
    }

    #[tokio::test]
    async fn when_the_client_span_cannot_be_parented_the_callers_trace_and_baggage_still_go_out() {
        let (url, head) = formatter().await;
        let config: Config =
            mesh_telemetry::config::parse_ignoring_env(&["hello-svc", "--formatter-url", &url])
                .unwrap();
        let client = FormatterClient::new(&config).unwrap();
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
}
