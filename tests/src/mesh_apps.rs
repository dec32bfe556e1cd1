//! hello-svc and formatter-svc, the real binaries, started with the
//! `OTEL_PROPAGATORS` that `k8s/app.yaml` deploys them with, for the tests
//! that walk a request through modelled Envoy hops ([`crate::envoy_tracing`]).
//!
//! hello-svc calls the harness's fake formatter, which records the request;
//! the test passes that request through the Envoy hops between the two apps
//! and sends the result to the real formatter-svc. Both export to one OTLP
//! receiver.

use deploy_checks::manifests::{container_env, containers, deployments};
use otlp_receive::SpanKind;
use test_harness::{
    TestApp,
    otlp_receiver::{ReceivedSpan, Transport},
    service_process::ServiceProcess,
};

use crate::envoy_tracing::Headers;

/// `OTEL_PROPAGATORS` of the `app` container in `k8s/app.yaml` (the same in
/// every Deployment of that app).
pub fn deployed_propagators(app: &str) -> String {
    let values: Vec<String> = deployments()
        .iter()
        .flat_map(|d| containers(d).iter())
        .filter(|c| c.name == app)
        .map(|c| {
            container_env(c)
                .remove("OTEL_PROPAGATORS")
                .unwrap_or_else(|| panic!("{app} sets OTEL_PROPAGATORS"))
        })
        .collect();
    assert!(!values.is_empty(), "k8s/app.yaml runs {app}");
    assert!(values.iter().all(|v| *v == values[0]), "{app}: {values:?}");
    values[0].clone()
}

/// The trace a gateway starts when the client sends none it reads.
pub const GATEWAY_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// The span ids the Envoys on the way take, one a proxy span.
pub const GATEWAY_SERVER: &str = "00000000000000a1";
/// The gateway's CLIENT span (the router's upstream span).
pub const GATEWAY_CLIENT: &str = "00000000000000a2";
/// hello-svc's inbound sidecar.
pub const HELLO_INBOUND: &str = "00000000000000b1";
/// hello-svc's outbound sidecar.
pub const HELLO_OUTBOUND: &str = "00000000000000b2";
/// formatter-svc's inbound sidecar.
pub const FORMATTER_INBOUND: &str = "00000000000000d1";
/// The waypoint in front of formatter-svc (ambient).
pub const WAYPOINT: &str = "00000000000000e1";

/// A client's own trace, sent as B3 and (another one) as `traceparent`.
pub const CLIENT_B3_TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
/// The client's own span, sent as B3.
pub const CLIENT_B3_SPAN: &str = "e457b5a2e4d86bd1";
const CLIENT_W3C_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_W3C_SPAN: &str = "b7ad6b7169203331";

/// What the client sends, besides its User-Agent.
#[derive(Debug, Clone, Copy)]
pub enum Client {
    /// No trace context.
    Plain,
    /// Its own B3 span.
    B3,
    /// Its own B3 span and, for another trace, a `traceparent`.
    B3AndTraceparent,
}

impl Client {
    /// Every kind of client.
    pub const ALL: [Client; 3] = [Client::Plain, Client::B3, Client::B3AndTraceparent];

    /// The headers it sends.
    pub fn headers(self) -> Headers {
        let mut headers = vec![("user-agent".to_owned(), "curl/8.5.0".to_owned())];
        if matches!(self, Self::B3 | Self::B3AndTraceparent) {
            headers.extend([
                ("x-b3-traceid".to_owned(), CLIENT_B3_TRACE.to_owned()),
                ("x-b3-spanid".to_owned(), CLIENT_B3_SPAN.to_owned()),
                ("x-b3-sampled".to_owned(), "1".to_owned()),
            ]);
        }
        if matches!(self, Self::B3AndTraceparent) {
            headers.push((
                "traceparent".to_owned(),
                format!("00-{CLIENT_W3C_TRACE}-{CLIENT_W3C_SPAN}-01"),
            ));
        }
        headers
    }
}

/// Both apps, running.
pub struct MeshApps {
    hello: TestApp,
    formatter: ServiceProcess,
    client: reqwest::Client,
}

fn header_map(headers: &Headers) -> reqwest::header::HeaderMap {
    headers
        .iter()
        .map(|(n, v)| {
            let name: reqwest::header::HeaderName = n.parse().expect("a header name");
            (name, v.parse().expect("a header value"))
        })
        .collect()
}

impl MeshApps {
    /// Starts hello-svc and formatter-svc as deployed, exporting over
    /// OTLP/HTTP to one receiver.
    pub async fn start() -> Self {
        let hello = TestApp::builder()
            .exporting_over(Transport::HttpProtobuf)
            .env("OTEL_PROPAGATORS", &deployed_propagators("hello-svc"))
            .start()
            .await;
        let endpoint = hello.receiver().endpoint();
        let formatter = ServiceProcess::spawn(
            "formatter-svc",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_PROPAGATORS", &deployed_propagators("formatter-svc")),
            ],
        )
        .await;
        Self {
            hello,
            formatter,
            client: reqwest::Client::new(),
        }
    }

    /// `GET path` on hello-svc with exactly `headers`: its status code, and
    /// the trace id of its `traceresponse` header, when it sends one.
    pub async fn call_hello(&self, path: &str, headers: &Headers) -> (u16, Option<String>) {
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let answer = self.hello.get(path, &pairs).await;
        let trace_id = answer
            .headers()
            .contains_key("traceresponse")
            .then(|| test_harness::traceresponse_trace_id(answer.headers()));
        (answer.status().as_u16(), trace_id)
    }

    /// The path and headers (but `host`) of hello-svc's last request to
    /// the formatter.
    pub fn hello_sent(&self) -> (String, Headers) {
        let sent = self.hello.last_formatter_request();
        let headers = sent
            .headers
            .into_iter()
            .filter(|(n, _)| n != "host")
            .collect();
        (sent.uri, headers)
    }

    /// `GET uri` on formatter-svc with exactly `headers`; its status code.
    pub async fn call_formatter(&self, uri: &str, headers: &Headers) -> u16 {
        let url = format!("{}/{}", self.formatter.url(), uri.trim_start_matches('/'));
        let answer = self.client.get(url).headers(header_map(headers)).send();
        answer
            .await
            .expect("formatter-svc answers")
            .status()
            .as_u16()
    }

    /// Waits until trace `trace_id` has `count` spans from the two apps.
    pub async fn trace(&self, trace_id: &str, count: usize) -> Vec<ReceivedSpan> {
        self.hello.trace(trace_id, count).await
    }
}

/// The one span of `service` with `kind` in `spans`.
#[track_caller]
pub fn span<'a>(spans: &'a [ReceivedSpan], service: &str, kind: SpanKind) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.service_name == service && s.kind == kind)
        .collect();
    match found[..] {
        [one] => one,
        _ => panic!(
            "expected one {service} {kind:?} span, found {}: {spans:#?}",
            found.len()
        ),
    }
}
