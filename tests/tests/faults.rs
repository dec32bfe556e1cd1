//! Faults, with the real binaries: the formatter dies, hangs or comes back,
//! the collector goes away and returns, and pods are stopped under load.

use std::{
    net::{SocketAddr, TcpListener},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use test_harness::{
    Formatter, TestApp, eventually,
    fake_formatter::Behaviour,
    otlp_receiver::{OtlpReceiver, Transport},
    service_process::ServiceProcess,
    traceresponse_trace_id,
};

/// A loopback address that is free now, for a service that must come back
/// on the same port.
fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Steady load on one URL for as long as it lives, every status recorded
/// with the time it came back (0 for no answer).
struct SteadyLoad {
    statuses: Arc<Mutex<Vec<(Instant, u16)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SteadyLoad {
    fn start(url: String) -> Self {
        let statuses = Arc::new(Mutex::new(Vec::new()));
        let record = statuses.clone();
        let task = tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let status = client
                    .get(&url)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                record.lock().unwrap().push((Instant::now(), status));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Self { statuses, task }
    }

    /// The statuses that came back after `after`, in order.
    fn after(&self, after: Instant) -> Vec<(Instant, u16)> {
        let statuses = self.statuses.lock().unwrap();
        statuses
            .iter()
            .filter(|(t, _)| *t > after)
            .copied()
            .collect()
    }

    /// How many `status` answers came back after `after`.
    fn answered(&self, after: Instant, status: u16) -> usize {
        self.after(after)
            .iter()
            .filter(|(_, s)| *s == status)
            .count()
    }

    /// Waits until `count` answers of `status` came back after `after`, and
    /// gives the time of the first: each phase of a test lasts until enough
    /// answers of it arrived, never a fixed stretch of time.
    async fn until(&self, what: &str, after: Instant, status: u16, count: usize) -> Instant {
        eventually(what, || self.answered(after, status) >= count).await;
        self.after(after)
            .iter()
            .find(|(_, s)| *s == status)
            .map(|(t, _)| *t)
            .unwrap()
    }

    /// Stops the load and gives every status recorded.
    fn stop(self) -> Vec<(Instant, u16)> {
        self.task.abort();
        self.statuses.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_formatter_restart_gives_502s_then_hello_recovers_by_itself() {
    let address = free_address();
    let listen = address.to_string();
    let formatter_env = [
        ("LISTEN_ADDR", listen.as_str()),
        ("OTEL_TRACES_EXPORTER", "none"),
    ];
    // Spawned here rather than by TestApp: it must die and come back on the
    // same port.
    let formatter = ServiceProcess::spawn("formatter-svc", &formatter_env).await;
    let mut app = TestApp::builder()
        .formatter(Formatter::At(format!("http://{address}")))
        .env("FORMATTER_TIMEOUT_MS", "500")
        .start()
        .await;
    let load = SteadyLoad::start(format!("{}/sayHello/Brian", app.hello.url()));

    load.until("10 greetings before the kill", Instant::now(), 200, 10)
        .await;
    drop(formatter); // killed
    let killed = Instant::now();
    load.until("10 answers while the formatter is down", killed, 502, 10)
        .await;
    let _formatter = ServiceProcess::spawn("formatter-svc", &formatter_env).await;
    let restarted = Instant::now();
    let recovered_at = load
        .until("a greeting after the restart", restarted, 200, 1)
        .await;
    eventually("20 answers after recovering", || {
        load.after(recovered_at).len() >= 20
    })
    .await;
    let statuses = load.stop();

    assert!(
        statuses.iter().all(|(_, s)| matches!(s, 200 | 502 | 504)),
        "{statuses:?}"
    );
    // Between the kill and the restart, every request met no formatter. (A
    // request already in flight at the kill may still end as 200, so the
    // window opens at the first answer that came back after it.)
    let down: Vec<u16> = statuses
        .iter()
        .filter(|(t, _)| *t > killed && *t < restarted)
        .map(|(_, s)| *s)
        .skip_while(|s| *s == 200)
        .collect();
    assert!(
        !down.is_empty() && down.iter().all(|s| *s == 502),
        "while down: {down:?}"
    );
    // Once hello answered 200 again, it kept answering 200: its pool
    // reconnected by itself.
    let recovered: Vec<u16> = statuses
        .iter()
        .filter(|(t, _)| *t > recovered_at)
        .map(|(_, s)| *s)
        .collect();
    assert!(
        recovered.len() >= 20 && recovered.iter().all(|s| *s == 200),
        "after recovering: {recovered:?}"
    );
    assert!(app.hello.is_running(), "hello-svc was not restarted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_formatter_gets_504s_within_the_timeout_and_nothing_piles_up() {
    let app = TestApp::builder()
        .formatter(Formatter::Fake(Behaviour::answering_after(
            Duration::from_secs(60),
        )))
        .env("FORMATTER_TIMEOUT_MS", "300")
        .start()
        .await;
    let hello = &app.hello;
    let fds_before = hello.open_fds();

    let client = reqwest::Client::new();
    let started = Instant::now();
    let requests = (0..50).map(|_| client.get(format!("{}/sayHello/Brian", hello.url())).send());
    let statuses: Vec<u16> = futures_join(requests).await;
    let elapsed = started.elapsed();
    assert!(statuses.iter().all(|s| *s == 504), "{statuses:?}");
    assert!(
        elapsed < Duration::from_millis(1500),
        "50 concurrent requests took {elapsed:?}"
    );

    // Close our own keep-alive connections to hello, then count: what is
    // left open is hello's, and the timed-out formatter calls must be gone.
    drop(client);
    eventually("the timed-out calls' sockets to close", || {
        hello.open_fds() <= fds_before + 5
    })
    .await;
    let healthz = reqwest::get(format!("{}/healthz", hello.url()))
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);
}

/// Sends all `requests` at once and returns their statuses (0 for a failure).
async fn futures_join(
    requests: impl Iterator<
        Item = impl Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
    >,
) -> Vec<u16> {
    let handles: Vec<_> = requests.map(tokio::spawn).collect();
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(
            handle
                .await
                .unwrap()
                .map(|r| r.status().as_u16())
                .unwrap_or(0),
        );
    }
    statuses
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_outage_leaves_responses_alone_and_spans_flow_again_when_it_returns() {
    let collector = free_address();
    let endpoint = format!("http://{collector}");
    // The collector is down from the start.
    let pair = TestApp::builder()
        .formatter(Formatter::Real)
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .start()
        .await;
    let client = reqwest::Client::new();
    let say_hello = || {
        client
            .get(format!("{}/sayHello/Brian", pair.hello.url()))
            .send()
    };

    let rss_before = pair.hello.rss_kib();
    for _ in 0..2000 {
        assert_eq!(say_hello().await.unwrap().status(), 200);
    }
    let rss_during = pair.hello.rss_kib();
    assert!(
        rss_during < rss_before + 20 * 1024,
        "RSS {rss_before} KiB -> {rss_during} KiB during the outage"
    );

    // It comes up: spans of new requests arrive.
    let receiver = OtlpReceiver::start_on(collector, Transport::HttpProtobuf)
        .await
        .unwrap();
    let first = traceresponse_trace_id(say_hello().await.unwrap().headers());
    assert_eq!(
        receiver.wait_for_trace(&first, 3).await.len(),
        3,
        "spans flow once it is up"
    );

    // It is killed mid-run: responses do not notice.
    drop(receiver);
    for _ in 0..50 {
        assert_eq!(say_hello().await.unwrap().status(), 200);
    }
    let warnings = || {
        pair.hello
            .logs()
            .iter()
            .filter(|l| l.contains("span export failing"))
            .count()
    };
    eventually("the second outage to be noticed", || warnings() == 2).await;

    // And it returns again.
    let receiver = OtlpReceiver::start_on(collector, Transport::HttpProtobuf)
        .await
        .unwrap();
    let again = traceresponse_trace_id(say_hello().await.unwrap().headers());
    assert_eq!(
        receiver.wait_for_trace(&again, 3).await.len(),
        3,
        "spans flow again"
    );

    pair.hello
        .log_line("the recovery line", |l| l.contains("span export recovered"))
        .await;
    let logs = pair.hello.logs();
    let count = |text: &str| logs.iter().filter(|l| l.contains(text)).count();
    assert_eq!(
        count("span export failing"),
        2,
        "one warning per outage: {logs:#?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("span export recovered") && l.contains("lost_spans")),
        "recovery is logged with the count of spans lost: {logs:#?}"
    );
}
