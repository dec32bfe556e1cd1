//! [`TestApp`]: hello-svc as a real process, with the formatter and the
//! OTLP receiver a test asks for, and request helpers. How the end-to-end
//! tests start the pair; a test that must kill, restart or signal a service
//! itself spawns that one with [`ServiceProcess`].

use crate::{
    fake_formatter::{Behaviour, FakeFormatter, RecordedRequest},
    otlp_receiver::{OtlpReceiver, ReceivedSpan, Transport},
    service_process::ServiceProcess,
    traceresponse_trace_id,
};

/// Which formatter hello-svc calls.
#[derive(Debug, Clone)]
pub enum Formatter {
    /// The real formatter-svc v1 binary, exporting like hello-svc.
    Real,
    /// A fake that records each request and answers as told.
    Fake(Behaviour),
    /// Whatever listens at this base URL (or nothing): the test runs it.
    At(String),
}

/// hello-svc, its formatter and (optionally) an OTLP receiver, running.
/// Dropping it stops them all.
#[derive(Debug)]
pub struct TestApp {
    /// hello-svc.
    pub hello: ServiceProcess,
    /// The real formatter, with [`Formatter::Real`].
    pub formatter: Option<ServiceProcess>,
    fake: Option<FakeFormatter>,
    receiver: Option<OtlpReceiver>,
    client: reqwest::Client,
}

/// Builds a [`TestApp`]: by default a fake formatter that answers at once,
/// and no receiver (`OTEL_TRACES_EXPORTER=none`).
#[derive(Debug)]
pub struct TestAppBuilder {
    transport: Option<Transport>,
    tls: Option<rustls::ServerConfig>,
    formatter: Formatter,
    env: Vec<(String, String)>,
}

impl TestApp {
    /// A builder with the defaults.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            transport: None,
            tls: None,
            formatter: Formatter::Fake(Behaviour::default()),
            env: Vec::new(),
        }
    }

    /// `GET {hello}{path}` with `headers` (names may repeat).
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.hello.url()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("hello-svc answers")
    }

    /// `GET /sayHello/Brian` with `headers`.
    pub async fn say_hello(&self, headers: &[(&str, &str)]) -> reqwest::Response {
        self.get("/sayHello/Brian", headers).await
    }

    /// `GET /sayHello/Brian` with `headers`, which must succeed; returns the
    /// trace id the response names.
    pub async fn say_hello_ok(&self, headers: &[(&str, &str)]) -> String {
        let response = self.say_hello(headers).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        traceresponse_trace_id(response.headers())
    }

    /// The receiver, when the app exports.
    pub fn receiver(&self) -> &OtlpReceiver {
        self.receiver
            .as_ref()
            .expect("this TestApp was built without `exporting_over`")
    }

    /// Waits until trace `trace_id` has `count` spans, and returns them.
    pub async fn trace(&self, trace_id: &str, count: usize) -> Vec<ReceivedSpan> {
        self.receiver().wait_for_trace(trace_id, count).await
    }

    /// The fake formatter, with [`Formatter::Fake`].
    pub fn fake(&self) -> &FakeFormatter {
        self.fake
            .as_ref()
            .expect("this TestApp runs the real formatter")
    }

    /// The requests the fake formatter received, in order.
    pub fn formatter_requests(&self) -> Vec<RecordedRequest> {
        self.fake().requests()
    }

    /// The last request the fake formatter received.
    pub fn last_formatter_request(&self) -> RecordedRequest {
        self.formatter_requests()
            .pop()
            .expect("hello-svc called the formatter")
    }
}

impl TestAppBuilder {
    /// Export spans to a receiver speaking `transport`.
    pub fn exporting_over(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Export spans to a receiver speaking `transport` over TLS with `tls`
    /// (see [`ThrowawayPki`](crate::throwaway_pki::ThrowawayPki)); what the
    /// services trust is the test's to set, with [`env`](Self::env).
    pub fn exporting_over_tls(mut self, transport: Transport, tls: rustls::ServerConfig) -> Self {
        self.transport = Some(transport);
        self.tls = Some(tls);
        self
    }

    /// Call `formatter`.
    pub fn formatter(mut self, formatter: Formatter) -> Self {
        self.formatter = formatter;
        self
    }

    /// Set `name=value` in the environment of every service started.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts the receiver, the formatter and hello-svc, in that order.
    pub async fn start(self) -> TestApp {
        let receiver = match (self.transport, self.tls) {
            (Some(transport), None) => Some(OtlpReceiver::start(transport).await),
            (Some(transport), Some(tls)) => Some(OtlpReceiver::start_tls(transport, tls).await),
            (None, _) => None,
        }
        .map(|bound| bound.expect("the receiver binds"));
        let endpoint = receiver.as_ref().map(OtlpReceiver::endpoint);
        let mut env: Vec<(&str, &str)> = match (&receiver, &endpoint) {
            (Some(receiver), Some(endpoint)) => vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
                (
                    "OTEL_EXPORTER_OTLP_PROTOCOL",
                    receiver.transport().protocol(),
                ),
            ],
            _ => vec![("OTEL_TRACES_EXPORTER", "none")],
        };
        env.extend(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));

        let (formatter, fake, formatter_url) = match self.formatter {
            Formatter::Real => {
                let real = ServiceProcess::spawn("formatter-svc", &env).await;
                let url = real.url();
                (Some(real), None, url)
            }
            Formatter::Fake(behaviour) => {
                let fake = FakeFormatter::start(behaviour).await;
                let url = fake.url();
                (None, Some(fake), url)
            }
            Formatter::At(url) => (None, None, url),
        };
        // FORMATTER_URL first, so a test's own env can override it.
        let mut hello_env = vec![("FORMATTER_URL", formatter_url.as_str())];
        hello_env.extend(env);
        let hello = ServiceProcess::spawn("hello-svc", &hello_env).await;
        TestApp {
            hello,
            formatter,
            fake,
            receiver,
            client: reqwest::Client::new(),
        }
    }
}
