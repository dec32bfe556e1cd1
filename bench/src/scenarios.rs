//! The arms `make bench` compares, and the service pair behind each.
//!
//! Every arm logs at `RUST_LOG=warn`, so logging is held equal and low and
//! the differences are tracing's; one extra arm logs at `info`, to show
//! logging's own cost. Each arm has its own pair of processes.

use test_harness::{otlp_receiver::Transport, service_process::ServiceProcess};

/// One arm: a request path on a pair started with `env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arm {
    /// The name `--arms` selects it by.
    pub(crate) key: &'static str,
    pub(crate) label: &'static str,
    pub(crate) path: &'static str,
    /// Where the pair exports, if anywhere.
    pub(crate) export: Option<Transport>,
    pub(crate) env: &'static [(&'static str, &'static str)],
}

const DISABLED: &[(&str, &str)] = &[("OTEL_SDK_DISABLED", "true")];

/// `RUST_LOG` for the arms: warnings, and the lifecycle's few lines.
const WARN: &str = "warn,mesh_server::lifecycle=info";

/// Spans a traced `/sayHello` makes: hello's SERVER and CLIENT, the
/// formatter's SERVER.
pub(crate) const SPANS_PER_REQUEST: u64 = 3;

/// The pair's two services, in the order every per-service figure is kept.
pub(crate) const SERVICES: [&str; 2] = ["hello-svc", "formatter-svc"];

/// The baseline every other arm is compared with.
pub(crate) const BASELINE: Arm = Arm {
    key: "disabled",
    label: "/sayHello, SDK disabled",
    path: "/sayHello/Brian",
    export: None,
    env: DISABLED,
};
/// Spans created and ended, with no exporter.
pub(crate) const NOT_EXPORTED: Arm = Arm {
    key: "not-exported",
    label: "/sayHello, 100 %, spans made, not exported",
    path: "/sayHello/Brian",
    export: None,
    env: &[("OTEL_TRACES_EXPORTER", "none")],
};
/// 100 % sampled, exported over OTLP/HTTP (the default protocol).
pub(crate) const EXPORTED_HTTP: Arm = Arm {
    key: "http",
    label: "/sayHello, 100 %, exported over OTLP/HTTP",
    path: "/sayHello/Brian",
    export: Some(Transport::HttpProtobuf),
    env: &[],
};
/// As `k8s/app.yaml` runs the pair: exported over OTLP/HTTP, with the
/// default `RUST_LOG=info`, so a JSON log line per request in hello-svc and
/// two in formatter-svc. `make soak` runs it.
pub(crate) const AS_DEPLOYED: Arm = Arm {
    key: "deployed",
    label: "/sayHello, as deployed: exported over OTLP/HTTP, RUST_LOG=info",
    path: "/sayHello/Brian",
    export: Some(Transport::HttpProtobuf),
    env: &[("RUST_LOG", "info")],
};
/// 100 % sampled, exported over OTLP/gRPC (`k8s/app.yaml` uses
/// OTLP/HTTP; this arm shows what the other transport costs).
pub(crate) const EXPORTED_GRPC: Arm = Arm {
    key: "grpc",
    label: "/sayHello, 100 %, exported over OTLP/gRPC",
    path: "/sayHello/Brian",
    export: Some(Transport::Grpc),
    env: &[],
};
/// The propagation-only path, no spans.
pub(crate) const PROPAGATION_ONLY: Arm = Arm {
    key: "propagation",
    label: "/sayHello2, propagation only",
    path: "/sayHello2/Brian",
    export: None,
    env: DISABLED,
};
/// The baseline with a log line per request: logging's cost, apart.
pub(crate) const INFO_LOGS: Arm = Arm {
    key: "info-logs",
    label: "/sayHello, SDK disabled, RUST_LOG=info",
    path: "/sayHello/Brian",
    export: None,
    env: &[("OTEL_SDK_DISABLED", "true"), ("RUST_LOG", "info")],
};

/// Every arm, in report order.
pub(crate) const ARMS: [Arm; 6] = [
    BASELINE,
    NOT_EXPORTED,
    EXPORTED_HTTP,
    EXPORTED_GRPC,
    PROPAGATION_ONLY,
    INFO_LOGS,
];

/// The pair that serves one arm.
pub(crate) struct Pair {
    pub(crate) hello: ServiceProcess,
    pub(crate) formatter: ServiceProcess,
}

/// `binary` with the arm's `env`, its own `service.name`, and `extra`.
async fn spawn(
    env: &[(String, String)],
    binary: &'static str,
    service: String,
    extra: Option<(&str, String)>,
) -> ServiceProcess {
    let mut env = env.to_vec();
    env.push(("OTEL_SERVICE_NAME".into(), service));
    env.extend(extra.map(|(k, v)| (k.to_owned(), v)));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    ServiceProcess::spawn_discarding_logs(binary, &env).await
}

impl Pair {
    /// Starts the pair for `arm`, exporting to `sink` when the arm exports.
    /// `name` becomes `service.name`'s prefix, so the sink's counts tell
    /// the arms apart.
    pub(crate) async fn start(arm: &Arm, name: &str, sink: Option<&str>) -> Self {
        let mut env: Vec<(String, String)> = vec![
            // Warn, but for the start-up line the harness reads the address
            // from: nothing per request.
            ("RUST_LOG".into(), WARN.into()),
            // The SDK's default schedule, not the tests' fast one.
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "5000".into()),
        ];
        if let (Some(transport), Some(sink)) = (arm.export, sink) {
            env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), sink.into()));
            env.push((
                "OTEL_EXPORTER_OTLP_PROTOCOL".into(),
                transport.protocol().into(),
            ));
        }
        env.extend(arm.env.iter().map(|(k, v)| ((*k).into(), (*v).into())));
        let formatter = spawn(&env, "formatter-svc", format!("formatter-{name}"), None).await;
        let hello = spawn(
            &env,
            "hello-svc",
            format!("hello-{name}"),
            Some(("FORMATTER_URL", formatter.url())),
        )
        .await;
        Self { hello, formatter }
    }

    /// Each service's RSS now, in KiB, in [`SERVICES`] order.
    pub(crate) fn rss_kib(&self) -> [u64; 2] {
        [self.hello.rss_kib(), self.formatter.rss_kib()]
    }

    /// The URL the arm's load is sent to.
    pub(crate) fn url(&self, arm: &Arm) -> String {
        format!("{}{}", self.hello.url(), arm.path)
    }

    /// Both process ids, for CPU accounting.
    pub(crate) fn pids(&self) -> [u32; 2] {
        [self.hello.pid(), self.formatter.pid()]
    }
}

/// The arms `keys` names, in report order; the baseline always, since every
/// other arm is measured against it.
pub(crate) fn select(keys: &[String]) -> Result<Vec<Arm>, String> {
    if let Some(unknown) = keys.iter().find(|k| !ARMS.iter().any(|a| a.key == *k)) {
        let known: Vec<&str> = ARMS.iter().map(|a| a.key).collect();
        return Err(format!(
            "unknown arm `{unknown}`: the arms are {}",
            known.join(", ")
        ));
    }
    Ok(ARMS
        .into_iter()
        .filter(|a| keys.is_empty() || *a == BASELINE || keys.iter().any(|k| k == a.key))
        .collect())
}
